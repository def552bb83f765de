// QLoRA in the page: the tiny chat model fine-tuned on WebGPU with its projections kept as q4
// blocks (`model.quantize = "q4"`, the quantized linear's CubeCL kernels under fusion), two
// steps, and the same exported job run by the CLI on the CPU (the Flex kernel) giving the same
// losses. Its own page and server, and a job kept tiny: SwiftShader is slow.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ownPage, root } from "./harness.mjs";
import { pageVersusCli } from "./sft-parity.mjs";

const chatDir = join(root, "tests/fixtures/tiny-chat");
const session = ownPage();

test("a q4 base trains in the page on WebGPU with the CLI's losses on the CPU", { timeout: 600_000 }, async () => {
  await pageVersusCli(session, {
    name: "QLoRA (q4)",
    files: ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]
      .map((f) => join(chatDir, f)),
    loaded: "All three",
    settings: { "#model-path": "tiny-chat", "#lora-dropout": "0" },
    configure: (page) => page.selectOption("#quantize", "q4"),
    expect: (job) => assert.equal(job.model.quantize, "q4"),
    cliModel: ["--model", chatDir],
  });
});
