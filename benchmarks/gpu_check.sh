#!/usr/bin/env bash
# CPU vs CUDA vs TensorRT, fp32 vs fp16, default AV model at 256x256 and 384x512, and the
# whole pipeline at 720p, as one table (benchmarks/gpu_check.py). On a CPU-only machine the
# GPU rows say which providers were skipped and why. Arguments go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m benchmarks.gpu_check "$@"
