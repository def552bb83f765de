// Hearth's service worker: it keeps the page, its scripts and the wasm module in the browser's
// cache (and the demo model and data once they are used), so that a second visit starts without
// the network and a run goes on with the network off. It only ever answers same-origin GETs, from
// its cache or from this page's own server; it sends nothing anywhere.
//
// The page's files are answered from the cache and, while the browser is online, fetched again
// in the background for the next visit (a new version shows on the visit after it is served).
// The demo model and data never change: the cache answers them once they are in it (the demo's
// config.json from the first visit on).
const PAGE_CACHE = "hearth-page-v1";
const DEMO_CACHE = "hearth-demo-v1";
const PAGE = ["./", "style.css", "app.js", "chart.js", "form.js", "inputs.js", "plan.js", "propose.js",
  "remember.js", "report.js", "run.js", "tryit.js", "ui.js", "worker.js", "manifest.json", "icon.svg",
  "pkg/hearth_web.js", "pkg/hearth_web_bg.wasm"];
const DEMO_CONFIG = "models/demo/config.json";

/** `url` fetched and put in `cache`; an error names the file (a failed fetch, an HTTP error, or
 * the browser refusing to store it, as it does when the disk is nearly full). */
async function keep(cache, url) {
  try {
    const response = await fetch(url, { cache: "no-cache" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await cache.put(url, response);
  } catch (e) {
    throw new Error(`${url}: ${e.name}: ${e.message}`);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(Promise.all([
    caches.open(PAGE_CACHE).then((cache) => Promise.all(PAGE.map((url) => keep(cache, url)))),
    // The demo model's config (a few hundred bytes) lets the page plan the demo job offline even
    // when the first visit never asked for it; a server without the demo model is no error here.
    caches.open(DEMO_CACHE).then((cache) => cache.add(DEMO_CONFIG)).catch(() => {}),
  ]).then(() => self.skipWaiting(), async (e) => {
    // The page tries again; it is told why, so that it can say so if every try fails.
    const pages = await self.clients.matchAll({ includeUncontrolled: true, type: "window" });
    for (const page of pages) page.postMessage({ installFailed: e.message });
    throw e;
  }));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => ![PAGE_CACHE, DEMO_CACHE].includes(k)).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

const isDemo = (url) => url.pathname.includes("/models/demo/") || url.pathname.endsWith("/data/demo.csv");

/** From the server, kept in `cacheName` when it is a whole, successful answer. */
async function fetchAndKeep(request, cacheName) {
  const response = await fetch(request);
  if (response.ok && response.status === 200) {
    const copy = response.clone();
    await caches.open(cacheName).then((cache) => cache.put(request, copy));
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (isDemo(url)) {
    event.respondWith(caches.match(request).then((hit) => hit ?? fetchAndKeep(request, DEMO_CACHE)));
    return;
  }
  event.respondWith(caches.match(request, { ignoreSearch: true, cacheName: PAGE_CACHE }).then((hit) => {
    if (!hit) return fetchAndKeep(request, PAGE_CACHE);
    // Offline, the cached answer is all there is: no request is tried.
    if (self.navigator.onLine) event.waitUntil(fetchAndKeep(request, PAGE_CACHE).catch(() => {}));
    return hit;
  }));
});
