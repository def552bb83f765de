#!/usr/bin/env python3
"""A tiny random Llama and its transformers outputs, for Hearth's decoder tests.

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_llama_fixtures.py

Writes tests/fixtures/tiny-llama/ (config.json and model.safetensors of a seeded random
LlamaForCausalLM: 2 layers, hidden 64, 4 heads over 2 KV heads (grouped-query attention),
SwiGLU 96 wide, vocab 128, tied embeddings, RMSNorm eps 1e-5, rope theta 10000) and
tests/fixtures/tiny_llama.json: for two fixed id sequences, the logits of every position, and the
causal-LM loss with labels where the prompt positions are -100 (loss on response tokens only, as
SFT masks them). Float32 on CPU; deterministic. CI never runs this script.
"""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    config = LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.2,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    model = LlamaForCausalLM(config).eval()
    # Non-trivial norms, so that a missing or misplaced RMSNorm weight shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    out_dir = os.path.join(ROOT, "tests/fixtures/tiny-llama")
    model.save_pretrained(out_dir, safe_serialization=True)
    sequences = [
        [1, 17, 33, 5, 99, 64, 23, 2],
        [1, 45, 12, 120, 7, 2, 0, 0],
    ]
    attention = [[1] * 8, [1] * 6 + [0, 0]]
    prompt_len = [4, 3]
    ids = torch.tensor(sequences)
    mask = torch.tensor(attention)
    labels = ids.clone()
    for i, n in enumerate(prompt_len):
        labels[i, :n] = -100
    labels[mask == 0] = -100
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    fixture = {
        "input_ids": sequences,
        "attention_mask": attention,
        "prompt_len": prompt_len,
        "logits": out.logits.tolist(),
        "loss": out.loss.item(),
    }
    with open(os.path.join(ROOT, "tests/fixtures/tiny_llama.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")


if __name__ == "__main__":
    main()
