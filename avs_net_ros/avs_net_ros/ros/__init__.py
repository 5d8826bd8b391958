"""ROS 2 edge of avs_net_ros: message conversion, stamp pairing, the nodes and their bringup."""
