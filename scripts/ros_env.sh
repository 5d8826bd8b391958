# Sourced (not run) by the scripts that start ROS processes, with a default domain id as $1.
# Keeps all ROS traffic on this machine: discovery limited to localhost, Fast DDS on shared
# memory and 127.0.0.1 only (config/fastdds_localhost.xml), and the caller's own domain id.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$1}
export FASTRTPS_DEFAULT_PROFILES_FILE="$PWD/config/fastdds_localhost.xml"
