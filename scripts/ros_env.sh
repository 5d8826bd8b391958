# Sourced (not run) by the scripts that start ROS processes, with a default domain id as $1.
# Keeps all ROS traffic on this machine: discovery limited to localhost, Fast DDS on shared
# memory and 127.0.0.1 only (avs_net_ros/config/fastdds_localhost.xml), and the caller's own
# domain id. Then adds the interface packages built into install/ (avs_net_msgs, and the
# tf2_msgs stand-in where scripts/colcon_build.sh built one) to the environment, and only those:
# the Python code runs from this source tree, never from a possibly older install/avs_net_ros.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$1}
export FASTRTPS_DEFAULT_PROFILES_FILE="$PWD/avs_net_ros/config/fastdds_localhost.xml"
# this checkout's package first, whatever editable install or workspace the venv points at
export PYTHONPATH="$PWD/avs_net_ros${PYTHONPATH:+:$PYTHONPATH}"
for _avs_pkg in avs_net_msgs tf2_msgs; do
  if [ -f "install/$_avs_pkg/share/$_avs_pkg/package.bash" ]; then
    # colcon's scripts read variables that may be unset; the callers run with `set -u`
    case $- in *u*) _avs_nounset=1; set +u ;; *) _avs_nounset=0 ;; esac
    COLCON_CURRENT_PREFIX="$PWD/install/$_avs_pkg" \
      . "install/$_avs_pkg/share/$_avs_pkg/package.bash"
    [ "$_avs_nounset" = 1 ] && set -u
  fi
done
unset _avs_pkg _avs_nounset
