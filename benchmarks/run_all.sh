#!/usr/bin/env bash
# Regenerate the CPU figures of docs/results.md. Benchmarks, not tests: nothing here gates CI.
# Usage: bash benchmarks/run_all.sh [OUT_DIR]   (CPU: about 2 h on a 2-core machine; SKIP_REPLICATION=1 saves 15 min, SKIP_INT8_TRAINED=1 30 min)
# On a GPU machine, GPU=1 adds the PyTorch CUDA fp16 sweeps (eager and torch.compile, batch 128).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-benchmarks/results}
mkdir -p "$OUT" && cd "$OUT"
export HF_HUB_OFFLINE=1
log() { echo "== $*" >&2; }

log "MACs per image, DeiT-S (FlopCounterMode and the paper's convention)"
for r in 1.0 0.9 0.8 0.7 0.6 0.5 0.4 0.3; do idle-runtime macs --keep-ratio "$r" --json; done > macs.jsonl

log "parity: fp32, FP16 and INT8 Q/DQ ONNX of IdleViT-DeiT-S r=0.7 on ONNX Runtime CPU"
python3 "$HERE/make_photos.py"
idle-export --keep-ratio 0.7 --seed 0 -o deit_s_r07.onnx
idle-runtime parity --onnx deit_s_r07.onnx --images photos -n 64 --json > parity_fp32.json || true
idle-fp16 --onnx deit_s_r07.onnx -o deit_s_r07.fp16.onnx
idle-runtime parity --onnx deit_s_r07.fp16.onnx --images photos -n 64 --json > parity_fp16.json || true
idle-calibrate --onnx deit_s_r07.onnx --images calib_photos --num-images 144 -o calib.npz --qdq-output deit_s_r07.qdq.onnx
idle-runtime parity --onnx deit_s_r07.qdq.onnx --images photos -n 64 --json > parity_int8.json || true
if [ "${SKIP_INT8_TRAINED:-0}" != 1 ]; then
  log "FP16 and INT8 parity on a checkpoint trained on the synthetic task (about 30 minutes)"
  bash "$HERE/int8_trained.sh" int8_trained
fi

log "what a user gets on this CPU: DeiT-S fp32 vs IdleViT r=0.7 fp32 / INT8 / OpenVINO, calls interleaved, batch 1 and 16"
# the baseline: the plain backbone through the TorchScript exporter (the fastest plain DeiT-S file we know)
[ -f deit_s_r10_ts.onnx ] || idle-export --keep-ratio 1.0 --seed 0 --exporter torchscript -o deit_s_r10_ts.onnx
OV=(); python3 -c "import openvino" 2>/dev/null && OV=(--openvino f32) || log "openvino not installed (pip install 'idlevit[openvino]'): OpenVINO rows skipped"
idle-runtime lineup --onnx deit_s_r07.onnx --baseline-onnx deit_s_r10_ts.onnx --qdq deit_s_r07.qdq.onnx --int8-kernels both \
  "${OV[@]}" -b 1 16 --iters 20 --warmup 2 --threads 1 --images photos -n 0 --json-output lineup.json | tee lineup.txt
if [ ${#OV[@]} -gt 0 ]; then  # bf16 separately: without AVX-512 BF16/AMX a call takes tens of seconds
  idle-runtime lineup --onnx deit_s_r07.onnx --baseline-onnx deit_s_r10_ts.onnx --openvino bf16 -b 1 --iters 2 \
    --warmup 0 --threads 1 -n 0 --json-output lineup_bf16.json | tee lineup_bf16.txt
fi

log "the same lineup at 1 thread and all cores, batch 1 and 16, with OpenVINO INT8/bf16, scaling, ORT profile, --backend auto check"
python3 "$HERE/cpu_lineup.py" --out . | tee cpu_lineup.md   # reuses the files above

log "efficiency vs r=1.0 in one process: DeiT-S, r = 0.9/0.7/0.5, PyTorch and ORT CPU, batch 32 and batch 1"
idle-runtime sweep --ratios 0.9 0.7 0.5 --backends torch ort -b 32 --iters 10 --rounds 5 --threads 1 -o sweep_b32 --onnx-dir onnx
idle-runtime sweep --ratios 0.9 0.7 0.5 --backends torch ort -b 1 --iters 60 --rounds 10 --threads 1 -o sweep_b1 --onnx-dir onnx

log "IdleViT vs the fastest plain DeiT-S ONNX and a token-merging DeiT-S, ORT CPU, 1 thread, batch 16 and 1"
python3 "$HERE/cpu_efficiency.py" --out cpu_efficiency --batches 16 1 --ratios 0.9 0.7 0.5 --rounds 10 | tee cpu_efficiency.md

log "elastic keep ratio: overhead of one elastic file against the fixed exports, and its curve"
python3 "$HERE/elastic_overhead.py" --out elastic --batches 16 1 --rounds 20 | tee elastic_overhead.txt
idle-runtime sweep --onnx elastic/deit_s_elastic.onnx --backends ort -b 8 --iters 12 --rounds 6 --threads 1 \
  --baseline-onnx deit_s_r10_ts.onnx -o sweep_elastic

log "full keep-ratio sweep and plot (DeiT-S, batch 8)"
idle-runtime sweep --backends torch ort -b 8 --iters 8 --rounds 2 --threads 1 -o sweep_full --onnx-dir onnx

if [ "${GPU:-0}" = 1 ]; then
  log "PyTorch CUDA fp16, DeiT-S batch 128, eager and torch.compile"
  idle-runtime sweep --backends torch --device cuda --autocast fp16 -b 128 --iters 50 --rounds 5 -o sweep_cuda
  idle-runtime sweep --backends torch --device cuda --autocast fp16 --compile -b 128 --iters 50 --rounds 5 -o sweep_cuda_compile
fi

log "token-selection picture on a real photograph: PyTorch vs the fp32, FP16 and INT8 ONNX"
idle-runtime show --keep-ratio 0.7 --onnx-files deit_s_r07.onnx deit_s_r07.fp16.onnx deit_s_r07.qdq.onnx -o selection.png

if [ "${SKIP_REPLICATION:-0}" != 1 ]; then
  log "replication on the synthetic task (3 seeds, CPU)"
  (cd "$HERE/.." && python3 experiments/replicate.py --seeds 0 1 2 --json "$OLDPWD/replication.json")
fi
log "done: $OUT"
