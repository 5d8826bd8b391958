#!/usr/bin/env bash
# Creates the project's virtual environment (default .venv) from the pinned requirement files
# (colcon included: requirements/build.txt; the ament_cmake and rosidl generator wheels that
# build avs_net_msgs: requirements/interfaces.txt) and installs the package avs_net_ros in
# editable mode (so `python -m training...` and `python -m benchmarks...` from the repository
# root import it). Idempotent: a stamp holding the hash of the requirement files, setup.py and
# scripts/fix_wheel_cmake.py makes a second run return in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.avs_setup_stamp"
want=$(cat requirements/*.txt avs_net_ros/setup.py scripts/fix_wheel_cmake.py | sha256sum | \
  cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "venv: up to date ($VENV)"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# setuptools comes pinned from requirements/build.txt (colcon needs a version below 80)
"$VENV/bin/python" -m pip install -q --upgrade pip wheel
"$VENV/bin/python" -m pip install -q \
  -r requirements/runtime.txt -r requirements/ros.txt -r requirements/training.txt \
  -r requirements/dev.txt -r requirements/build.txt -r requirements/interfaces.txt
"$VENV/bin/python" scripts/fix_wheel_cmake.py "$VENV"
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e avs_net_ros
# the wheels' share/<package>/package.xml files are not source packages of this workspace
touch "$VENV/COLCON_IGNORE"
"$VENV/bin/python" -c "import numpy, scipy, onnxruntime, torch, torchaudio, timm, rclpy, \
sensor_msgs.msg, rosbags, sounddevice, soundfile, pyroomacoustics, colcon_core, \
ament_index_python; print('venv: ok, torch', torch.__version__, 'onnxruntime', \
onnxruntime.__version__)"
echo "$want" > "$stamp"
