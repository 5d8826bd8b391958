"""The node graph of avs_net_ros, defined once: the launch file and bringup both read it.

``LAUNCH_ARGUMENTS`` are the knobs (with defaults, descriptions, choices); ``NODES`` describe
each node (executable, module, parameter file, topic remappings, when it runs). ``resolve``
turns argument values into concrete nodes: parameter files, parameter overrides, remappings and
command-line ``--ros-args``. It imports neither rclpy nor launch, so it is tested as plain
Python and the launch file (``launch/depth.launch.py``) stays a thin translation.

The graph:

- ``sim_robot`` (use_sim): camera images, camera_info and ground-truth depth from the simulated
  world along a trajectory; without the emitter it also publishes the world's echoes, so
  ``use_sim:=true use_emitter:=false`` is the coherent no-hardware graph (images and echoes of
  the same scene).
- ``chirp_emitter`` (use_emitter): chirps on camera frames and publishes binaural echoes; with
  use_sim it runs its simulated-room backend (backend 'sim', moved by ``sim_pose``), whose
  room is its own shoebox, not the sim_robot's scene.
- ``depth_inference``: always; camera + echoes -> metric depth.

chirp_emitter and depth_inference are lifecycle nodes: with ``autostart`` (the default) launch
and bringup configure and then activate them; otherwise they wait, unconfigured, for a
lifecycle manager.

For bag replay: use_sim:=false use_emitter:=false use_sim_time:=true, and play the bag's camera,
camera_info and echoes topics with /clock.
"""

from dataclasses import dataclass, field
import os
from typing import Dict, List, Mapping, Optional, Tuple

PACKAGE = 'avs_net_ros'
_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off')


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument: name, default (a string, as launch passes them), help, choices."""

    name: str
    default: str
    description: str
    choices: Optional[Tuple[str, ...]] = None


BOOL = ('true', 'false')
LAUNCH_ARGUMENTS: Tuple[LaunchArgument, ...] = (
    LaunchArgument('use_sim', 'false', 'Start the simulated robot (camera, ground truth, and '
                   'echoes when the emitter is off) instead of using real sensors.', BOOL),
    LaunchArgument('use_emitter', 'true', 'Start the chirp emitter; false for bag replay, '
                   'where the echoes are already in the bag.', BOOL),
    LaunchArgument('autostart', 'true', 'Configure and activate the lifecycle nodes '
                   '(chirp_emitter, depth_inference) at start; false leaves them unconfigured '
                   'for a lifecycle manager or ros2 lifecycle set.', BOOL),
    LaunchArgument('use_sim_time', 'false', 'Use /clock (bag replay with --clock, or the '
                   'simulated robot) instead of the wall clock, in every node.', BOOL),
    LaunchArgument('namespace', '', 'Namespace for all nodes and their relative topics.'),
    LaunchArgument('depth_params_file', '', 'Parameter file of depth_inference; empty = the '
                   "package's config/depth_inference.yaml."),
    LaunchArgument('emitter_params_file', '', 'Parameter file of chirp_emitter; empty = the '
                   "package's config/chirp_emitter.yaml if it exists."),
    LaunchArgument('sim_params_file', '', 'Parameter file of sim_robot; empty = the '
                   "package's config/sim_robot.yaml."),
    LaunchArgument('avs_model', '', 'AVS-Net ONNX model path; empty = the one in the '
                   'depth parameter file.'),
    LaunchArgument('relative_model', '', 'Relative-depth ONNX model path; empty = the one in '
                   'the depth parameter file.'),
    LaunchArgument('relative_output', '', 'What the relative model outputs (depth, disparity, '
                   'affine_disparity, metric_depth); needed for a third-party model without '
                   'avs_net_ros metadata; empty = the depth parameter file (or the metadata).'),
    LaunchArgument('relative_params_file', '', 'Extra parameter file of depth_inference '
                   'describing a third-party relative model (relative_* parameters), read '
                   "after depth_params_file: a path, or a name under the package's config/ "
                   '(e.g. foreign/midas_v21_small.yaml); empty = none.'),
    LaunchArgument('visual_model', '', 'Visual-only AVS-Net ONNX model for the fallback; '
                   'empty = the one in the depth parameter file.'),
    LaunchArgument('providers', '', 'Comma-separated ONNX Runtime providers, e.g. '
                   'cuda,cpu; empty = the depth parameter file.'),
    LaunchArgument('image_topic', 'camera/image', 'Camera image topic (rgb8/bgr8/mono8).'),
    LaunchArgument('camera_info_topic', 'camera/camera_info', 'Camera info topic.'),
    LaunchArgument('echoes_topic', 'echoes', 'Binaural echoes topic (avs_net_msgs/EchoFrame).'),
    LaunchArgument('depth_topic_prefix', 'depth', 'Prefix of the depth outputs (metric, '
                   'pseudo_dense, relative, scale, camera_info).'),
    LaunchArgument('log_level', 'info', 'Log level of every node.',
                   ('debug', 'info', 'warn', 'error', 'fatal')),
)


@dataclass(frozen=True)
class NodeDescription:
    """One node of the graph.

    Attributes:
        name: Node name.
        executable: console_scripts name (``ros2 run avs_net_ros <executable>``).
        module: Python module holding ``main()`` and the node class.
        node_class: Class name in ``module`` (bringup instantiates it in-process).
        params_file: File name under the package's config/ directory.
        params_arg: Launch argument that overrides ``params_file``.
        remappings: (node's relative topic, launch argument giving the target, suffix).
        enabled_if: Launch arguments that must all be true for the node to run.
        extra_params_args: Launch arguments naming further parameter files, read after the
            main one (a path, or a name under the package's config/).
        overrides: Parameter name -> launch argument; set only when the argument is not
            empty ('providers' is split on commas).
        conditional_params: (parameter, condition, value if true, value if false): a
            condition is a boolean launch argument, optionally prefixed with 'not '; a value
            of None leaves the parameter to the parameter file.
        lifecycle: A managed (lifecycle) node: whoever starts it drives its transitions
            (``lifecycle``); the others start publishing when built.

    """

    name: str
    executable: str
    module: str
    node_class: str
    params_file: str
    params_arg: str
    remappings: Tuple[Tuple[str, str, str], ...] = ()
    enabled_if: Tuple[str, ...] = ()
    extra_params_args: Tuple[str, ...] = ()
    overrides: Tuple[Tuple[str, str], ...] = ()
    conditional_params: Tuple[Tuple[str, str, object, object], ...] = ()
    lifecycle: bool = False


_CAMERA = (('image', 'image_topic', ''), ('camera_info', 'camera_info_topic', ''))
_ECHOES = (('echoes', 'echoes_topic', ''),)
_DEPTH_OUT = tuple((f'depth/{t}', 'depth_topic_prefix', f'/{t}')
                   for t in ('metric', 'pseudo_dense', 'relative', 'scale', 'camera_info'))

NODES: Tuple[NodeDescription, ...] = (
    NodeDescription(
        name='sim_robot', executable='sim_robot', module='avs_net_ros.ros.sim_robot',
        node_class='SimRobotNode', params_file='sim_robot.yaml', params_arg='sim_params_file',
        remappings=_CAMERA + _ECHOES, enabled_if=('use_sim',),
        conditional_params=(('publish_echoes', 'not use_emitter', True, False),)),
    NodeDescription(
        name='chirp_emitter', executable='chirp_emitter',
        module='avs_net_ros.ros.chirp_emitter', node_class='ChirpEmitterNode',
        params_file='chirp_emitter.yaml', params_arg='emitter_params_file',
        remappings=_CAMERA + _ECHOES, enabled_if=('use_emitter',),
        conditional_params=(('backend', 'use_sim', 'sim', None),
                            # in simulation sim_robot publishes the rig it simulates
                            ('publish_rig_tf', 'use_sim', False, None)), lifecycle=True),
    NodeDescription(
        name='depth_inference', executable='depth_inference',
        module='avs_net_ros.ros.depth_inference', node_class='DepthInferenceNode',
        params_file='depth_inference.yaml', params_arg='depth_params_file',
        remappings=_CAMERA + _ECHOES + _DEPTH_OUT,
        extra_params_args=('relative_params_file',),
        overrides=(('avs_model', 'avs_model'), ('relative_model', 'relative_model'),
                   ('relative_output', 'relative_output'), ('visual_model', 'visual_model'),
                   ('providers', 'providers')),
        lifecycle=True),
)


@dataclass
class ResolvedNode:
    """A node with every argument applied; what launch and bringup start."""

    description: NodeDescription
    params_files: List[str]
    parameters: Dict[str, object]
    remappings: List[Tuple[str, str]]
    namespace: str
    log_level: str
    autostart: bool = False
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Node name."""
        return self.description.name

    @property
    def fully_qualified_name(self) -> str:
        """``/namespace/name``, as lifecycle services are addressed."""
        ns = self.namespace.strip('/')
        return f'/{ns}/{self.name}' if ns else f'/{self.name}'

    def ros_arguments(self) -> List[str]:
        """Return node-local ``--ros-args ...`` for this node (params files, remaps).

        Parameters set in ``parameters`` are not included; pass them as overrides (bringup)
        or a dict (launch) so that their types are kept. The log level is process-wide in
        rcl, so it is not here either.
        """
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:={self.namespace}']
        for path in self.params_files:
            args += ['--params-file', path]
        for src, dst in self.remappings:
            args += ['-r', f'{src}:={dst}']
        return args


def to_bool(value: str, name: str) -> bool:
    """Parse a launch-style boolean; raise ValueError naming the argument."""
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f'launch argument {name} must be true or false, got {value!r}')


def argument_values(given: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Return every argument's value: ``given`` over the defaults; reject unknown names."""
    known = {a.name: a for a in LAUNCH_ARGUMENTS}
    given = dict(given or {})
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f'unknown launch argument(s) {unknown}; known: {sorted(known)}')
    values = {name: str(given.get(name, a.default)) for name, a in known.items()}
    for a in LAUNCH_ARGUMENTS:
        if a.choices and values[a.name] not in a.choices and a.choices != BOOL:
            raise ValueError(f'launch argument {a.name} must be one of {a.choices}, got '
                             f'{values[a.name]!r}')
        if a.choices == BOOL:
            to_bool(values[a.name], a.name)
    return values


def default_config_dir() -> str:
    """Return the package's config directory.

    From a source tree (package.xml beside ``avs_net_ros/``) it is the tree's own config/, so
    the code reads the config it sits with even where another install is on the ament path;
    installed (colcon, ``ros2 run``) it is ``share/avs_net_ros/config``, found through ament's
    resource index.

    Raises:
        FileNotFoundError: neither exists (an install whose setup script was not sourced).

    """
    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(source, 'package.xml')):
        return os.path.join(source, 'config')
    try:
        from ament_index_python.packages import get_package_share_directory
        return os.path.join(get_package_share_directory(PACKAGE), 'config')
    except (ImportError, LookupError, OSError) as e:  # not indexed, or AMENT_PREFIX_PATH unset
        raise FileNotFoundError(
            f'config of {PACKAGE} not found: not a source tree ({source}) and not in the ament '
            f'index ({e}); source the setup script of the install') from e


def _conditional_value(expr: str, values: Mapping[str, str]) -> bool:
    negate = expr.startswith('not ')
    name = expr[4:] if negate else expr
    return to_bool(values[name], name) != negate


def _params_file(arg: str, value: str, config_dir: str) -> str:
    for path in (value, os.path.join(config_dir, value)):
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f'{arg}: parameter file not found: {value} (neither as given nor '
                            f'under {config_dir})')


def resolve(given: Optional[Mapping[str, str]] = None,
            config_dir: Optional[str] = None) -> List[ResolvedNode]:
    """Return the nodes to start for the launch arguments ``given`` (strings, as launch has).

    Raises:
        ValueError: an unknown argument or a bad boolean/choice.
        FileNotFoundError: a parameter file given explicitly does not exist.

    """
    values = argument_values(given)
    config_dir = config_dir or default_config_dir()
    out = []
    for d in NODES:
        if not all(to_bool(values[a], a) for a in d.enabled_if):
            continue
        files = []
        if values[d.params_arg]:
            if not os.path.isfile(values[d.params_arg]):
                raise FileNotFoundError(f'{d.params_arg}: parameter file not found: '
                                        f'{values[d.params_arg]}')
            files.append(values[d.params_arg])
        elif os.path.isfile(os.path.join(config_dir, d.params_file)):
            files.append(os.path.join(config_dir, d.params_file))
        for arg in d.extra_params_args:
            if values[arg]:
                files.append(_params_file(arg, values[arg], config_dir))
        params: Dict[str, object] = {'use_sim_time': to_bool(values['use_sim_time'],
                                                             'use_sim_time')}
        for param, arg in d.overrides:
            if values[arg]:
                params[param] = ([p.strip() for p in values[arg].split(',') if p.strip()]
                                 if param == 'providers' else values[arg])
        for param, expr, if_true, if_false in d.conditional_params:
            value = if_true if _conditional_value(expr, values) else if_false
            if value is not None:
                params[param] = value
        remaps = [(src, values[arg].rstrip('/') + suffix) for src, arg, suffix in d.remappings
                  if values[arg] and values[arg].rstrip('/') + suffix != src]
        out.append(ResolvedNode(d, files, params, remaps, values['namespace'],
                                values['log_level'],
                                d.lifecycle and to_bool(values['autostart'], 'autostart')))
    return out
