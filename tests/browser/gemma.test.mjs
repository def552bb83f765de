// Gemma 3 SFT in the page: a tiny random Gemma 3 GGUF with a SentencePiece vocabulary
// (tiny-gemma-chat.gguf: sliding-window and global layers, q/k norms, GeGLU, `1 + w` norms around
// both blocks) with Gemma's chat template picked beside it, its base as q8 blocks,
// LoRA dropout on and gradient checkpointing (each layer recomputed in the backward pass, its
// dropout masks drawn again), two steps on WebGPU; the same exported job run by the CLI on the
// CPU gives the same losses. Its own page and server, and a job kept tiny: SwiftShader is slow.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, openAdvanced, ownPage, root, waitUntil } from "./harness.mjs";

const gguf = join(root, "tests/fixtures/tiny-gemma-chat.gguf");
const dataPath = join(root, "tests/fixtures/capitals_sft.jsonl");
const work = mkdtempSync(join(tmpdir(), "hearth-gemma-"));
// The page takes a GGUF's template from a chat_template.jinja picked with it.
const template = join(work, "chat_template.jinja");
copyFileSync(join(root, "jobs/gemma3-chat-template.jinja"), template);

const session = ownPage();
const { consoleLines } = session;
const waitFor = (predicate, timeout, what) =>
  waitUntil(session.page, predicate, timeout, what, consoleLines);

test("Gemma 3 trains in the page, checkpointed on a q8 base, with the CLI's losses", { timeout: 600_000 }, async () => {
  const { server, page } = session;
  await page.goto(`${server.origin}/`, { timeout: 120_000 });
  await waitFor(() => document.getElementById("gpu").dataset.adapter !== undefined, 120_000, "WebGPU start");
  await page.selectOption("#task", "sft");
  await page.setInputFiles("#model-files", [gguf, template]);
  await waitFor(() => document.getElementById("model-status").textContent.includes("GGUF"), 10_000, "the GGUF file");
  await page.setInputFiles("#data-file", dataPath);
  await waitFor(() => document.getElementById("data-status").textContent.includes("columns"), 10_000, "data");
  await openAdvanced(page);
  const settings = { "#model-path": "tiny-gemma-chat.gguf", "#eval-fraction": "0.1", "#r": "4", "#alpha": "8",
    "#lora-dropout": "0.1", "#lr": "0.05", "#steps": "2", "#batch-size": "2", "#max-length": "32",
    "#warmup": "0", "#eval-every": "0", "#checkpoint-every": "0", "#seed": "5",
    "#targets": "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj" };
  for (const [sel, value] of Object.entries(settings)) await page.fill(sel, value);
  await page.selectOption("#quantize", "q8");
  await page.check("#grad-checkpointing");

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-job")]);
  const jobPath = join(work, "gemma-job.json");
  await download.saveAs(jobPath);
  const job = JSON.parse(readFileSync(jobPath, "utf8"));
  assert.equal(job.model.quantize, "q8");
  assert.equal(job.train.gradient_checkpointing, true);

  const clicked = Date.now();
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 500_000, "the Gemma SFT run");
  console.log(`# Gemma 3 in the page: Start → done ${(Date.now() - clicked) / 1000} s`);
  const losses = await page.locator("#step-log tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.loss)));
  assert.equal(losses.length, 2);
  assert.ok(losses.every(Number.isFinite), losses.join(", "));

  const out = execFileSync(bin("hearth"), ["train", "--job", jobPath, "--model", gguf, "--chat-template", template,
    "--data", dataPath, "--device", "cpu", "--jsonl", "--out", join(work, "cli-gemma")], { cwd: root, encoding: "utf8" });
  const cli = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === "step").map((e) => e.loss);
  assert.equal(cli.length, losses.length);
  const worst = Math.max(...cli.map((l, i) => Math.abs(l - losses[i])));
  console.log(`# Gemma 3 page vs CLI: largest step-loss difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `page ${losses.join(", ")}\ncli ${cli.join(", ")}`);
});
