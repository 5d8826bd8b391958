#!/usr/bin/env bash
# Builds the workspace with colcon (the repository root is the workspace: build/, install/ and
# log/ here); arguments go to `colcon build`, e.g. --packages-select avs_net_msgs.
# Without a ROS install the ROS 2 wheels in .venv are the underlay: CMake and ament find
# ament_cmake and the rosidl generators there (requirements/interfaces.txt). Where no tf2_msgs
# is found (the wheels have none; a ROS install has it), the stand-in in stand_ins/tf2_msgs
# (TFMessage only, from the official definition; a COLCON_IGNORE keeps a user's `colcon build`
# away from it) is built first into the same install/. A second run rebuilds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
COLCON=$VENV/bin/colcon
if [ -d "$VENV/share/ament_cmake" ]; then
  venv_prefix=$(cd "$VENV" && pwd)
  export CMAKE_PREFIX_PATH="$venv_prefix${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export AMENT_PREFIX_PATH="$venv_prefix${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi
# tf2_msgs from the environment (a sourced ROS install), not from a stand-in built here earlier
has_tf2_msgs() {
  local IFS=: p
  for p in ${AMENT_PREFIX_PATH:-}; do
    [ "$p" != "$PWD/install/tf2_msgs" ] && [ -f "$p/share/tf2_msgs/msg/TFMessage.msg" ] && return 0
  done
  return 1
}
# built before from the same definition: nothing to do (saves the 2-3 s of a no-op cmake run)
stand_in_built() {
  local f
  for f in package.xml msg/TFMessage.msg; do
    cmp -s "stand_ins/tf2_msgs/$f" "install/tf2_msgs/share/tf2_msgs/$f" || return 1
  done
}
if ! has_tf2_msgs && ! stand_in_built; then
  "$COLCON" build --base-paths stand_ins/tf2_msgs
fi
exec "$COLCON" build "$@"
