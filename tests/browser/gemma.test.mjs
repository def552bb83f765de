// Gemma 3 SFT in the page: a tiny random Gemma 3 GGUF with a SentencePiece vocabulary
// (tiny-gemma-chat.gguf: sliding-window and global layers, q/k norms, GeGLU, `1 + w` norms around
// both blocks) with Gemma's chat template picked beside it, its base as q8 blocks,
// LoRA dropout on and gradient checkpointing (each layer recomputed in the backward pass, its
// dropout masks drawn again), two steps on WebGPU; the same exported job run by the CLI on the
// CPU gives the same losses. Its own page and server, and a job kept tiny: SwiftShader is slow.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ownPage, root } from "./harness.mjs";
import { pageVersusCli } from "./sft-parity.mjs";

const gguf = join(root, "tests/fixtures/tiny-gemma-chat.gguf");
// The page takes a GGUF's template from a chat_template.jinja picked with it.
const template = join(mkdtempSync(join(tmpdir(), "hearth-gemma-")), "chat_template.jinja");
copyFileSync(join(root, "jobs/gemma3-chat-template.jinja"), template);
const session = ownPage();

test("Gemma 3 trains in the page, checkpointed on a q8 base, with the CLI's losses", { timeout: 600_000 }, async () => {
  await pageVersusCli(session, {
    name: "Gemma 3",
    files: [gguf, template],
    loaded: "GGUF",
    settings: { "#model-path": "tiny-gemma-chat.gguf", "#lora-dropout": "0.1" },
    configure: async (page) => {
      await page.selectOption("#quantize", "q8");
      await page.check("#grad-checkpointing");
    },
    expect: (job) => {
      assert.equal(job.model.quantize, "q8");
      assert.equal(job.train.gradient_checkpointing, true);
    },
    cliModel: ["--model", gguf, "--chat-template", template],
  });
});
