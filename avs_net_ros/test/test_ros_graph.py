"""The node graph (launch arguments, nodes, remaps), its config files and the launch file."""

import ast
import os
import re

from avs_net_ros.ros import depth_inference, sim_robot
from avs_net_ros.ros.bringup import node_class, show_arguments, split_arguments
from avs_net_ros.ros.graph import argument_values, LAUNCH_ARGUMENTS, NODES, resolve
import pytest
from ros_fixtures import ROOT
import yaml

CONFIG = os.path.join(ROOT, 'config')
LAUNCH = os.path.join(ROOT, 'launch', 'depth.launch.py')


def _by_name(nodes):
    return {n.name: n for n in nodes}


def test_defaults_run_emitter_and_depth_on_real_sensors():
    nodes = _by_name(resolve())
    assert sorted(nodes) == ['chirp_emitter', 'depth_inference']
    depth = nodes['depth_inference']
    assert depth.params_files == [os.path.join(CONFIG, 'depth_inference.yaml')]
    assert depth.parameters == {'use_sim_time': False}  # empty model args do not override
    assert ('image', 'camera/image') in depth.remappings
    assert ('echoes', 'echoes') not in depth.remappings  # identity remaps left out
    assert depth.ros_arguments()[:3] == ['--ros-args', '-r', '__node:=depth_inference']


def test_no_hardware_and_bag_replay_graphs():
    sim = _by_name(resolve({'use_sim': 'true', 'use_emitter': 'false'}))
    assert sorted(sim) == ['depth_inference', 'sim_robot']
    assert sim['sim_robot'].parameters['publish_echoes'] is True
    with_emitter = _by_name(resolve({'use_sim': 'true'}))
    assert with_emitter['sim_robot'].parameters['publish_echoes'] is False
    assert with_emitter['chirp_emitter'].parameters['backend'] == 'sim'
    assert 'backend' not in _by_name(resolve())['chirp_emitter'].parameters
    # one publisher of the rig: the simulated robot in simulation, else the emitter's config
    assert with_emitter['chirp_emitter'].parameters['publish_rig_tf'] is False
    assert 'publish_rig_tf' not in _by_name(resolve())['chirp_emitter'].parameters
    bag = _by_name(resolve({'use_emitter': 'false', 'use_sim_time': 'true'}))
    assert sorted(bag) == ['depth_inference']
    assert bag['depth_inference'].parameters['use_sim_time'] is True


def test_models_providers_topics_and_namespace_are_applied(tmp_path):
    params = tmp_path / 'p.yaml'
    params.write_text('/**/depth_inference:\n  ros__parameters:\n    echo_wait: 0.3\n')
    depth = _by_name(resolve({
        'avs_model': '/m/av.onnx', 'relative_model': '/m/rel.onnx', 'providers': 'cuda, cpu',
        'image_topic': '/cam/color/image_raw', 'camera_info_topic': '/cam/color/camera_info',
        'echoes_topic': '/sonar/echoes/', 'depth_topic_prefix': 'out', 'namespace': 'robot1',
        'depth_params_file': str(params)}))['depth_inference']
    assert depth.parameters == {'use_sim_time': False, 'avs_model': '/m/av.onnx',
                                'relative_model': '/m/rel.onnx', 'providers': ['cuda', 'cpu']}
    assert depth.params_files == [str(params)]
    remaps = dict(depth.remappings)
    assert remaps['image'] == '/cam/color/image_raw'
    assert remaps['echoes'] == '/sonar/echoes' and len(remaps) == 8
    assert remaps['depth/metric'] == 'out/metric'
    args = depth.ros_arguments()
    assert '__ns:=robot1' in args and args[args.index('--params-file') + 1] == str(params)


def test_a_third_party_relative_model_is_described_by_an_extra_parameter_file(tmp_path):
    depth = _by_name(resolve({'relative_model': '/m/midas.onnx',
                              'relative_params_file': 'foreign/midas_v21_small.yaml'})
                     )['depth_inference']
    assert depth.params_files == [os.path.join(CONFIG, 'depth_inference.yaml'),
                                  os.path.join(CONFIG, 'foreign', 'midas_v21_small.yaml')]
    args = depth.ros_arguments()
    assert args.count('--params-file') == 2  # the description is read after the main file
    own = tmp_path / 'mine.yaml'
    own.write_text('/**/depth_inference:\n  ros__parameters:\n    relative_output: depth\n')
    depth = _by_name(resolve({'relative_params_file': str(own),
                              'relative_output': 'metric_depth'}))['depth_inference']
    assert depth.params_files[-1] == str(own)
    assert depth.parameters['relative_output'] == 'metric_depth'
    with pytest.raises(FileNotFoundError, match='relative_params_file: parameter file not '
                                                'found: foreign/nope.yaml'):
        resolve({'relative_params_file': 'foreign/nope.yaml'})


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"unknown launch argument\(s\) \['use_gpu'\]"):
        resolve({'use_gpu': 'true'})
    with pytest.raises(ValueError, match="use_sim must be true or false, got 'maybe'"):
        resolve({'use_sim': 'maybe'})
    with pytest.raises(ValueError, match='log_level must be one of'):
        resolve({'log_level': 'loud'})
    with pytest.raises(FileNotFoundError, match='depth_params_file: parameter file not found'):
        resolve({'depth_params_file': '/nonexistent/x.yaml'})


@pytest.mark.parametrize('module,filename', [(depth_inference, 'depth_inference.yaml'),
                                             (sim_robot, 'sim_robot.yaml')])
def test_config_files_document_every_declared_parameter(module, filename):
    path = os.path.join(CONFIG, filename)
    data = yaml.safe_load(open(path))
    (key, body), = data.items()
    assert key == f'/**/{module.NODE_NAME}'
    values = body['ros__parameters']
    specs = {p.name: p for p in module.PARAMS}
    assert list(values) == list(specs)  # same parameters, same order
    for name, value in values.items():
        assert type(value) is type(specs[name].default), name
        if specs[name].choices:
            assert value in specs[name].choices
    lines = open(path).read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'    (\w+):', line)
        if m:
            assert lines[i - 1].strip().startswith('#'), f'{m.group(1)} is not documented'
    assert all(p.description for p in module.PARAMS)


def test_graph_names_match_node_modules():
    for d in NODES:
        assert d.params_file.endswith('.yaml')
        cls = node_class(d)
        assert cls.__name__ == d.node_class
        assert getattr(__import__(d.module, fromlist=['main']), 'NODE_NAME') == d.name


def test_launch_file_is_a_thin_translation_of_the_graph():
    tree = ast.parse(open(LAUNCH).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert 'avs_net_ros.ros.graph' in imported
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str)}
    # no node, topic or argument name is spelled out in the launch file itself
    # ('namespace' and 'log_level' are also launch_ros keywords)
    for name in [a.name for a in LAUNCH_ARGUMENTS if a.name not in ('log_level', 'namespace')] + \
            [d.executable for d in NODES] + ['image', 'echoes', 'depth/metric']:
        assert name not in strings, name


def test_launch_file_builds_the_graph_with_ros2_launch():
    """On a ROS 2 install: evaluate the launch description and compare with ``resolve``."""
    launch = pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    import importlib.util
    spec = importlib.util.spec_from_file_location('depth_launch', LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    context = launch.LaunchContext()
    context.launch_configurations.update({'use_sim': 'true', 'use_emitter': 'false'})
    for entity in ld.entities:
        if type(entity).__name__ == 'DeclareLaunchArgument':
            entity.visit(context)
    actions = [a for e in ld.entities if type(e).__name__ == 'OpaqueFunction'
               for a in e.visit(context) or []]
    nodes = {n.node_executable: n for n in actions if hasattr(n, 'node_executable')}
    assert sorted(nodes) == ['depth_inference', 'sim_robot']
    # depth_inference is a lifecycle node that launch configures and then activates
    from launch_ros.actions import LifecycleNode
    assert isinstance(nodes['depth_inference'], LifecycleNode)
    assert not isinstance(nodes['sim_robot'], LifecycleNode)
    kinds = [type(a).__name__ for a in actions]
    assert kinds.count('EmitEvent') == 1 and kinds.count('RegisterEventHandler') == 1


def test_bringup_arguments():
    given, ros_args = split_arguments(['use_sim:=true', 'avs_model:=/a:=b.onnx', '--ros-args',
                                       '--log-level', 'debug'])
    assert given == {'use_sim': 'true', 'avs_model': '/a:=b.onnx'}
    assert ros_args == ['--ros-args', '--log-level', 'debug']
    with pytest.raises(ValueError, match="expected name:=value, got 'use_sim'"):
        split_arguments(['use_sim'])
    text = show_arguments()
    assert all(f"'{a.name}'" in text for a in LAUNCH_ARGUMENTS)
    assert argument_values()['use_emitter'] == 'true'


def test_lifecycle_nodes_are_autostarted_unless_told_not_to():
    nodes = _by_name(resolve({'use_sim': 'true'}))
    assert [n.description.lifecycle for n in nodes.values()] == [False, True, True]
    assert {k: n.autostart for k, n in nodes.items()} == {
        'sim_robot': False, 'chirp_emitter': True, 'depth_inference': True}
    manual = resolve({'use_sim': 'true', 'autostart': 'false', 'namespace': 'robot1'})
    assert not any(n.autostart for n in manual)
    assert _by_name(manual)['depth_inference'].fully_qualified_name == '/robot1/depth_inference'
