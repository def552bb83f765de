#!/usr/bin/env bash
# SFT throughput of a chat model: Hearth (release build, CPU) beside transformers + PEFT
# (scripts/sft_peer.py, the peer venv of ../shared/reference/setup.sh), the same job in one
# invocation, one after the other, so the two figures come from the same machine state.
#
#   scripts/bench-sft.sh                 # SmolLM2-135M-Instruct (GGUF), capitals_sft.jsonl
#   STEPS=20 BATCH=8 MAXLEN=128 THREADS=2 scripts/bench-sft.sh
#
# The job: LoRA r=8, alpha 16, dropout 0.1 on q_proj and v_proj; AdamW lr 1e-3, weight decay 0,
# 2 warmup steps then linear decay; the loss on the assistant's tokens only; dynamic padding;
# 16 conversations held out (the same seeded shuffle on both sides). Prints tokens/s (real and
# padded), wall time, validation loss before/after and peak RSS for both, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-tests/fixtures/capitals_sft.jsonl}
STEPS=${STEPS:-20}
BATCH=${BATCH:-8}
MAXLEN=${MAXLEN:-128}
THREADS=${THREADS:-2}
PY=${PY:-$HOME/.cache/hearth-peer-venv/bin/python}
HEARTH=${HEARTH:-target/release/hearth}
[ -x "$HEARTH" ] || cargo build --release -p hearth-cli
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/time -v "$HEARTH" train --task sft --model "$MODEL" --data "$DATA" --steps "$STEPS" \
  --batch-size "$BATCH" --max-length "$MAXLEN" --lr 1e-3 --warmup 2 --eval-rows 16 \
  --threads "$THREADS" --checkpoint-every 0 --jsonl --out "$tmp/hearth" \
  >"$tmp/hearth.jsonl" 2>"$tmp/hearth.err"
"$PY" scripts/sft_peer.py --model "$MODEL" --data "$DATA" --steps "$STEPS" --batch "$BATCH" \
  --max-len "$MAXLEN" --threads "$THREADS" --lr 1e-3 --eval-rows 16 2>/dev/null | tail -1 >"$tmp/peer.json"

python3 - "$tmp" <<'EOF'
import json, re, sys
tmp = sys.argv[1]
events = [json.loads(l) for l in open(f"{tmp}/hearth.jsonl") if l.startswith("{")]
done = next(e for e in events if e["event"] == "finished")
evals = [e for e in events if e["event"] == "evaluated"]
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{tmp}/hearth.err").read()).group(1))
h = {"real_tokens_per_s": done["real_tokens_per_s"], "padded_tokens_per_s": done["padded_tokens_per_s"],
     "train_wall_s": done["train_seconds"], "val_loss_before": evals[0]["metrics"]["loss"],
     "val_loss_after": evals[-1]["metrics"]["loss"], "peak_rss_mib": rss / 1024}
p = json.load(open(f"{tmp}/peer.json"))
print(f"{'':24}{'Hearth':>12}{'PyTorch+PEFT':>14}{'ratio':>8}")
for k in ["real_tokens_per_s", "padded_tokens_per_s", "train_wall_s", "val_loss_before", "val_loss_after", "peak_rss_mib"]:
    print(f"{k:24}{h[k]:12.3f}{p[k]:14.3f}{h[k] / p[k]:8.2f}")
EOF
