#!/usr/bin/env bash
# Runs every test of the repository: fetches the test assets if needed, then the Rust tests.
# This is the README's test command; .ci/run calls exactly it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-assets.sh
cargo test --workspace --locked
