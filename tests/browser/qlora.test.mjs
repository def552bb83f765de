// QLoRA in the page: the tiny chat model fine-tuned on WebGPU with its projections kept as q4
// blocks (`model.quantize = "q4"`, the quantized linear's CubeCL kernels under fusion), two
// steps, and the same exported job run by the CLI on the CPU (the Flex kernel) giving the same
// losses. Its own page and server, and a job kept tiny: SwiftShader is slow.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, openAdvanced, ownPage, root, waitUntil } from "./harness.mjs";

const chatDir = join(root, "tests/fixtures/tiny-chat");
const dataPath = join(root, "tests/fixtures/capitals_sft.jsonl");
const work = mkdtempSync(join(tmpdir(), "hearth-qlora-"));

const session = ownPage();
const { consoleLines } = session;
const waitFor = (predicate, timeout, what) =>
  waitUntil(session.page, predicate, timeout, what, consoleLines);

test("a q4 base trains in the page on WebGPU with the CLI's losses on the CPU", { timeout: 600_000 }, async () => {
  const { server, page } = session;
  await page.goto(`${server.origin}/`, { timeout: 120_000 });
  await waitFor(() => document.getElementById("gpu").dataset.adapter !== undefined, 120_000, "WebGPU start");
  await page.selectOption("#task", "sft");
  await page.setInputFiles("#model-files", ["config.json", "model.safetensors", "tokenizer.json",
    "tokenizer_config.json", "chat_template.jinja"].map((f) => join(chatDir, f)));
  await waitFor(() => document.getElementById("model-status").textContent.includes("All three"), 10_000, "chat model files");
  await page.setInputFiles("#data-file", dataPath);
  await waitFor(() => document.getElementById("data-status").textContent.includes("columns"), 10_000, "data");
  await openAdvanced(page);
  // Adapters on all seven projections, so every quantized linear is on the gradient's path.
  const settings = { "#model-path": "tiny-chat", "#eval-fraction": "0.1", "#r": "4", "#alpha": "8",
    "#lora-dropout": "0", "#lr": "0.05", "#steps": "2", "#batch-size": "2", "#max-length": "32",
    "#warmup": "0", "#eval-every": "0", "#checkpoint-every": "0", "#seed": "5",
    "#targets": "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj" };
  for (const [sel, value] of Object.entries(settings)) await page.fill(sel, value);
  await page.selectOption("#quantize", "q4");

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-job")]);
  const jobPath = join(work, "qlora-job.json");
  await download.saveAs(jobPath);
  const job = JSON.parse(readFileSync(jobPath, "utf8"));
  assert.equal(job.model.quantize, "q4");

  const clicked = Date.now();
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 500_000, "the q4 SFT run");
  console.log(`# QLoRA (q4) in the page: Start → done ${(Date.now() - clicked) / 1000} s`);
  const losses = await page.locator("#step-log tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.loss)));
  assert.equal(losses.length, 2);
  assert.ok(losses.every(Number.isFinite), losses.join(", "));

  const out = execFileSync(bin("hearth"), ["train", "--job", jobPath, "--model", chatDir, "--data", dataPath,
    "--device", "cpu", "--jsonl", "--out", join(work, "cli-qlora")], { cwd: root, encoding: "utf8" });
  const cli = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === "step").map((e) => e.loss);
  assert.equal(cli.length, losses.length);
  const worst = Math.max(...cli.map((l, i) => Math.abs(l - losses[i])));
  console.log(`# QLoRA page vs CLI: largest step-loss difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `page ${losses.join(", ")}\ncli ${cli.join(", ")}`);
});
