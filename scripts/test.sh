#!/usr/bin/env bash
# Sets up (idempotently), builds the workspace with colcon (avs_net_msgs and avs_net_ros,
# scripts/colcon_build.sh) and runs the test suite of avs_net_ros through `colcon test`, as a
# ROS 2 workspace does; extra arguments go to pytest (relative to the package folder
# avs_net_ros/), e.g.
#   ./scripts/test.sh test/test_ros_graph.py -k launch
# The repository root is the workspace: colcon writes build/, install/ and log/ here. The exit
# status is non-zero when the build fails or any test fails (`colcon test-result`).
# All ROS traffic stays on this machine: discovery is limited to localhost and the domain id is
# the suite's own (tests that start ROS processes pick their own ids on top of this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_system.sh
bash scripts/setup_venv.sh
bash scripts/colcon_build.sh
source scripts/ros_env.sh 41
COLCON=.venv/bin/colcon
# colcon passes these on to pytest (in PYTEST_ADDOPTS); the leading space keeps colcon's own
# parser from reading an argument such as -k as one of its options (it strips the space).
pytest_args=()
for a in "$@"; do pytest_args+=(" $a"); done
test_rc=0
"$COLCON" test --packages-select avs_net_ros --event-handlers console_direct+ \
  ${pytest_args[@]+--pytest-args "${pytest_args[@]}"} || test_rc=$?
result_rc=0
"$COLCON" test-result --test-result-base build/avs_net_ros --verbose || result_rc=$?
if [ "$test_rc" -ne 0 ] || [ "$result_rc" -ne 0 ]; then
  echo "tests failed (colcon test: $test_rc, colcon test-result: $result_rc)" >&2
  exit 1
fi
