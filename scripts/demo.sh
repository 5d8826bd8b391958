#!/usr/bin/env bash
# The README's main command: set up (idempotently), then run the end-to-end demo: make (or
# reuse) the small simulated models with the real training and export, run the node graph on a
# simulated robot in an unseen simulated room with and without echoes, print the metrics table
# and write artifacts/demo/report/ (report.md, metrics.csv, panel.png). Extra arguments go to
# avs_net_ros.tools.demo (e.g. --rebuild, --domain-id 31, --poses 24).
# All ROS traffic stays on this machine: discovery is limited to localhost, Fast DDS uses the
# loopback profile, and the demo has its own domain id.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_system.sh
bash scripts/setup_venv.sh
# the nodes speak avs_net_msgs (and TF): build the interface packages; the code runs from source
bash scripts/colcon_build.sh --packages-select avs_net_msgs
source scripts/ros_env.sh 30
exec .venv/bin/python -m avs_net_ros.tools.demo --domain-id "$ROS_DOMAIN_ID" "$@"
