// Measurements for docs/BROWSER.md (not a test): run with the page built (`cargo xtask web`).
//   node measure.mjs minilm [steps]   MiniLM (demo model + demo data), batch 8, max length 64,
//                                     in headless Chromium on WebGPU; prints per-step times
//   node measure.mjs screenshot OUT   a tiny-BERT run of 60 steps, screenshot at step 40
//   node measure.mjs screenshots DIR  the three-click start with the tiny BERT and tiny.csv: the
//                                     start, running and finished states at 1280 and 390 px,
//                                     as DIR/page-{start,running,finished}-{1280,390}.png
//   node measure.mjs tti [visits]     time to interactive (WebGPU and the module ready, as the
//                                     page reports it) on a first visit and on the next ones
//   node measure.mjs sft [steps]      SmolLM2-135M (the GGUF in assets/smollm2) fine-tuned on
//                                     tests/fixtures/capitals_sft.jsonl, batch 2, max length 64;
//                                     prints per-step times and the run's tokens/s
//   node measure.mjs kernels [steps]  the compute pipelines (kernels) the page's worker creates
//                                     in a tiny-BERT run (batch 8, max length 128, 30 steps) on
//                                     240 texts of 1 to 110 words, of 1 to 40, of 20 words, and
//                                     (batch 1) of eight lengths, one per bucket; KERNEL_DATA=NAME
//                                     runs one of them
//                                     per step, with the page's default buckets of 16
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, openAdvanced, root, serve } from "./harness.mjs";

const [mode = "minilm", arg] = process.argv.slice(2);
if (mode === "kernels") {
  await kernels(Number(arg ?? 30));
  process.exit(0);
}
const server = await serve();
const context = await launch();
const page = context.pages()[0] ?? await context.newPage();
page.on("console", (m) => console.error(`console ${m.type()}: ${m.text()}`));
const t0 = Date.now();
await page.goto(`${server.origin}/`);
await page.waitForFunction(() => document.getElementById("gpu").dataset.adapter !== undefined, null, { timeout: 120_000 });
console.log(await page.locator("#gpu").textContent());

const set = async (settings) => {
  await openAdvanced(page);
  for (const [sel, value] of Object.entries(settings)) await page.fill(sel, value);
};
const steps = () => page.locator("#step-log tbody tr").count();
const fail = async () => (await page.locator(".error").allTextContents()).join(" | ");

try {
  if (mode === "minilm") {
    const n = Number(arg ?? 4);
    await page.click("#demo-data");
    await page.waitForFunction(() => document.getElementById("label-column").options.length > 0);
    await page.selectOption("#label-column", "sentiment");
    await set({ "#steps": String(n), "#batch-size": "8", "#max-length": "64", "#eval-fraction": "0.01",
      "#eval-every": "0", "#warmup": "0" });
    const clicked = Date.now();
    await page.click("#start");
    const stamps = [];
    while (stamps.length < n) {
      const err = await fail();
      if (err) throw new Error(err);
      const k = await steps();
      while (stamps.length < k) stamps.push((Date.now() - clicked) / 1000);
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`page open → Start ${(clicked - t0) / 1000} s; first step ${await page.locator("#fig-first").textContent()}`);
    console.log(`step done at (s after Start): ${stamps.join(", ")}`);
    const gaps = stamps.slice(1).map((s, i) => s - stamps[i]);
    console.log(`steady step time (s): ${gaps.map((g) => g.toFixed(2)).join(", ")}`);
  } else if (mode === "sft") {
    const n = Number(arg ?? 2);
    await page.selectOption("#task", "sft");
    await page.setInputFiles("#model-files", join(root, "assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
    await page.setInputFiles("#data-file", join(root, "tests/fixtures/capitals_sft.jsonl"));
    await page.waitForFunction(() => document.getElementById("data-status").textContent.includes("columns"));
    await set({ "#steps": String(n), "#batch-size": "2", "#max-length": "64", "#eval-fraction": "0.02",
      "#eval-every": "0", "#warmup": "0", "#checkpoint-every": "0", "#lr": "0.001" });
    const clicked = Date.now();
    await page.click("#start");
    const stamps = [];
    while ((await page.locator("#downloads li").count()) < 3) {
      const err = await fail();
      if (err) throw new Error(err);
      const k = await steps();
      while (stamps.length < k) stamps.push((Date.now() - clicked) / 1000);
      await new Promise((r) => setTimeout(r, 500));
    }
    const summary = JSON.parse(await page.locator("#run-status").getAttribute("data-summary"));
    console.log(`page open → Start ${(clicked - t0) / 1000} s; step done at (s after Start): ${stamps.join(", ")}`);
    console.log(`training ${summary.train_seconds.toFixed(1)} s: ${summary.real_tokens_per_s.toFixed(2)} real tokens/s, ` +
      `${summary.padded_tokens_per_s.toFixed(2)} padded tokens/s; loss ${summary.loss_first} → ${summary.loss_last20}`);
  } else if (mode === "screenshots") {
    const dir = arg ?? ".";
    const shoot = async (state) => {
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: width === 1280 ? 900 : 844 });
        await page.screenshot({ path: join(dir, `page-${state}-${width}.png`), fullPage: true });
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    };
    const tiny = join(root, "assets/tiny-bert");
    await page.setViewportSize({ width: 1280, height: 900 });
    const shown = () => page.evaluate(() => [...document.querySelectorAll("input, select, button, textarea")]
      .filter((el) => el.checkVisibility()).length);
    console.log(`first screen: ${await shown()} controls shown, ` +
      `${await page.evaluate(() => document.documentElement.scrollWidth)} px wide at 1280 px`);
    await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
    await page.setInputFiles("#data-file", join(root, "tests/browser/tiny.csv"));
    await page.waitForFunction(() => document.getElementById("proposal").dataset.ready === "true", null, { timeout: 60_000 });
    console.log(`model and data chosen: ${await shown()} controls shown`);
    await shoot("start");
    await page.click("#start");
    await page.waitForFunction(() => /^about/.test(document.getElementById("fig-eta").textContent), null, { timeout: 300_000 });
    await shoot("running");
    await page.waitForFunction(() => document.querySelectorAll("#downloads li").length === 3, null, { timeout: 300_000 });
    await shoot("finished");
    console.log(`screenshots written to ${dir}`);
  } else if (mode === "tti") {
    const ready = () => page.locator("#gpu").textContent().then((t) => Number(t.match(/ready ([\d.]+) s after/)[1]));
    const times = [await ready()];
    for (let i = 1; i < Number(arg ?? 3); i++) {
      // Give a service worker, where there is one, the time to cache the page and the module.
      await new Promise((r) => setTimeout(r, 3000));
      await page.reload();
      await page.waitForFunction(() => document.getElementById("gpu").dataset.adapter !== undefined, null, { timeout: 120_000 });
      times.push(await ready());
    }
    console.log(`ready (s after the page opened): first visit ${times[0]}, then ${times.slice(1).join(", ")}`);
  } else if (mode === "screenshot") {
    const tiny = join(root, "assets/tiny-bert");
    await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
    await page.setInputFiles("#data-file", join(root, "tests/browser/tiny.csv"));
    await page.waitForFunction(() => document.getElementById("label-column").options.length > 0);
    await set({ "#model-path": "tiny-bert", "#eval-fraction": "0.25", "#r": "4", "#alpha": "8", "#lr": "0.02",
      "#steps": "60", "#batch-size": "16", "#max-length": "32", "#warmup": "5", "#eval-every": "10" });
    await openAdvanced(page);
    await page.selectOption("#pooling", "mean");
    await page.click("#start");
    while ((await steps()) < 40) {
      const err = await fail();
      if (err) throw new Error(err);
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.screenshot({ path: arg ?? "page.png", fullPage: true });
    console.log(`screenshot written to ${arg ?? "page.png"}`);
  }
} finally {
  await context.close();
  server.stop();
}

/** Counts the compute pipelines the page's worker creates (every kernel CubeCL compiles for
 * WebGPU becomes one) in tiny-BERT runs on data of many lengths and of one length. */
async function kernels(n) {
  const words = "the food was nice and awful movie train station today love café great bad".split(" ");
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const labels = ["positive", "negative", "neutral"];
  const csv = (length) => "text,label\n" + Array.from({ length: 240 }, (_, i) =>
    Array.from({ length: length(i) }, () => words[Math.floor(random() * words.length)]).join(" ") +
    "," + labels[i % 3]).join("\n") + "\n";
  // Each: the texts, the batch size and the steps. The last one meets every bucket of 16 up to
  // the maximum length of 128 (one text per batch, eight lengths, one per bucket): the most a
  // run of this job can compile, whatever its data.
  const files = {
    "1 to 110 words": [csv((i) => 1 + (i * 37) % 110), 8, n],
    "1 to 40 words": [csv((i) => 1 + (i * 13) % 40), 8, n],
    "20 words each": [csv(() => 20), 8, n],
    "every bucket, batch 1": [csv((i) => [5, 20, 35, 50, 65, 80, 95, 110][i % 8]), 1, 2 * n],
  };
  const only = process.env.KERNEL_DATA;
  const tiny = join(root, "assets/tiny-bert");
  const server = await serve();
  try {
    for (const [name, [text, batch, runSteps]] of Object.entries(files)) {
      if (only && name !== only) continue;
      const path = join(tmpdir(), `hearth-kernels-${name.replace(/ /g, "-")}.csv`);
      writeFileSync(path, text);
      const context = await launch();
      const page = context.pages()[0] ?? await context.newPage();
      // The worker is instrumented as soon as it exists, long before the first kernel (the
      // module's glue looks the method up on every call, so patching the prototype counts all).
      let worker;
      const instrumented = new Promise((resolve) => page.on("worker", async (w) => {
        await w.evaluate(() => {
          self.hearthPipelines = 0;
          for (const name of ["createComputePipeline", "createComputePipelineAsync"]) {
            const original = GPUDevice.prototype[name];
            GPUDevice.prototype[name] = function (...args) {
              self.hearthPipelines += 1;
              return original.apply(this, args);
            };
          }
        });
        worker = w;
        resolve();
      }));
      await page.goto(`${server.origin}/`);
      await instrumented;
      await page.waitForFunction(() => document.getElementById("gpu").dataset.adapter !== undefined, null, { timeout: 120_000 });
      await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
      await page.setInputFiles("#data-file", path);
      await page.waitForFunction(() => document.getElementById("label-column").options.length > 0);
      await openAdvanced(page);
      for (const [sel, value] of Object.entries({ "#model-path": "tiny-bert", "#eval-fraction": "0.1",
        "#steps": String(runSteps), "#batch-size": String(batch), "#max-length": "128", "#warmup": "0", "#eval-every": "0",
        "#checkpoint-every": "0" })) await page.fill(sel, value);
      const before = await worker.evaluate(() => self.hearthPipelines);
      await page.click("#start");
      const perStep = [];
      let done = false;
      while (!done) {
        const err = (await page.locator(".error").allTextContents()).join(" | ");
        if (err) throw new Error(err);
        done = (await page.locator("#downloads li").count()) >= 3;
        const k = await page.locator("#step-log tbody tr").count();
        const count = await worker.evaluate(() => self.hearthPipelines);
        while (perStep.length < k) perStep.push(count);
        await new Promise((r) => setTimeout(r, 100));
      }
      const total = await worker.evaluate(() => self.hearthPipelines);
      const steps = perStep.map((c, i) => c - (i ? perStep[i - 1] : before))
        .map((c, i) => [i + 1, c]).filter(([, c]) => c > 0);
      console.log(`${name} (batch ${batch}, ${runSteps} steps): ${total - before} pipelines in the run (${before} before Start); ` +
        `steps that created some (about; polled): ${steps.map(([s, c]) => `${s} (${c})`).join(", ")}; ` +
        `after the last step: ${total - perStep[perStep.length - 1]}`);
      await context.close();
    }
  } finally {
    server.stop();
  }
}
