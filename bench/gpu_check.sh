#!/usr/bin/env bash
# The GPU check of issue 17 (bench/gpu_check.py): each task's train step float32 vs XLA +
# mixed_float16, DiffKDE fwd+bwd at batch 32 and 256, the ground-truth KDE at grid 512 vs the
# kde2d loop, a 2-GPU MirroredStrategy step where two GPUs exist. Writes the "gpu_check" section
# of bench/RESULTS.md (or --results=PATH) with the device's name. Sized for under 8 minutes on one
# GPU; without a GPU it runs on the CPU and marks the GPU rows "skipped (no GPU)".
#
#   bench/gpu_check.sh                          # from anywhere; extra flags go to gpu_check.py
#   GPU_CHECK_TIMEOUT=600 bench/gpu_check.sh --steps=20
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "gpu_check: no nvidia-smi; the GPU rows will be marked skipped" >&2
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec timeout "${GPU_CHECK_TIMEOUT:-540}" "$PYTHON" -m bench.gpu_check "$@"
