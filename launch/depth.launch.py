"""Launch the avs_net_ros graph: ``ros2 launch avs_net_ros depth.launch.py [name:=value ...]``.

Thin on purpose: the arguments and the nodes (executables, parameter files, overrides,
remappings, conditions) are defined once in ``avs_net_ros.ros.graph`` and tested there; this
file only turns them into launch actions. ``avs_bringup`` starts the same graph in one process
where no launch system is installed. Examples:

    ros2 launch avs_net_ros depth.launch.py avs_model:=/models/avs_av.onnx
        relative_model:=/models/relative.onnx visual_model:=/models/avs_v.onnx
    ros2 launch avs_net_ros depth.launch.py use_sim:=true use_emitter:=false ...   # no hardware
    ros2 launch avs_net_ros depth.launch.py use_emitter:=false use_sim_time:=true ...  # bags
"""

import os

from ament_index_python.packages import get_package_share_directory
from avs_net_ros.ros.graph import LAUNCH_ARGUMENTS, PACKAGE, resolve
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _nodes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS}
    config_dir = os.path.join(get_package_share_directory(PACKAGE), 'config')
    actions = []
    for n in resolve(values, config_dir):
        extra = {'namespace': n.namespace} if n.namespace else {}
        actions.append(Node(
            package=PACKAGE, executable=n.description.executable, name=n.name,
            parameters=list(n.params_files) + [n.parameters], remappings=n.remappings,
            ros_arguments=['--log-level', n.log_level], output='screen', **extra))
    return actions


def generate_launch_description():
    """Declare the graph's arguments and start its nodes."""
    args = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                  **({'choices': list(a.choices)} if a.choices else {}))
            for a in LAUNCH_ARGUMENTS]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
