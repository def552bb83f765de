#!/usr/bin/env python3
"""Writes tests/fixtures/gguf_smollm2.json: what gguf-py (llama.cpp's own Python reader,
an implementation independent of hearth-gguf) reads from SmolLM2-135M-Instruct.Q4_1.gguf.

It records the header, the Llama hyper-parameters, the tensor count, the infos of a few tensors,
and for a few tensors (one per storage type: Q8_0, Q4_1, F32) the first and last 64 values after
dequantization plus the sum, the sum of absolute values and the sum of squares over the whole
tensor (float64). Values are in ggml's order: the raw file order, with llama.cpp's permutation
of the attn_q/attn_k rows left in place (transformers' GGUF loader undoes it; this does not).
It also records gguf-py's table of ggml block sizes, so the Rust table is checked against it.

    ~/.cache/hearth-peer-venv/bin/python scripts/make_gguf_fixtures.py \
        --gguf assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/fixtures/gguf_smollm2.json
"""
import argparse
import json

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

KEYS = [
    "general.architecture",
    "llama.block_count",
    "llama.context_length",
    "llama.embedding_length",
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.rope.freq_base",
    "llama.attention.layer_norm_rms_epsilon",
    "general.alignment",
]
INFO_TENSORS = [
    "token_embd.weight",
    "blk.0.attn_norm.weight",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.ffn_down.weight",
    "blk.29.ffn_up.weight",
    "output_norm.weight",
]
VALUE_TENSORS = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight", "blk.29.ffn_up.weight"]


def field_value(reader, key):
    field = reader.get_field(key)
    if field is None:
        return None
    value = field.contents()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    reader = GGUFReader(args.gguf)
    tensors = {t.name: t for t in reader.tensors}

    tokens = reader.get_field("tokenizer.ggml.tokens").contents()
    out = {
        "source": "gguf-py GGUFReader + gguf.quants.dequantize (numpy), ggml element order",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "version": field_value(reader, "GGUF.version"),
        "tensor_count": len(reader.tensors),
        "kv_count": len(reader.fields) - 3,  # GGUFReader adds GGUF.version/tensor_count/kv_count
        "data_offset": reader.data_offset,
        "metadata": {k: field_value(reader, k) for k in KEYS},
        "vocab_size": len(tokens),
        "tokens_head": tokens[:8],
        "tokens_tail": tokens[-4:],
        "bos_token_id": field_value(reader, "tokenizer.ggml.bos_token_id"),
        "tensor_names_head": [t.name for t in reader.tensors[:12]],
        "tensors": {},
        "values": {},
        "ggml_types": {
            k.name: {"id": int(k), "block_size": v[0], "type_size": v[1]} for k, v in GGML_QUANT_SIZES.items()
        },
    }
    for name in INFO_TENSORS:
        t = tensors[name]
        out["tensors"][name] = {
            "dims": [int(d) for d in t.shape],
            "type": t.tensor_type.name,
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "file_offset": int(t.data_offset),
        }
    for name in VALUE_TENSORS:
        t = tensors[name]
        x = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        assert x.size == t.n_elements
        x64 = x.astype(np.float64)
        out["values"][name] = {
            "type": t.tensor_type.name,
            "first": [float(v) for v in x[:64]],
            "last": [float(v) for v in x[-64:]],
            "sum": float(x64.sum()),
            "sum_abs": float(np.abs(x64).sum()),
            "sum_sq": float((x64 * x64).sum()),
        }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
