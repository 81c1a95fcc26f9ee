#!/usr/bin/env bash
# FP16 and INT8 ONNX parity of IdleViT-DeiT-S r=0.7 on a *trained* checkpoint (ORT CPU).
# Seeded random weights predict near-ties (docs/results.md, "FP16 and INT8 ONNX parity"), so top-1 agreement
# there measures rounding luck, not the quantization. No pretrained weights can be downloaded
# here, so this trains DeiT-S on idle-train's synthetic task (10 classes, 224 px), calibrates on
# synthetic images of another seed and measures parity on a third seed's images.
# Usage: bash benchmarks/int8_trained.sh [OUT_DIR]   (about 30 minutes on 2 CPU cores; EPOCHS=5, at least 2)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-benchmarks/results/int8_trained}
mkdir -p "$OUT" && cd "$OUT"
export HF_HUB_OFFLINE=1
log() { echo "== $*" >&2; }

log "train IdleViT-DeiT-S r=0.7 from seeded weights on the synthetic task (cross-entropy only)"
idle-train --synthetic --synthetic-size 960 --synthetic-val-size 256 --epochs "${EPOCHS:-5}" -b 32 --lr 5e-4 \
    --warmup-epochs 1 --alpha 0 --beta 0 --theta 0 --cut-loss none --no-aug --drop-path 0 -o train --no-progress

log "calibration images (seed 100) and parity images (seed 101), disjoint from the training set"
python3 "$HERE/write_synthetic.py" synth_calib -n 256 --seed 100
python3 "$HERE/write_synthetic.py" synth_val -n 512 --seed 101

idle-export --ckpt train/model.pth --num-classes 10 --keep-ratio 0.7 -o deit_s_r07.onnx
idle-fp16 --onnx deit_s_r07.onnx -o deit_s_r07.fp16.onnx
idle-calibrate --onnx deit_s_r07.onnx --images synth_calib --num-images 256 -o calib.npz --qdq-output deit_s_r07.qdq.onnx
for f in deit_s_r07.fp16.onnx deit_s_r07.qdq.onnx; do
  idle-runtime parity --onnx "$f" --ckpt train/model.pth --images synth_val -n 0 | tee "${f%.onnx}.parity.txt" || true
done
log "done: $OUT"
