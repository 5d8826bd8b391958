#!/usr/bin/env bash
# Sets up (idempotently) and runs the whole test suite. Extra arguments go to pytest.
# All ROS traffic stays on this machine: discovery is limited to localhost and the domain id is
# the suite's own (tests that start ROS processes pick their own ids on top of this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_system.sh
bash scripts/setup_venv.sh
source scripts/ros_env.sh 41
exec .venv/bin/python -m pytest "$@"
