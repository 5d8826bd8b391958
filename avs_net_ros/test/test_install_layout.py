"""The colcon install: a real ``colcon build`` of this package into a temporary workspace.

Checks the layout ``ros2 run`` and ``ros2 launch`` rely on (executables in lib/avs_net_ros,
launch files and config under share/avs_net_ros, package.xml, the ament index marker), that
the console scripts run from there with the install's setup script sourced, that the three
node executables join the ROS graph (domain 96, loopback only), and that the installed code
reads the installed config. No ``ros2`` CLI can be installed here, so the lookup ``ros2 run``
does (the package's prefix from the ament index, then lib/<package>) is done in Python.
"""

import filecmp
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from ros_fixtures import ROOT, ros_env, RosHarness, wait_for

pytestmark = pytest.mark.slow

PACKAGE = 'avs_net_ros'
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
print(json.dumps({
    'prefix': prefix, 'share': get_package_share_directory('avs_net_ros'),
    'module': avs_net_ros.__file__, 'config': default_config_dir(),
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


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    """Build the package with colcon (this venv's) into a fresh workspace; its install base."""
    colcon = os.path.join(os.path.dirname(sys.executable), 'colcon')
    assert os.path.isfile(colcon), f'colcon is not installed next to {sys.executable} ' \
        '(requirements/build.txt; scripts/setup_venv.sh installs it)'
    ws = tmp_path_factory.mktemp('colcon_ws')
    r = subprocess.run(
        [colcon, '--log-base', str(ws / 'log'), 'build', '--base-paths', ROOT,
         '--packages-select', PACKAGE, '--build-base', str(ws / 'build'),
         '--install-base', str(ws / 'install')],
        cwd=ws, env=_clean_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'colcon build failed:\n{r.stdout}\n{r.stderr}'
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
