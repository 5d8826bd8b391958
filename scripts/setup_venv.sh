#!/usr/bin/env bash
# Creates the project's virtual environment (default .venv) from the pinned requirement files
# (colcon included: requirements/build.txt) and installs the package itself in editable mode.
# Idempotent: a stamp holding the hash of the requirement files and setup.py makes a second run
# return in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.avs_setup_stamp"
want=$(cat requirements/*.txt setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "venv: up to date ($VENV)"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# setuptools comes pinned from requirements/build.txt (colcon needs a version below 80)
"$VENV/bin/python" -m pip install -q --upgrade pip wheel
"$VENV/bin/python" -m pip install -q \
  -r requirements/runtime.txt -r requirements/ros.txt -r requirements/training.txt \
  -r requirements/dev.txt -r requirements/build.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import numpy, scipy, onnxruntime, torch, torchaudio, timm, rclpy, \
sensor_msgs.msg, rosbags, sounddevice, soundfile, pyroomacoustics, colcon_core, \
ament_index_python; print('venv: ok, torch', torch.__version__, 'onnxruntime', \
onnxruntime.__version__)"
echo "$want" > "$stamp"
