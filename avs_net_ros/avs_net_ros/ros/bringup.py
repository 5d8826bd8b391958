"""Start the avs_net_ros node graph in one process, where no ROS 2 launch system exists.

    avs_bringup [name:=value ...]     e.g. avs_bringup use_sim:=true use_emitter:=false
                                           avs_model:=/models/avs_av.onnx
    avs_bringup --show-args           list the arguments (the same as depth.launch.py's)

The nodes, their parameter files, overrides and remappings come from ``graph.resolve``, exactly
as ``launch/depth.launch.py`` starts them on a ROS 2 install; here they are instantiated in
this process, each spun on its own executor thread (``spin``). bringup is the lifecycle manager
of its lifecycle nodes: with autostart (the default) it configures, then activates each in
graph order once all spin, and exits with 1, naming the node and the reason, if one fails; on
Ctrl-C or SIGTERM it deactivates, cleans up and shuts them down in reverse order before
destroying them. With ``autostart:=false`` they stay unconfigured, driven over their lifecycle
services (``ros2 lifecycle set /depth_inference configure``).
Unless already set, the process keeps DDS on this machine: ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST and the package's Fast DDS profile (shared memory + UDP on 127.0.0.1).
"""

import importlib
import inspect
import os
import sys
from typing import Any, List, Optional, Sequence, Tuple

from avs_net_ros.ros.graph import (default_config_dir, LAUNCH_ARGUMENTS, NodeDescription,
                                   resolve, ResolvedNode)


def split_arguments(argv: Sequence[str]) -> Tuple[dict, List[str]]:
    """Split ``name:=value`` launch arguments from the ROS arguments after ``--ros-args``."""
    argv = list(argv)
    ros_args: List[str] = []
    if '--ros-args' in argv:
        i = argv.index('--ros-args')
        argv, ros_args = argv[:i], argv[i:]
    given = {}
    for a in argv:
        if ':=' not in a:
            raise ValueError(f'expected name:=value, got {a!r} (see --show-args)')
        k, v = a.split(':=', 1)
        given[k] = v
    return given, ros_args


def show_arguments() -> str:
    """Return the launch arguments with defaults and descriptions, one per paragraph."""
    lines = []
    for a in LAUNCH_ARGUMENTS:
        choices = f' (one of: {", ".join(a.choices)})' if a.choices else ''
        lines.append(f"'{a.name}':\n    {a.description}{choices}\n    (default: "
                     f"'{a.default}')")
    return '\n\n'.join(lines)


def node_class(description: NodeDescription) -> Any:
    """Import the node class of ``description`` (or the one rclpy Node class its module has)."""
    from rclpy.node import Node

    module = importlib.import_module(description.module)
    cls = getattr(module, description.node_class, None)
    if cls is None:
        found = [c for _, c in inspect.getmembers(module, inspect.isclass)
                 if issubclass(c, Node) and c is not Node and c.__module__ == module.__name__]
        if len(found) != 1:
            raise ImportError(f'{description.module} has no node class '
                              f'{description.node_class!r}')
        cls = found[0]
    return cls


def create_nodes(resolved: Sequence[ResolvedNode], context: Any = None) -> List[Any]:
    """Instantiate the resolved nodes in this process (rclpy must be initialised)."""
    from rclpy.parameter import Parameter

    nodes = []
    try:
        for r in resolved:
            cls = node_class(r.description)
            params = [Parameter(k, value=v) for k, v in r.parameters.items()]
            kwargs = {'cli_args': r.ros_arguments(), 'parameter_overrides': params}
            if r.namespace:
                kwargs['namespace'] = r.namespace
            if context is not None:
                kwargs['context'] = context
            node = cls(**kwargs)
            node.get_logger().set_level(_level(r.log_level))
            nodes.append(node)
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def _level(name: str) -> Any:
    from rclpy.logging import LoggingSeverity
    return getattr(LoggingSeverity, name.upper())


def keep_local(env: Any = os.environ) -> None:
    """Keep DDS on this machine unless the environment already says otherwise."""
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    profile = os.path.join(default_config_dir(), 'fastdds_localhost.xml')
    if os.path.isfile(profile):
        env.setdefault('FASTRTPS_DEFAULT_PROFILES_FILE', profile)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the graph until Ctrl-C; return 1 (with the reason logged) if it cannot start."""
    argv = sys.argv[1:] if argv is None else argv
    if '--show-args' in argv or '-s' in argv:
        print(show_arguments())
        return 0
    from avs_net_ros.runtime.memory import keep_freed_memory
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    import rclpy
    from avs_net_ros.ros.lifecycle import bring_up, LifecycleError
    from avs_net_ros.ros.spin import init_process, spin_nodes

    logger = rclpy.logging.get_logger('avs_bringup')
    try:
        keep_local()  # before rclpy.init: DDS reads the environment there
        given, ros_args = split_arguments(argv)
        resolved = resolve(given)
    except (ValueError, FileNotFoundError) as e:
        logger.fatal(str(e))
        return 1
    init_process(['avs_bringup'] + ros_args)
    try:
        nodes = create_nodes(resolved)
    except (FileNotFoundError, ValueError, ImportError) as e:
        logger.fatal(f'cannot start the graph: {e}')
        rclpy.try_shutdown()
        return 1
    except KeyboardInterrupt:  # stopped while the models were loading
        rclpy.try_shutdown()
        return 0
    managed = [n for n, r in zip(nodes, resolved) if r.autostart]

    def start() -> None:
        for node in managed:  # in graph order, each configured and active before the next
            bring_up(node)
        logger.info('running ' + ', '.join(n.get_fully_qualified_name() for n in nodes))

    try:
        spin_nodes(nodes, start=start)
    except LifecycleError as e:
        logger.fatal(f'cannot start the graph: {e}')
        rclpy.try_shutdown()
        return 1
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
