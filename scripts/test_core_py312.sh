#!/usr/bin/env bash
# Runs the torch-free core tests on Python 3.12 (the Python of Ubuntu 24.04 / ROS 2 Jazzy) in
# a small separate venv (.venv312), when a python3.12 interpreter exists on this machine.
# torch is not installed there (its CUDA build is several GB), so only the core is covered.
set -euo pipefail
cd "$(dirname "$0")/.."
PY312=${PY312:-}
if [ -z "$PY312" ]; then
  for cand in python3.12 /usr/bin/python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python; do
    if "$cand" --version >/dev/null 2>&1; then PY312=$cand; break; fi
  done
fi
if [ -z "$PY312" ]; then
  echo "python3.12 not found: skipping the Python 3.12 core tests"
  exit 0
fi
VENV=.venv312
want=$(cat requirements/runtime.txt requirements/dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$VENV/.stamp" ] || [ "$(cat "$VENV/.stamp")" != "$want" ]; then
  "$PY312" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q numpy scipy onnx onnxruntime pyyaml pytest \
    pytest-timeout -c requirements/runtime.txt -c requirements/dev.txt
  echo "$want" > "$VENV/.stamp"
fi
"$VENV/bin/python" --version
cd avs_net_ros
exec "../$VENV/bin/python" -m pytest -p no:cacheprovider test/test_core_scale.py \
  test/test_core_metrics.py test/test_core_acoustics.py "$@"
