#!/usr/bin/env bash
# Sets up (idempotently) and runs the whole test suite. Extra arguments go to pytest.
# All ROS traffic stays on this machine: discovery is limited to localhost and the domain id is
# the suite's own (tests that start ROS processes pick their own ids on top of this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_system.sh
bash scripts/setup_venv.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-41}
if [ -f config/fastdds_localhost.xml ]; then
  export FASTRTPS_DEFAULT_PROFILES_FILE="$PWD/config/fastdds_localhost.xml"
fi
exec .venv/bin/python -m pytest "$@"
