// The page-vs-CLI check the chat-model browser tests share: in a test file's own page (from
// `ownPage`), the SFT task with the given model files, the capitals conversations, a tiny job
// (adapters on all seven projections, two steps) plus the test's own settings; the job exported,
// planned before Start as `hearth plan` plans it, trained in the page on WebGPU, and the same
// exported job trained by the CLI on the CPU.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, openAdvanced, root, waitUntil } from "./harness.mjs";

const dataPath = join(root, "tests/fixtures/capitals_sft.jsonl");

/** `name`: for messages; `files`: the model files to pick; `loaded`: text the model status shows
 * once they are read; `settings`: `{selector: value}` filled in after the shared ones; `configure`:
 * more setup on the page; `expect(job)`: checks of the exported job; `cliModel`: the CLI's
 * arguments naming the model. */
export async function pageVersusCli(session, { name, files, loaded, settings, configure, expect, cliModel }) {
  const { server, page, consoleLines } = session;
  const waitFor = (predicate, timeout, what, arg) =>
    waitUntil(page, predicate, timeout, what, consoleLines, arg);
  const work = mkdtempSync(join(tmpdir(), "hearth-sft-parity-"));
  await page.goto(`${server.origin}/`, { timeout: 120_000 });
  await waitFor(() => document.getElementById("gpu").dataset.adapter !== undefined, 120_000, "WebGPU start");
  await page.selectOption("#task", "sft");
  await page.setInputFiles("#model-files", files);
  await waitFor((text) => document.getElementById("model-status").textContent.includes(text), 10_000,
    "the model files", loaded);
  await page.setInputFiles("#data-file", dataPath);
  await waitFor(() => document.getElementById("data-status").textContent.includes("columns"), 10_000, "data");
  await openAdvanced(page);
  // Adapters on all seven projections, so every projection is on the gradient's path.
  const shared = { "#eval-fraction": "0.1", "#r": "4", "#alpha": "8", "#lr": "0.05", "#steps": "2",
    "#batch-size": "2", "#max-length": "32", "#warmup": "0", "#eval-every": "0", "#checkpoint-every": "0",
    "#seed": "5", "#targets": "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj" };
  for (const [sel, value] of Object.entries({ ...shared, ...settings })) await page.fill(sel, value);
  await configure(page);

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-job")]);
  const jobPath = join(work, "job.json");
  await download.saveAs(jobPath);
  expect(JSON.parse(readFileSync(jobPath, "utf8")));

  // Before Start the page plans the chat job (from config.json or the .gguf's first bytes): its
  // estimate is the one `hearth plan` makes of the exported job (the limits differ: the GPU's).
  const cliPlan = execFileSync(bin("hearth"), ["plan", "--job", jobPath, ...cliModel, "--data", dataPath],
    { cwd: root, encoding: "utf8" });
  const estimate = cliPlan.slice(0, cliPlan.indexOf("\nlimits:"));
  assert.match(estimate, /^memory plan: micro-batch 2 × 32 tokens/);
  try {
    await waitFor((want) => document.getElementById("plan-text").textContent.startsWith(`${want}\n`), 30_000,
      "the page's plan", estimate);
  } catch (e) {
    throw new Error(`${e.message}\npage: ${await page.locator("#plan-text").textContent()}\ncli: ${cliPlan}`);
  }
  assert.equal(await page.locator("#plan-panel").getAttribute("data-fits"), "true");

  const clicked = Date.now();
  await page.click("#start");
  await waitFor(() => document.querySelectorAll("#downloads li").length === 3, 500_000, `the ${name} run`);
  console.log(`# ${name} in the page: Start → done ${(Date.now() - clicked) / 1000} s`);
  const losses = await page.locator("#step-log tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.loss)));
  assert.equal(losses.length, 2);
  assert.ok(losses.every(Number.isFinite), losses.join(", "));

  const out = execFileSync(bin("hearth"), ["train", "--job", jobPath, ...cliModel, "--data", dataPath,
    "--device", "cpu", "--jsonl", "--out", join(work, "cli")], { cwd: root, encoding: "utf8" });
  const cli = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === "step").map((e) => e.loss);
  assert.equal(cli.length, losses.length);
  const worst = Math.max(...cli.map((l, i) => Math.abs(l - losses[i])));
  console.log(`# ${name} page vs CLI: largest step-loss difference ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `page ${losses.join(", ")}\ncli ${cli.join(", ")}`);
}
