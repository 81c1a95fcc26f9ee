#!/usr/bin/env bash
# Regenerate every figure in the README's results section. Benchmarks, not tests: nothing here gates CI.
# Usage: bash benchmarks/run_all.sh [OUT_DIR]        (CPU: about 45-60 min on a quiet 2-core machine)
# Set SKIP_REPLICATION=1 to skip the fine-tuning replication (about 25 min alone).
set -euo pipefail
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
log() { echo "== $*" >&2; }

log "MACs per image, DeiT-S (FlopCounterMode and paper convention)"
for r in 1.0 0.9 0.8 0.7 0.6 0.5 0.4 0.3; do
  idle-runtime macs --keep-ratio "$r" --json
done > "$OUT/macs.jsonl"

log "export DeiT-S r=0.7 and its fp16 / int8 variants, with parity on ORT CPU"
idle-export --keep-ratio 0.7 -o "$OUT/deit_s_r0.7.onnx" --json > "$OUT/export.json"
idle-runtime parity --onnx "$OUT/deit_s_r0.7.onnx" --images "$OUT/photos" --json > "$OUT/parity_fp32.json" || true

log "PyTorch CPU and ORT CPU: DeiT-S, r = 0.9/0.7/0.5, batch 32 and batch 1, against r = 1.0 in one process"
idle-runtime sweep --ratios 0.9 0.7 0.5 --backends torch ort -b 32 --iters 10 --rounds 5 -o "$OUT/sweep_b32"
idle-runtime sweep --ratios 0.9 0.7 0.5 --backends torch ort -b 1 --iters 60 --rounds 6 -o "$OUT/sweep_b1"

log "full keep-ratio sweep and plot (DeiT-S, batch 8, torch + ORT CPU)"
idle-runtime sweep --backends torch ort -b 8 --iters 10 --rounds 2 -o "$OUT/sweep_full"

log "token-selection picture on a real photograph (fp32 PyTorch vs the exported ONNX)"
idle-runtime show --keep-ratio 0.7 --onnx "$OUT/deit_s_r0.7.onnx" -o "$OUT/selection.png"

if [ "${SKIP_REPLICATION:-0}" != 1 ]; then
  log "replication on the synthetic task (3 seeds, CPU)"
  python3 experiments/replicate.py --seeds 0 1 2 --json "$OUT/replication.json"
fi
log "done: $OUT"
