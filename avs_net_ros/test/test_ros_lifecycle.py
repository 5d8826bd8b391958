"""Lifecycle transitions of depth_inference and chirp_emitter, driven over DDS from this process.

Each node runs in a process of its own, started with ``autostart:=false`` (unconfigured, as
for a lifecycle manager); this test calls its ``change_state`` service and checks the state
after each transition with ``get_state`` (lifecycle_msgs), and checks over the topics what the
node does in each state: no subscriptions and no output while inactive, output while active,
and a reconfigure after cleanup. bringup with autostart:=false leaves depth_inference to the
test the same way. Domains 94 (depth), 95 (bringup) and 84 (emitter); loopback only.
"""

import subprocess
import sys
import time

from audio_fixtures import NodeProcess, RosTester
from avs_net_msgs.msg import EchoFrame
from avs_net_ros.messages import stamp_to_ns
from avs_net_ros.ros.lifecycle import LifecycleClient
from avs_net_ros.ros.session import interrupt
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from ros_fixtures import (half_dark_frame, image_msg, publish_until, ROOT, ros_env, RosHarness,
                          SENSOR_QOS, wait_for)
from sensor_msgs.msg import Image
from std_msgs.msg import Header

DEPTH_DOMAIN = 94
EMITTER_DOMAIN = 84
BRINGUP_DOMAIN = 95
SEC = 1_000_000_000
DEPTH = '/depth_inference'
EMITTER = '/chirp_emitter'


class DepthProcess:
    """``python -m avs_net_ros.ros.depth_inference`` with ``params``, output in ``log_path``."""

    def __init__(self, params, log_path):
        args = [sys.executable, '-m', 'avs_net_ros.ros.depth_inference', '--ros-args']
        for k, v in params.items():
            args += ['-p', f'{k}:={v}']
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(args, cwd=ROOT, env=ros_env(DEPTH_DOMAIN),
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        """SIGINT, SIGKILL after 20 s; return the exit status."""
        status = interrupt(self.proc, timeout=20)
        self._log.close()
        return status


def _status(diags, prefix):
    for arr in reversed(diags.snapshot()):
        for st in arr.status:
            if st.name.startswith(prefix):
                return st
    return None


def _diag_state(diags, prefix):
    st = _status(diags, prefix)
    return None if st is None else {kv.key: kv.value for kv in st.values}.get('lifecycle_state')


def _transition(client, node, transition, want):
    assert client.change_state(node, transition), f'{transition} of {node} failed'
    assert client.get_state(node) == want


def _silent(pub, msgs, outputs, seconds):
    """Publish ``msgs`` over ``seconds``; return how many messages ``outputs`` got meanwhile."""
    before = len(outputs)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for m in msgs:
            pub.publish(m)
        time.sleep(0.1)
    time.sleep(0.5)  # an output of the last frames would have arrived by now
    return len(outputs) - before


def _frames(t0, n):
    return [image_msg(half_dark_frame(i), t0 + i * SEC // 10) for i in range(n)]


def test_depth_inference_transitions_over_dds(model_set, tmp_path):
    ros = RosHarness(DEPTH_DOMAIN)
    client = LifecycleClient(ros.tester)
    image = ros.publisher(Image, 'image', SENSOR_QOS)
    metric = ros.collect(Image, 'depth/metric')
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    node = DepthProcess({'autostart': 'false', 'avs_model': model_set['av'],
                         'relative_model': model_set['masked'], 'visual_model': model_set['v'],
                         'providers': '[cpu]', 'diagnostics_period': 0.2},
                        str(tmp_path / 'depth.log'))
    try:
        wait_for(lambda: client.get_state(DEPTH, timeout=1.0) == 'unconfigured', 60,
                 'the unconfigured node to answer get_state')
        assert _status(wait_for(lambda: diags if _status(diags, 'depth_inference') else None,
                                10, 'diagnostics while unconfigured'),
                       'depth_inference').message == 'unconfigured: not publishing'
        for round_ in range(2):  # the second round: configure again after cleanup
            _transition(client, DEPTH, 'configure', 'inactive')
            # inactive: models loaded, outputs advertised, nothing subscribed or published
            wait_for(lambda: ros.tester.count_publishers('/depth/metric') >= 1, 10,
                     'the depth/metric lifecycle publisher')
            assert image.get_subscription_count() == 0
            assert _silent(image, _frames((10 + round_) * SEC, 3), metric, 1.5) == 0
            _transition(client, DEPTH, 'activate', 'active')
            wait_for(lambda: image.get_subscription_count() >= 1, 10,
                     'the node to subscribe to image')
            msg = image_msg(half_dark_frame(7), (20 + round_) * SEC)
            publish_until(image, msg, lambda: any(
                stamp_to_ns(m.header.stamp) == (20 + round_) * SEC for m in metric.snapshot()),
                timeout=20, what='depth for a frame while active')
            wait_for(lambda: _diag_state(diags, 'depth_inference') == 'active', 5,
                     'diagnostics reporting the active state')
            _transition(client, DEPTH, 'deactivate', 'inactive')
            wait_for(lambda: image.get_subscription_count() == 0, 10,
                     'the node to drop its image subscription')
            assert _silent(image, _frames((30 + round_) * SEC, 3), metric, 1.5) == 0
            _transition(client, DEPTH, 'cleanup', 'unconfigured')
        assert not client.change_state(DEPTH, 'activate')  # not from unconfigured
        assert client.get_state(DEPTH) == 'unconfigured'
        _transition(client, DEPTH, 'shutdown', 'finalized')
        assert node.proc.poll() is None, node.log()
    finally:
        code = node.stop()
        ros.close()
    assert code == 0, node.log()


def _configure_fails_and_stays_alive(client, fqn, node, diags, status_name):
    """Configure ``fqn`` (unconfigured): it must fail, stay alive and report ERROR; return it."""
    wait_for(lambda: client.get_state(fqn, timeout=1.0) == 'unconfigured', 60,
             f'{fqn} to answer get_state, unconfigured')
    assert not client.change_state(fqn, 'configure')
    assert client.get_state(fqn) == 'unconfigured'
    assert node.proc.poll() is None, node.log()

    def error_status():
        st = _status(diags, status_name)
        return st if st is not None and st.level == DiagnosticStatus.ERROR else None
    return wait_for(error_status, 10, 'an ERROR status naming the problem')


def test_depth_inference_configure_failure_keeps_the_node_alive(tmp_path):
    missing = str(tmp_path / 'no_such_avs.onnx')
    ros = RosHarness(DEPTH_DOMAIN)
    client = LifecycleClient(ros.tester)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    node = DepthProcess({'autostart': 'false', 'avs_model': missing, 'providers': '[cpu]',
                         'diagnostics_period': 0.2}, str(tmp_path / 'depth.log'))
    try:
        status = _configure_fails_and_stays_alive(client, DEPTH, node, diags,
                                                  'depth_inference')
        assert status.message == ('unconfigured: configure failed: model file not found: '
                                  f'{missing}'), status.message
        assert f'configure failed: model file not found: {missing}' in node.log()
        # a file that is there but is no ONNX model: a broken contract, also a clear failure,
        # and the node is still unconfigured, alive, ready for another configure
        with open(missing, 'wb') as f:
            f.write(b'not an onnx model')
        assert not client.change_state(DEPTH, 'configure')
        wait_for(lambda: f'{missing} is not a readable ONNX model' in (
            _status(diags, 'depth_inference') or DiagnosticStatus()).message, 10,
            'the broken model reported on /diagnostics')
        assert client.get_state(DEPTH) == 'unconfigured'
        assert node.proc.poll() is None, node.log()
    finally:
        code = node.stop()
        ros.close()
    assert code == 0, node.log()


EMITTER_PARAMS = {'backend': 'sim', 'autostart': False, 'max_range': 4.0,
                  'lead_in_samples': 64, 'reverb_guard': 0.02, 'max_latency': 0.1,
                  'sim.noise_level': 0.0005, 'sim.room_size': [5.0, 3.0, 2.8],
                  'sim.pose': [2.0, 1.5, 1.4, 0.0], 'sim.latency_samples': 300,
                  'diagnostics_period': 0.2}


def test_chirp_emitter_transitions_over_dds(tmp_path):
    tester = RosTester(EMITTER_DOMAIN)
    client = LifecycleClient(tester.node)
    echoes = tester.collect(EchoFrame, 'echoes', qos_profile_sensor_data)
    camera = tester.node.create_publisher(Image, 'image', qos_profile_sensor_data)
    stamps = []

    def frame():
        msg = Image(header=Header(frame_id='cam'), height=1, width=1, encoding='mono8',
                    step=1, data=bytes(1))
        msg.header.stamp.sec = len(stamps) + 1
        stamps.append(msg.header.stamp.sec)
        camera.publish(msg)

    node = NodeProcess(EMITTER_DOMAIN, EMITTER_PARAMS, str(tmp_path / 'emitter.log'))
    timer = tester.node.create_timer(1 / 20, frame)
    try:
        wait_for(lambda: client.get_state(EMITTER, timeout=1.0) == 'unconfigured', 60,
                 'the unconfigured emitter to answer get_state')
        for _ in range(2):  # the second round: configure again after cleanup
            _transition(client, EMITTER, 'configure', 'inactive')  # audio open, no chirps
            time.sleep(1.0)
            assert camera.get_subscription_count() == 0 and len(echoes) == 0
            _transition(client, EMITTER, 'activate', 'active')
            wait_for(lambda: len(echoes) >= 3, 30, '3 echoes while active')
            assert {m.header.stamp.sec for m in echoes.snapshot()} <= set(stamps)
            _transition(client, EMITTER, 'deactivate', 'inactive')
            wait_for(lambda: camera.get_subscription_count() == 0, 10,
                     'the emitter to drop its image subscription')
            time.sleep(0.5)  # a chirp already in flight is dropped, not published
            echoes.clear()
            time.sleep(1.5)
            assert len(echoes) == 0
            _transition(client, EMITTER, 'cleanup', 'unconfigured')
        assert node.proc.poll() is None, node.log()
    finally:
        timer.cancel()
        node.stop()
        tester.close()
    assert node.proc.returncode == 0, node.log()


def test_chirp_emitter_configure_failure_names_the_problem(tmp_path):
    tester = RosTester(EMITTER_DOMAIN)
    client = LifecycleClient(tester.node)
    diags = tester.collect(DiagnosticArray, '/diagnostics', 10)
    node = NodeProcess(EMITTER_DOMAIN, dict(EMITTER_PARAMS, **{'sim.pose': [50.0, 1.5, 1.4,
                                                                            0.0]}),
                       str(tmp_path / 'emitter.log'))
    try:
        status = _configure_fails_and_stays_alive(client, EMITTER, node, diags,
                                                  'chirp_emitter')
        assert 'configure failed: rig point [50.02, 1.5, 1.32] is outside the room' in \
            status.message, status.message
    finally:
        node.stop()
        tester.close()


def test_bringup_without_autostart_leaves_the_graph_to_a_manager(model_set, tmp_path):
    """``avs_bringup autostart:=false``: sim_robot runs, depth_inference waits to be driven."""
    ros = RosHarness(BRINGUP_DOMAIN)
    client = LifecycleClient(ros.tester)
    metric = ros.collect(Image, '/depth/metric')
    log_path = tmp_path / 'bringup.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'avs_net_ros.ros.bringup', 'use_sim:=true',
             'use_emitter:=false', 'autostart:=false', f'avs_model:={model_set["av"]}',
             f'visual_model:={model_set["v"]}', 'providers:=cpu'],
            cwd=ROOT, env=ros_env(BRINGUP_DOMAIN), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: client.get_state(DEPTH, timeout=1.0) == 'unconfigured', 60,
                 'depth_inference to answer get_state, unconfigured')
        wait_for(lambda: ros.tester.count_publishers('/camera/image') >= 1, 20,
                 'sim_robot publishing')
        time.sleep(1.0)
        assert len(metric) == 0
        _transition(client, DEPTH, 'configure', 'inactive')
        _transition(client, DEPTH, 'activate', 'active')
        wait_for(lambda: len(metric) >= 2, 30, 'metric depth once activated')
    finally:
        interrupt(proc, timeout=20)
        ros.close()
    assert proc.returncode == 0, log_path.read_text()
