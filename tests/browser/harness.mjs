// Shared pieces of the browser tests: the repo's paths, the page server (`xtask serve`), and
// Debian's Chromium started with real WebGPU (SwiftShader on a GPU-less machine).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
export const bin = (name) => join(target, "debug", name);

/** Starts `xtask serve --no-build` on a free port; resolves to {origin, stop}. `tinyDemo`: the
 * tiny BERT and tests/browser/tiny.csv are served as the demo model and data. */
export function serve({ tinyDemo = false } = {}) {
  const demo = tinyDemo ? ["--demo-model", "assets/tiny-bert", "--demo-data", "tests/browser/tiny.csv"] : [];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin("xtask"), ["serve", "--no-build", "--port", "0", ...demo], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the server exited (${code})`)));
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/serving Hearth on (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) resolvePromise({ origin: m[1], stop: () => child.kill() });
    });
  });
}

/** Chromium with WebGPU on (unless `webgpu` is false), background networking off, a fresh
 * profile, deleted when the context is closed: each holds the page's cached module and stored
 * files (tens of MB), and a disk near full makes Chromium refuse the service worker's cache. */
export async function launch({ webgpu = true } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "hearth-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1100, height: 1600 },
    args: [
      "--headless=new", "--no-sandbox",
      // Without WebGPU: no hardware GPU and no SwiftShader, so no adapter whatever the
      // browser's defaults are.
      ...(webgpu ? ["--enable-unsafe-webgpu"] : ["--disable-gpu", "--disable-software-rasterizer"]),
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run", "--disable-quic",
    ],
  });
  const close = context.close.bind(context);
  context.close = async (...args) => {
    await close(...args);
    rmSync(profile, { recursive: true, force: true });
  };
  return context;
}

/** Reads a safetensors file's header: {name: {dtype, shape, data_offsets}}. */
export function safetensorsHeader(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  return { header, dataStart: 8 + n };
}

/** Opens the page's folded "More settings" on `p` (as a user clicking it), where the tests set
 * what the three-click start leaves to its defaults. */
export async function openAdvanced(p) {
  if (!(await p.locator("#advanced").evaluate((d) => d.open))) await p.click("#advanced > summary");
}

const axeSource = readFileSync(join(root, "tests/browser/node_modules/axe-core/axe.min.js"), "utf8");

/** axe-core's violations of the WCAG 2 A and AA rules on `p` as it is now: [{id, help, nodes}].
 * (Evaluated through the DevTools protocol, which the page's CSP does not govern.) */
export async function axeViolations(p) {
  await p.evaluate(axeSource);
  return p.evaluate(async () => {
    const result = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return result.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
}

/** Waits for `predicate` (called with `arg`) in the page `p`, failing early with the page's own
 * error message; a failure carries `log`, the page's console lines. */
export async function waitUntil(p, predicate, timeout, what, log, arg = undefined) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await p.evaluate(predicate, arg)) return;
    const error = await p.locator(".error").allTextContents();
    if (error.length) assert.fail(`${what}: the page reports ${error.join(" | ")}\n${log.join("\n")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${what}: timed out after ${timeout} ms\n${log.join("\n")}`);
}

/** A test file's own server, Chromium and page: started before the file's tests, closed after
 * them. The page's console lines are kept in `consoleLines` and printed when a test failed.
 * Returns the object whose `server`, `context` and `page` the hooks fill in. */
export function ownPage() {
  const session = { consoleLines: [] };
  before(async () => {
    session.server = await serve();
    session.context = await launch();
    session.page = session.context.pages()[0] ?? await session.context.newPage();
    session.page.on("console", (m) => session.consoleLines.push(`${m.type()}: ${m.text()}`));
    session.page.on("pageerror", (e) => session.consoleLines.push(`pageerror: ${e.message}`));
  });
  after(async () => {
    await session.context?.close();
    session.server?.stop();
    if (process.exitCode) console.error(session.consoleLines.join("\n"));
  });
  return session;
}
