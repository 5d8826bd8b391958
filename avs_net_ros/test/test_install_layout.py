"""The colcon install: a real ``colcon build`` of a clone of the repository in ``ws/src``.

The repository is copied (its tracked files) into ``<tmp>/ws/src/avs_net_ros`` and ``colcon
build`` runs from ``<tmp>/ws``, as a ROS engineer builds it: the crawl must find both packages,
avs_net_msgs (ament_cmake, rosidl) and avs_net_ros (ament_python), and nothing else (the
stand-ins are COLCON_IGNOREd; where no tf2_msgs exists the stand-in is built apart, as
scripts/colcon_build.sh does). Checks the layout ``ros2 run`` and ``ros2 launch`` rely on
(executables in lib/avs_net_ros, launch files and config under share/avs_net_ros, package.xml,
the ament index markers), the message package's Python module, C type support and .msg, that
the console scripts run from there with the install's setup script sourced, that the three
node executables join the ROS graph (domain 96, loopback only) and that the installed code
reads the installed config and echo definition. No ``ros2`` CLI can be installed here, so the
lookup ``ros2 run`` does (the package's prefix from the ament index, then lib/<package>) is
done in Python.
"""

import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from ros_fixtures import REPO, ROOT, ros_env, RosHarness, wait_for

pytestmark = pytest.mark.slow

PACKAGE = 'avs_net_ros'
MSGS = 'avs_net_msgs'
DOMAIN = 96
#: Variables through which an outer workspace (``colcon test`` of the repository itself) would
#: reach into the temporary one.
WORKSPACE_VARS = ('AMENT_PREFIX_PATH', 'COLCON_PREFIX_PATH', 'CMAKE_PREFIX_PATH', 'PYTHONPATH',
                  'PYTEST_ADDOPTS')
NODES = {'sim_robot': [], 'chirp_emitter': ['-p', 'backend:=sim'], 'depth_inference': None}
#: Run in the install's environment: where the package and its config are found from there.
PROBE = """
import json, os
from ament_index_python.packages import get_package_prefix, get_package_share_directory
import avs_net_ros
from avs_net_ros.ros.graph import default_config_dir, resolve
prefix = get_package_prefix('avs_net_ros')
lib = os.path.join(prefix, 'lib', 'avs_net_ros')
from avs_net_msgs.msg import EchoFrame
from avs_net_ros.eval.bagio import echo_frame_definition
from rclpy.serialization import deserialize_message, serialize_message
frame = EchoFrame(sample_rate=44100, channels=2, samples=[0.5, -0.25, 1.0, 0.0])
back = deserialize_message(serialize_message(frame), EchoFrame)
print(json.dumps({
    'prefix': prefix, 'share': get_package_share_directory('avs_net_ros'),
    'module': avs_net_ros.__file__, 'config': default_config_dir(),
    'msgs_module': __import__('avs_net_msgs').__file__,
    'msgs_share': get_package_share_directory('avs_net_msgs'),
    'echo_definition': echo_frame_definition(),
    'echo_round_trip': [back.sample_rate, back.channels, list(back.samples)],
    'executables': sorted(f for f in os.listdir(lib)
                          if os.access(os.path.join(lib, f), os.X_OK)),
    'params_files': [f for n in resolve({'use_sim': 'true'}) for f in n.params_files]}))
"""


def _clean_env(env=None):
    env = dict(os.environ if env is None else env)
    for name in WORKSPACE_VARS:
        env.pop(name, None)
    return env


def _sourced(install, argv):
    """Return ``argv`` run by a shell that sources the install's setup script first."""
    return ['sh', '-c', '. "$0/setup.sh" && exec "$@"', str(install)] + list(argv)


def _files(top):
    return sorted(os.path.relpath(os.path.join(d, f), top)
                  for d, _, files in os.walk(top) for f in files)


def _tracked_files():
    r = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True)
    return [f for f in r.stdout.decode().split('\0') if f]


def _build_env():
    """Return the environment of a shell without a workspace, the venv's wheels as underlay."""
    env = _clean_env()
    if os.path.isdir(os.path.join(sys.prefix, 'share', 'ament_cmake')):
        env['CMAKE_PREFIX_PATH'] = env['AMENT_PREFIX_PATH'] = sys.prefix
    return env


def _has_tf2_msgs(env):
    return any(os.path.isfile(os.path.join(p, 'share', 'tf2_msgs', 'msg', 'TFMessage.msg'))
               for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p)


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    """Copy the repository into ws/src, ``colcon build`` from ws; return the install base."""
    colcon = os.path.join(os.path.dirname(sys.executable), 'colcon')
    assert os.path.isfile(colcon), f'colcon is not installed next to {sys.executable} ' \
        '(requirements/build.txt; scripts/setup_venv.sh installs it)'
    ws = tmp_path_factory.mktemp('colcon_ws')
    src = ws / 'src' / 'avs_net_ros'
    for f in _tracked_files():
        os.makedirs(os.path.dirname(src / f), exist_ok=True)
        shutil.copy2(os.path.join(REPO, f), src / f)
    env = _build_env()
    base = [colcon, '--log-base', str(ws / 'log'), 'build', '--build-base', str(ws / 'build'),
            '--install-base', str(ws / 'install')]
    if not _has_tf2_msgs(env):  # no ROS install: the stand-in, apart, as colcon_build.sh does
        r = subprocess.run(base + ['--base-paths', str(src / 'stand_ins' / 'tf2_msgs')],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f'colcon build of the stand-in failed:\n{r.stdout}{r.stderr}'
    r = subprocess.run(base, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'colcon build failed:\n{r.stdout}\n{r.stderr}'
    # the crawl from ws found exactly the two packages of the repository
    assert sorted(re.findall(r'^Finished <<< (\S+)', r.stdout, re.M)) == [MSGS, PACKAGE], \
        r.stdout
    return ws / 'install'


def test_install_has_the_layout_ros2_run_and_launch_need(install):
    prefix = install / PACKAGE
    share = prefix / 'share' / PACKAGE
    assert (prefix / 'share/ament_index/resource_index/packages' / PACKAGE).is_file()
    assert filecmp.cmp(share / 'package.xml', os.path.join(ROOT, 'package.xml'), shallow=False)
    launch = os.path.join(ROOT, 'launch')
    assert _files(share / 'launch') == _files(launch)
    assert 'depth.launch.py' in _files(launch)
    config = os.path.join(ROOT, 'config')
    assert _files(share / 'config') == _files(config)
    assert {'sim/demo_rooms/office.yaml', 'sim/bv2_like.yaml', 'fastdds_localhost.xml'} <= set(
        _files(config))
    assert all(filecmp.cmp(share / 'config' / f, os.path.join(config, f), shallow=False)
               for f in _files(config))
    scripts = re.findall(r"'(\w+) = avs_net_ros\.[\w.]+:main'",
                         open(os.path.join(ROOT, 'setup.py')).read())
    assert len(scripts) >= 10 and set(NODES) <= set(scripts)
    lib = prefix / 'lib' / PACKAGE
    assert sorted(os.listdir(lib)) == sorted(scripts)
    assert all(os.access(lib / s, os.X_OK) for s in scripts)
    assert not (prefix / 'bin').exists()  # executables belong in lib/<package>, not on PATH
    site = prefix / 'lib' / f'python{sys.version_info[0]}.{sys.version_info[1]}' / \
        'site-packages'
    assert sorted(p for p in os.listdir(site) if not p.endswith('.egg-info')) == [PACKAGE]


def test_installed_package_finds_itself_and_its_config(install, tmp_path):
    r = subprocess.run(_sourced(install, [sys.executable, '-c', PROBE]), cwd=tmp_path,
                       env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    prefix = str(install / PACKAGE)
    share = os.path.join(prefix, 'share', PACKAGE)
    assert (found['prefix'], found['share']) == (prefix, share)
    assert found['module'].startswith(prefix + os.sep)  # the installed copy, not the source
    assert found['config'] == os.path.join(share, 'config')
    msgs_prefix = str(install / MSGS)
    assert found['msgs_module'].startswith(msgs_prefix + os.sep)
    assert found['msgs_share'] == os.path.join(msgs_prefix, 'share', MSGS)
    # from an install the bag code reads the installed .msg (no source tree beside it)
    with open(os.path.join(REPO, MSGS, 'msg', 'EchoFrame.msg')) as f:
        assert found['echo_definition'] == f.read()
    assert found['echo_round_trip'] == [44100, 2, [0.5, -0.25, 1.0, 0.0]]
    assert set(NODES) <= set(found['executables'])
    assert sorted(os.path.basename(f) for f in found['params_files']) == [
        'chirp_emitter.yaml', 'depth_inference.yaml', 'sim_robot.yaml']
    assert all(f.startswith(found['config'] + os.sep) and os.path.isfile(f)
               for f in found['params_files'])
    # without the setup script the installed code says what is missing instead of guessing
    env = _clean_env()
    env['PYTHONPATH'] = os.path.dirname(os.path.dirname(found['module']))
    r = subprocess.run([sys.executable, '-c', 'from avs_net_ros.ros.graph import '
                        'default_config_dir; default_config_dir()'],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert 'FileNotFoundError: config of avs_net_ros not found' in r.stderr
    assert 'source the setup script of the install' in r.stderr


def test_console_scripts_run_from_the_install(install, tmp_path):
    lib = install / PACKAGE / 'lib' / PACKAGE
    tools = sorted(set(os.listdir(lib)) - set(NODES) - {'avs_bringup'})
    assert len(tools) >= 6
    for tool in tools:
        r = subprocess.run(_sourced(install, [str(lib / tool), '--help']), cwd=tmp_path,
                           env=_clean_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.startswith('usage: '), (tool, r.stderr)
    r = subprocess.run(_sourced(install, [str(lib / 'avs_bringup'), '--show-args']),
                       cwd=tmp_path, env=_clean_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "'use_sim'" in r.stdout, r.stderr


def test_node_executables_join_the_graph_from_the_install(install, tmp_path, model_set):
    lib = install / PACKAGE / 'lib' / PACKAGE
    args = dict(NODES, depth_inference=[
        '-p', f'avs_model:={model_set["av"]}', '-p', f'relative_model:={model_set["masked"]}',
        '-p', f'visual_model:={model_set["v"]}', '-p', 'providers:=[cpu]'])
    env = _clean_env(ros_env(DOMAIN))
    h = RosHarness(DOMAIN)
    procs = {}
    try:
        for name, extra in args.items():
            log = open(tmp_path / f'{name}.log', 'w+')
            procs[name] = (subprocess.Popen(
                _sourced(install, [str(lib / name), '--ros-args'] + extra), cwd=tmp_path,
                env=env, stdout=log, stderr=subprocess.STDOUT), log)
        wait_for(lambda: set(NODES) <= set(h.tester.get_node_names())
                 or any(p.poll() is not None for p, _ in procs.values()), 60,
                 'the three nodes in the graph')
        for name, (proc, log) in procs.items():
            log.seek(0)
            assert proc.poll() is None, f'{name} exited:\n{log.read()}'
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        codes = {}
        for name, (proc, log) in procs.items():
            try:
                codes[name] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
            log.close()
        h.close()
    assert codes == dict.fromkeys(NODES, 0), codes


def test_message_package_is_installed_as_an_interface_package(install):
    prefix = install / MSGS
    share = prefix / 'share' / MSGS
    assert (prefix / 'share/ament_index/resource_index/packages' / MSGS).is_file()
    assert 'msg/EchoFrame.msg' in (prefix / 'share/ament_index/resource_index/'
                                   'rosidl_interfaces' / MSGS).read_text().split()
    assert filecmp.cmp(share / 'msg' / 'EchoFrame.msg',
                       os.path.join(REPO, MSGS, 'msg', 'EchoFrame.msg'), shallow=False)
    assert filecmp.cmp(share / 'package.xml', os.path.join(REPO, MSGS, 'package.xml'),
                       shallow=False)
    libs = os.listdir(prefix / 'lib')
    assert f'lib{MSGS}__rosidl_typesupport_c.so' in libs
    assert f'lib{MSGS}__rosidl_generator_py.so' in libs
    site = prefix / 'lib' / f'python{sys.version_info[0]}.{sys.version_info[1]}' / \
        'site-packages' / MSGS / 'msg'
    assert (site / '_echo_frame.py').is_file()
