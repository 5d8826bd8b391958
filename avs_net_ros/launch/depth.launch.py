"""Launch the avs_net_ros graph: ``ros2 launch avs_net_ros depth.launch.py [name:=value ...]``.

Thin on purpose: the arguments and the nodes (executables, parameter files, overrides,
remappings, conditions) are defined once in ``avs_net_ros.ros.graph`` and tested there; this
file only turns them into launch actions. The lifecycle nodes (chirp_emitter, depth_inference)
start as launch_ros LifecycleNodes; with autostart (the default) launch configures each and
activates it once it is inactive, as ros2/demos' lifecycle launch does; with autostart:=false
they wait unconfigured for ``ros2 lifecycle set`` or a lifecycle manager. ``avs_bringup``
starts the same graph in one process where no launch system is installed. Examples:

    ros2 launch avs_net_ros depth.launch.py avs_model:=/models/avs_av.onnx
        relative_model:=/models/relative.onnx visual_model:=/models/avs_v.onnx
    ros2 launch avs_net_ros depth.launch.py use_sim:=true use_emitter:=false ...   # no hardware
    ros2 launch avs_net_ros depth.launch.py use_emitter:=false use_sim_time:=true ...  # bags
"""

import os

from ament_index_python.packages import get_package_share_directory
from avs_net_ros.ros.graph import LAUNCH_ARGUMENTS, PACKAGE, resolve
from avs_net_ros.ros.lifecycle import AUTOSTART
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def _change(node, transition):
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                       transition_id=transition))


def _nodes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS}
    config_dir = os.path.join(get_package_share_directory(PACKAGE), 'config')
    actions = []
    for n in resolve(values, config_dir):
        common = {'package': PACKAGE, 'executable': n.description.executable, 'name': n.name,
                  'remappings': n.remappings, 'ros_arguments': ['--log-level', n.log_level],
                  'output': 'screen'}
        parameters = list(n.params_files) + [n.parameters]
        if not n.description.lifecycle:
            actions.append(Node(parameters=parameters, **common,
                                **({'namespace': n.namespace} if n.namespace else {})))
            continue
        # launch, not the node's own main(), is its lifecycle manager here
        node = LifecycleNode(namespace=n.namespace, parameters=parameters + [{AUTOSTART: False}],
                             **common)
        actions.append(node)
        if n.autostart:  # configure now; activate once configured (not after a deactivate)
            actions += [RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
                entities=[_change(node, Transition.TRANSITION_ACTIVATE)])),
                _change(node, Transition.TRANSITION_CONFIGURE)]
    return actions


def generate_launch_description():
    """Declare the graph's arguments and start its nodes."""
    args = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                  **({'choices': list(a.choices)} if a.choices else {}))
            for a in LAUNCH_ARGUMENTS]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
