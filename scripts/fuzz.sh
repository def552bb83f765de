#!/usr/bin/env bash
# Runs each fuzz target of fuzz/ (the dataset loaders, the data-quality code, the chat report,
# the GGUF reader, a job against a model's config and tensor names) for a bounded time with
# libFuzzer: `scripts/fuzz.sh [SECONDS per target, default 60]`. Needs a nightly toolchain and
# cargo-fuzz; installs them if missing. A crash fails the script and leaves the input in
# fuzz/artifacts/TARGET/, which `cargo +nightly fuzz run TARGET FILE` replays.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/load fuzz/corpus/text fuzz/corpus/chat fuzz/corpus/gguf fuzz/corpus/compat
# Seed the corpora with the committed fixtures (one selector byte + the file for `load`).
for f in crates/hearth-data/tests/fixtures/* tests/browser/tiny.csv; do
  name=$(basename "$f")
  { printf '\x00'; cat "$f"; } > "fuzz/corpus/load/$name"
  { printf '\x82'; cat "$f"; } > "fuzz/corpus/load/labels-$name"
  head -c 4096 "$f" > "fuzz/corpus/text/$name"
done
# Conversations seed `chat` (the selector byte picks JSONL, measured, with a split).
for f in tests/fixtures/*_sft.jsonl tests/fixtures/chat_report.jsonl; do
  { printf '\xc5'; head -c 16384 "$f"; } > "fuzz/corpus/chat/$(basename "$f")"
done
# A small GGUF file of every supported type (the hearth-gguf tests write it) seeds `gguf`.
HEARTH_GGUF_SEED="$PWD/fuzz/corpus/gguf/every-type.gguf" cargo test -q -p hearth-gguf --test synthetic \
  write_fuzz_seed >/dev/null
# So do the K-quant fixture (random blocks of Q5_0, Q5_1, Q2_K … Q6_K and their f32 values) and,
# as raw blocks behind a type selector byte (the target's second reading), bytes of it.
cp tests/fixtures/kquants.gguf fuzz/corpus/gguf/kquants.gguf
# Selector (the type's index in GgmlType::ALL) and block size: four blocks of fixture bytes each.
for sel_size in 04:22 05:24 08:84 09:110 0a:144 0b:176 0c:210; do
  { printf "\x${sel_size%:*}"; tail -c 4096 tests/fixtures/kquants.gguf | head -c $((4 * ${sel_size#*:})); } \
    > "fuzz/corpus/gguf/blocks-${sel_size%:*}"
done
# `compat`: a job file, NUL, a config.json, NUL, tensor names one a line (a BERT's and a Llama's).
bert='{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
  "intermediate_size": 16, "max_position_embeddings": 8}'
bert_names='embeddings.word_embeddings.weight
encoder.layer.0.output.dense.weight
encoder.layer.1.output.LayerNorm.weight
cls.predictions.bias'
llama_names='model.embed_tokens.weight
model.layers.0.self_attn.q_proj.weight
model.layers.2.mlp.up_proj.bias
lm_head.weight'
for f in jobs/*.toml; do
  name=$(basename "$f" .toml)
  { cat "$f"; printf '\x00%s\x00%s' "$bert" "$bert_names"; } > "fuzz/corpus/compat/$name-bert"
  { cat "$f"; printf '\x00'; cat tests/fixtures/tiny-chat/config.json; printf '\x00%s' "$llama_names"; } \
    > "fuzz/corpus/compat/$name-llama"
done
for target in load text chat gguf compat; do
  (cd fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 2>&1 | tail -n 12)
done
