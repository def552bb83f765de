// The page's data report for the SFT task is `hearth inspect`'s chat report: the hand-counted
// conversations of tests/fixtures/chat_report.jsonl with the tiny chat model's tokenizer and
// template, in the page and from the CLI, give the same JSON. Its own page and server, so it
// runs alone in seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { bin, ownPage, root } from "./harness.mjs";

const chatDir = join(root, "tests/fixtures/tiny-chat");
const dataPath = join(root, "tests/fixtures/chat_report.jsonl");

const session = ownPage();
const { consoleLines } = session;

test("the page's chat report equals hearth inspect's for the same file", { timeout: 120_000 }, async () => {
  const { server, page } = session;
  await page.goto(`${server.origin}/`);
  await page.waitForFunction(() => document.getElementById("gpu").dataset.adapter !== undefined, null,
    { timeout: 120_000 });
  await page.selectOption("#task", "sft");
  await page.setInputFiles("#model-files", ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
    "config.json", "model.safetensors"].map((f) => join(chatDir, f)));
  await page.fill("#max-length", "40");
  await page.setInputFiles("#data-file", dataPath);
  await page.waitForFunction(() => {
    const el = document.getElementById("report");
    return el.dataset.json && JSON.parse(el.dataset.json).conversations === 13
      && JSON.parse(el.dataset.json).tokens && JSON.parse(el.dataset.settings).max_length === 40;
  }, null, { timeout: 60_000 }).catch(() => assert.fail(`no chat report\n${consoleLines.join("\n")}`));
  const pageReport = JSON.parse(await page.locator("#report").getAttribute("data-json"));
  const settings = JSON.parse(await page.locator("#report").getAttribute("data-settings"));
  const cli = JSON.parse(execFileSync(bin("hearth"), ["inspect", dataPath, "--model", chatDir,
    "--max-length", String(settings.max_length), "--eval-fraction", String(settings.eval_fraction),
    "--seed", String(settings.seed), "--json"], { cwd: root, encoding: "utf8" }));
  assert.deepEqual(pageReport, cli.chat);
  // The hand count (crates/hearth-data/src/quality/chat.rs) as the page shows it.
  assert.deepEqual(pageReport.role_order.examples, [7, 9]);
  assert.deepEqual(pageReport.exact_duplicates.examples, [[1, 2], [4, 5]]);
  const checks = await page.locator("#findings li").evaluateAll((lis) => lis.map((li) => li.dataset.check));
  for (const check of ["unreadable", "role_errors", "missing_answers", "empty_answers", "conflicting_answers",
    "personal_data", "truncation"]) {
    assert.ok(checks.includes(check), `${check} in ${checks}`);
  }
  assert.match(await page.locator("#report-table").textContent(), /Same prompt, other answers1 prompts/);
  console.log(`# chat report in the page: ${checks.length} findings, same as hearth inspect --json`);
});
