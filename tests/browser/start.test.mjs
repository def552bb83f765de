// The page as a new user meets it: three clicks (a model, data, Start) train with the settings
// the page proposes from the files, a classifier and a chat model; the page passes axe-core's
// WCAG 2 A/AA rules before, during and after a run, fits a desktop and a phone's width, and is
// used from the keyboard; and, once visited, it works with the network off, the user's model
// remembered in the browser when the user asked for it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { axeViolations, launch, root, safetensorsHeader, serve } from "./harness.mjs";

const tiny = join(root, "assets/tiny-bert");
const tinyFiles = ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f));
const csvPath = join(root, "tests/browser/tiny.csv");
const chatDir = join(root, "tests/fixtures/tiny-chat");
const work = mkdtempSync(join(tmpdir(), "hearth-start-"));

let server;
const consoleLines = [];

before(async () => {
  // The tiny BERT and tiny.csv as the page's demo model and data: the demo path in seconds.
  server = await serve({ tinyDemo: true });
});

after(() => {
  server?.stop();
  if (process.exitCode) console.error(consoleLines.join("\n"));
});

/** A page in `ctx` on the served page, WebGPU up. */
async function openPage(ctx, tag, p = undefined) {
  p ??= ctx.pages()[0] ?? await ctx.newPage();
  p.on("console", (m) => consoleLines.push(`${m.type()} (${tag}): ${m.text()}`));
  p.on("pageerror", (e) => consoleLines.push(`pageerror (${tag}): ${e.message}`));
  await p.goto(`${server.origin}/`, { timeout: 120_000 });
  await waitOn(p, () => document.getElementById("gpu").dataset.adapter !== undefined, 120_000, `WebGPU start (${tag})`);
  return p;
}

/** Waits for `predicate` in `p`, failing early with the page's own error message. */
async function waitOn(p, predicate, timeout, what, arg = undefined) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await p.evaluate(predicate, arg)) return;
    const error = await p.locator(".error").allTextContents();
    if (error.length) assert.fail(`${what}: the page reports ${error.join(" | ")}\n${consoleLines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${what}: timed out after ${timeout} ms\n${consoleLines.join("\n")}`);
}

async function assertAccessible(p, state) {
  const violations = await axeViolations(p);
  assert.deepEqual(violations, [], `axe-core, ${state}: ${JSON.stringify(violations, null, 1)}`);
}

/** The controls a user sees (not folded away, not hidden). */
const visibleControls = (p) => p.evaluate(() => [...document.querySelectorAll("input, select, button, textarea")]
  .filter((el) => el.checkVisibility()).map((el) => el.id || el.name || el.textContent.trim()));

/** Whether the page is no wider than its window (nothing runs off the right edge). */
const fitsWidth = (p) => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

/** Presses Tab until the element `selector` has the focus (keyboard-only use), then Enter. */
async function tabToAndPress(p, selector) {
  for (let i = 0; i < 80; i++) {
    await p.keyboard.press("Tab");
    if (await p.evaluate((s) => document.activeElement?.matches(s), selector)) {
      await p.keyboard.press("Enter");
      return;
    }
  }
  assert.fail(`${selector} is not reached with Tab`);
}

const proposal = async (p) => {
  await waitOn(p, () => document.getElementById("proposal").dataset.ready === "true", 60_000, "the proposed settings");
  return JSON.parse(await p.locator("#proposal").getAttribute("data-proposal"));
};

test("three clicks (demo model, demo data, Start) train a classifier with the proposed settings; accessible throughout", { timeout: 600_000 }, async () => {
  const ctx = await launch();
  try {
    const p = await openPage(ctx, "three clicks");
    await p.setViewportSize({ width: 1280, height: 900 });
    // The first screen: a few controls, the rest folded away, nothing wider than the window.
    const controls = await visibleControls(p);
    assert.ok(controls.length <= 15, `${controls.length} controls shown at first: ${controls.join(", ")}`);
    assert.ok(await fitsWidth(p), "the page is wider than 1280 px");
    await assertAccessible(p, "start");

    // 1. the demo model, 2. the demo data: the page proposes the task and the settings from them.
    await p.getByRole("radio", { name: /Demo: all-MiniLM/ }).click();
    await p.getByRole("button", { name: /^Use the demo data/ }).click();
    const proposed = await proposal(p);
    // The demo data (served from tiny.csv): 96 rows, 10% held out → 86 to train on; three passes in batches of 16.
    assert.deepEqual({ task: proposed.task, batch: proposed.batch, steps: proposed.steps },
      { task: "classification", batch: "16", steps: String(Math.ceil(3 * 86 / 16)) });
    assert.match(await p.locator("#proposal").textContent(), /^Proposed from your model and data.*classification.*steps: 17/);
    const report = JSON.parse(await p.locator("#report").getAttribute("data-json"));
    assert.equal(Number(proposed.max_length), Math.max(16, Math.ceil(report.tokens.lengths.p99 / 16) * 16));

    // 3. Start, from the keyboard.
    await tabToAndPress(p, "#start");
    await waitOn(p, () => /^about \d/.test(document.getElementById("fig-eta").textContent), 300_000,
      "the estimated time to finish");
    await assertAccessible(p, "running");
    await waitOn(p, () => document.querySelectorAll("#downloads li").length === 3, 300_000, "the run");
    assert.match(await p.locator("#run-status").textContent(),
      /^Finished after 17 steps: .* \(mean of all 17 steps\)\./);
    assert.equal(await p.locator("#step-log tbody tr").count(), 17);
    // The run's own plan agrees with the proposal's: the batch fits, nothing to warn about.
    assert.doesNotMatch(await p.locator("#run-status").textContent(), /train\.fit/);
    await assertAccessible(p, "finished");

    // The adapter, downloaded from the keyboard.
    const [download] = await Promise.all([p.waitForEvent("download"),
      tabToAndPress(p, '#downloads a[download="adapter_model.safetensors"]')]);
    const { header } = safetensorsHeader(readFileSync(await download.path()));
    assert.deepEqual(header["base_model.model.classifier.weight"].shape, [3, 32]);

    // The memory plan's long lines wrap: open, the page still fits 1280 px and a phone's 390 px.
    await p.locator("#plan-panel > summary").click();
    assert.ok(await fitsWidth(p), "the page with the plan open is wider than 1280 px");
    await p.setViewportSize({ width: 390, height: 844 });
    assert.ok(await fitsWidth(p), "the page is wider than 390 px");
  } finally {
    await ctx.close();
  }
});

test("three clicks train the tiny chat model on a JSONL file of conversations", { timeout: 600_000 }, async () => {
  // 16 conversations of the SFT fixture: a short run.
  const lines = readFileSync(join(root, "tests/fixtures/capitals_sft.jsonl"), "utf8").split("\n").filter(Boolean);
  const dataPath = join(work, "capitals-16.jsonl");
  writeFileSync(dataPath, `${lines.slice(0, 16).join("\n")}\n`);
  const ctx = await launch();
  try {
    const p = await openPage(ctx, "chat, three clicks");
    await p.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json",
      "tokenizer_config.json", "chat_template.jinja"].map((f) => join(chatDir, f)));
    await p.setInputFiles("#data-file", dataPath);
    const proposed = await proposal(p);
    // 16 conversations, 10% held out → 14 to train on; three passes in batches of 4.
    assert.deepEqual({ task: proposed.task, batch: proposed.batch, steps: proposed.steps },
      { task: "sft", batch: "4", steps: String(Math.ceil(3 * 14 / 4)) });
    // The batch is the memory planner's, and the chat job is planned before Start.
    assert.match(await p.locator("#proposal").textContent(), /batch: 4: the largest of 4, 2, 1 the memory plan fits/);
    await waitOn(p, () => document.getElementById("plan-text").textContent.startsWith("memory plan: micro-batch 4 ×"),
      30_000, "the chat job's plan");
    assert.equal(await p.locator("#plan-panel").getAttribute("data-fits"), "true");
    // Only the chat task's settings are shown: no label column, no pooling.
    assert.equal(await p.locator("#label-column").isVisible(), false);
    await p.click("#start");
    await waitOn(p, () => document.querySelectorAll("#downloads li").length === 3, 400_000, "the SFT run");
    assert.match(await p.locator("#run-status").textContent(), new RegExp(`^Finished after ${proposed.steps} steps`));
    assert.match(await p.locator("#data-status").textContent(), /^16 conversations: 14 to train on/);
    assert.equal(await p.locator("#chat-try").isVisible(), true);
  } finally {
    await ctx.close();
  }
});

test("once visited, the page trains with the network off, the user's model remembered", { timeout: 600_000 }, async () => {
  const ctx = await launch();
  const failed = [];
  try {
    // The service worker's first install fails (one of its fetches dropped, as on a flaky
    // network); the page tries again and keeps its offline copy.
    let dropped = 0;
    await ctx.route(/\/icon\.svg$/, (route) =>
      route.request().serviceWorker() && dropped++ === 0 ? route.abort() : route.continue());
    let p = await openPage(ctx, "offline, first visit");
    const offline = () => document.documentElement.dataset.offline ?? "";
    try {
      await waitOn(p, () => /^(ready|unavailable)/.test(document.documentElement.dataset.offline ?? ""),
        120_000, "the offline copy");
    } catch (e) {
      const workers = await p.evaluate(async () => (await navigator.serviceWorker.getRegistrations())
        .map((r) => ({ active: r.active?.state, waiting: r.waiting?.state, installing: r.installing?.state })));
      throw new Error(`${e.message}\ndata-offline: ${await p.evaluate(offline)}; registrations: ${JSON.stringify(workers)}`);
    }
    // Chromium refuses to store the module when the disk is nearly full (about 2.5 GiB free
    // was measured to be too little); the failure says how much there was.
    const { bavail, bsize } = statfsSync(tmpdir());
    assert.equal(await p.evaluate(offline), "ready",
      `${(bavail * bsize / 2 ** 30).toFixed(1)} GiB free on the profile's disk`);
    assert.ok(dropped >= 2, `the first install's fetch dropped, a later one let through (${dropped})`);
    await ctx.unrouteAll();
    await p.setInputFiles("#model-files", tinyFiles);
    // Remembered only once the user ticks the box; said on the page.
    assert.equal(await p.locator("#remembered").isVisible(), false);
    await p.check("#remember-model");
    await waitOn(p, () => !document.getElementById("remembered").hidden, 30_000, "the remembered model");
    assert.match(await p.locator("#remembered-text").textContent(), /config\.json, model\.safetensors, tokenizer\.json/);

    await ctx.setOffline(true);
    ctx.on("requestfailed", (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    const served = [];
    ctx.on("response", (r) => served.push({ url: r.url(), sw: r.fromServiceWorker() }));
    p = await openPage(ctx, "offline, second visit", p);
    assert.match(await p.locator("#model-status").textContent(), /^Your remembered model is loaded/);
    await p.setInputFiles("#data-file", csvPath);
    await proposal(p);
    await p.fill("#steps", "3");
    await p.click("#start");
    await waitOn(p, () => document.querySelectorAll("#downloads li").length === 3, 300_000, "the offline run");
    assert.match(await p.locator("#run-status").textContent(), /^Finished after 3 steps/);
    const [download] = await Promise.all([p.waitForEvent("download"),
      p.locator("#downloads").getByRole("link", { name: /adapter_model\.safetensors/ }).click()]);
    assert.ok(safetensorsHeader(readFileSync(await download.path())).header["base_model.model.classifier.weight"]);

    // Forgotten, it is gone on the next visit.
    await p.click("#forget-model");
    await waitOn(p, () => document.getElementById("remembered").hidden, 10_000, "forgetting");
    p = await openPage(ctx, "offline, after forgetting", p);
    assert.doesNotMatch(await p.locator("#model-status").textContent(), /remembered/);
    assert.equal(await p.locator('input[name="model-source"][value="demo"]').isChecked(), true);
    // The demo job is planned offline too (its config was kept at the first visit).
    await waitOn(p, () => !document.getElementById("plan-panel").hidden, 30_000, "the demo's plan");
    assert.doesNotMatch(await p.locator("#plan-text").textContent(), /could not be made/);

    assert.deepEqual(failed, []);
    const http = served.filter((r) => r.url.startsWith("http"));
    assert.ok(http.length > 0);
    assert.deepEqual(http.filter((r) => !r.sw).map((r) => r.url), [], "answered by the network while offline");
    console.log(`# offline: ${http.length} responses, all from the service worker; none failed`);
  } finally {
    await ctx.setOffline(false);
    await ctx.close();
  }
});
