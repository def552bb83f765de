#!/usr/bin/env bash
# Regenerates the committed PyTorch / transformers / PEFT / scikit-learn / gguf-py reference
# fixtures in tests/fixtures/ with the generators of scripts/fixtures/ (one module a topic),
# in dependency order; arguments name generators to run alone (`--list` lists them).
#
#   scripts/regenerate-fixtures.sh [NAME ...] [--skip NAME] [--list]
#
# Needs the peer venv (../shared/reference/setup.sh; PEER_PYTHON names another interpreter),
# the assets of scripts/fetch-assets.sh, cargo (two of Hearth's examples) and, for `adapters`,
# Hearth's release CLI (`cargo build --release -p hearth-cli`, or HEARTH_BIN). Then
# `git status tests/fixtures` shows what changed: the generators are deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PEER_PYTHON:-$HOME/.cache/hearth-peer-venv/bin/python}"
if [ ! -x "$py" ]; then
  echo "error: no peer venv at $py: run ../shared/reference/setup.sh (or set PEER_PYTHON)" >&2
  exit 1
fi
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m scripts.fixtures "$@"
