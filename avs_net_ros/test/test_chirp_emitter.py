"""The chirp_emitter node over real DDS: the node runs in its own process, the test is a peer.

Domain 81 (the audio/emitter tests own 80-89), discovery limited to localhost. The node runs
the simulated-room backend here (test_chirp_emitter_audio.py runs it on a real audio server).
"""

import os

from audio_fixtures import NodeProcess, RosTester, wait_for
from avs_net_msgs.msg import EchoFrame
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.messages import frame_to_echo
from avs_net_ros.ros.chirp_emitter import PARAMS
from avs_net_ros.ros.tf import STATIC_QOS
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from scipy import signal
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
import yaml

DOMAIN = 81
NODE_PARAMS = {'backend': 'sim', 'max_range': 4.0, 'lead_in_samples': 64,
               'reverb_guard': 0.02, 'max_latency': 0.1, 'sim.noise_level': 0.0005,
               'sim.room_size': [5.0, 3.0, 2.8], 'sim.pose': [2.0, 1.5, 1.4, 0.0],
               'sim.latency_samples': 300, 'diagnostics_period': 0.2}


class Camera:
    """Publishes tiny rgb8 frames with increasing stamps, as a camera would."""

    def __init__(self, tester):
        self.pub = tester.node.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.stamps = []
        self.timer = None
        self.tester = tester

    def start(self, rate=20.0):
        self.timer = self.tester.node.create_timer(1.0 / rate, self.frame)

    def stop(self):
        self.timer.cancel()

    def frame(self):
        n = len(self.stamps) + 1
        msg = Image(header=Header(frame_id='camera_optical'), height=2, width=2,
                    encoding='rgb8', step=6, data=bytes(12))
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + n // 20, (n % 20) * 50_000_000
        self.stamps.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        self.pub.publish(msg)


def set_param(tester, name, value):
    """Set a double parameter on the node through its set_parameters service."""
    client = tester.node.create_client(SetParameters, '/chirp_emitter/set_parameters')
    assert client.wait_for_service(timeout_sec=10), 'set_parameters service not found'
    req = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=float(value)))])
    future = client.call_async(req)
    wait_for(future.done, 10, f'setting {name}')
    return future.result().results[0]


def sonar_status(diags):
    """Return the node's latest sonar DiagnosticStatus."""
    for msg in reversed(diags.snapshot()):
        for st in msg.status:
            if st.name == 'chirp_emitter: sonar':
                return st
    return None


def diag_value(diags, key):
    """Return an integer value of the latest sonar status (0 if absent)."""
    st = sonar_status(diags)
    return 0 if st is None else int({kv.key: kv.value for kv in st.values}.get(key, 0))


@pytest.fixture
def emitter(tmp_path):
    tester = RosTester(DOMAIN)
    node = NodeProcess(DOMAIN, NODE_PARAMS, str(tmp_path / 'emitter.log'))
    try:
        yield tester, node
    finally:
        node.stop()
        tester.close()


def test_emitter_publishes_stamped_echoes_paced_and_described(emitter):
    tester, node = emitter
    echoes = tester.collect(EchoFrame, 'echoes', qos_profile_sensor_data)
    diags = tester.collect(DiagnosticArray, '/diagnostics', 10)
    camera = Camera(tester)
    wait_for(lambda: camera.pub.get_subscription_count() >= 1 or node.proc.poll() is not None,
             30, 'the node to subscribe to image')
    assert node.proc.poll() is None, node.log()
    # the rig from the node's config, latched on /tf_static (this subscription came later)
    rig = tester.collect(TFMessage, '/tf_static', STATIC_QOS)
    latest = wait_for(lambda: rig.snapshot(), 10, 'the rig on /tf_static')[-1]
    tf = {t.child_frame_id: t for t in latest.transforms}
    assert set(tf) == {'camera_optical', 'speaker_link', 'mic_left_link', 'mic_right_link'}
    assert {t.header.frame_id for t in tf.values()} == {'base_link'}
    xyz = {k: [t.transform.translation.x, t.transform.translation.y,
               t.transform.translation.z] for k, t in tf.items()}
    np.testing.assert_allclose(xyz['camera_optical'], [0.0, 0.0, 0.3])
    np.testing.assert_allclose(xyz['mic_left_link'], [0.0, 0.09, 0.3])
    np.testing.assert_allclose(xyz['mic_right_link'], [0.0, -0.09, 0.3])
    # speaker_offset (right 0, down 0.08, forward 0.02) in base_link: x +0.02, z -0.08
    np.testing.assert_allclose(xyz['speaker_link'], [0.02, 0.0, 0.22])
    camera.start(20.0)
    wait_for(lambda: len(echoes) >= 4, 30, '4 echoes')
    camera.stop()
    settings = SonarSettings(max_range=4.0, lead_in_samples=64, reverb_guard=0.02,
                             max_latency=0.1)
    chirp = settings.chirp_waveform()
    msgs = echoes.snapshot()
    stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in msgs]
    for m in msgs:
        # The echo frame: 2 channels (left, right) of the window, its settings, the camera
        # frame's stamp in the speaker's frame.
        echo, info = frame_to_echo(m)
        assert echo.shape == (2, settings.window) and m.header.frame_id == 'speaker_link'
        assert (info.window_samples, info.lead_in_samples, info.max_range) == (
            settings.window, 64, 4.0)
        assert (info.sample_rate, info.backend) == (44100, 'sim')
        c = settings.chirp
        assert (info.chirp_start_hz, info.chirp_end_hz, info.chirp_duration,
                info.chirp_method) == (c.f_start, c.f_end, c.duration, c.method)
        # The direct path sits at the lead-in: the echo was aligned on it.
        corr = np.abs(signal.correlate(echo[0], chirp, mode='valid'))
        assert abs(int(np.argmax(corr)) - 64) <= 1
    # Each echo carries the stamp of a camera frame, newer and newer.
    assert set(stamps) <= set(camera.stamps) and stamps == sorted(set(stamps))
    # Pacing: fewer echoes than frames, at most the rate the window and guard allow.
    assert len(msgs) < len(camera.stamps)
    wait_for(lambda: diag_value(diags, 'echoes') >= 4, 10, 'diagnostics counting 4 echoes')
    st = sonar_status(diags)
    values = {kv.key: kv.value for kv in st.values}
    assert int(values['latency_samples']) > 300  # one block + 300 + flight time
    assert values['rate_limit_hz'] == f'{settings.rate_limit:.2f}'
    assert st.level == DiagnosticStatus.OK, st.message
    assert st.hardware_id == 'simulated room' and diag_value(diags, 'xrun') == 0


def test_missing_direct_path_and_clipping_are_reported_and_the_node_keeps_running(emitter):
    tester, node = emitter
    echoes = tester.collect(EchoFrame, 'echoes', qos_profile_sensor_data)
    diags = tester.collect(DiagnosticArray, '/diagnostics', 10)
    camera = Camera(tester)
    wait_for(lambda: camera.pub.get_subscription_count() >= 1 or node.proc.poll() is not None,
             30, 'the node to subscribe to image')
    camera.start(20.0)
    wait_for(lambda: len(echoes) >= 2, 30, 'first echoes')
    # Microphone noise far above the chirp: the direct path is lost.
    assert set_param(tester, 'sim.noise_level', 2.0).successful

    def warned(word):
        st = sonar_status(diags)
        return st is not None and st.level == DiagnosticStatus.WARN and word in st.message

    wait_for(lambda: warned('without a direct path'), 20, 'a missing-direct-path warning')
    n = len(echoes)
    wait_for(lambda: diag_value(diags, 'no_direct_path') >= 3, 20, 'three misses')
    assert len(echoes) <= n + 1  # at most one already in flight: none for the lost chirps
    # Quiet again: echoes resume, the node never stopped.
    assert set_param(tester, 'sim.noise_level', 0.0005).successful
    wait_for(lambda: len(echoes) >= n + 3, 30, 'echoes after the noise')
    # Clipping: reported, echoes still published.
    assert set_param(tester, 'sim.input_gain', 200.0).successful
    wait_for(lambda: warned('clipped'), 20, 'a clipping warning')
    # A value that makes no valid settings is refused with the reason.
    refused = set_param(tester, 'gain', -1.0)
    assert not refused.successful
    # The simulated sonar follows sim_pose; a pose outside the room is refused and logged.
    assert set_param(tester, 'sim.input_gain', 1.0).successful
    poses = tester.node.create_publisher(PoseStamped, 'sim_pose', 5)
    wait_for(lambda: poses.get_subscription_count() >= 1, 20, 'the node to subscribe to sim_pose')
    outside = PoseStamped()
    outside.pose.position.x, outside.pose.orientation.w = 50.0, 1.0
    poses.publish(outside)
    wait_for(lambda: diag_value(diags, 'sim_poses_refused') >= 1, 20,
             'the bad pose to be refused (diagnostics)')
    assert 'sim_pose ignored' in node.log()  # and the reason is logged
    moved = PoseStamped()
    moved.pose.position.x, moved.pose.position.y, moved.pose.position.z = 1.0, 1.0, 1.2
    moved.pose.orientation.z, moved.pose.orientation.w = np.sin(0.4), np.cos(0.4)
    n = len(echoes)
    wait_for(lambda: len(echoes) >= n + 2, 30, 'unclipped echoes before moving')
    before = frame_to_echo(echoes.snapshot()[-1])[0]
    assert np.abs(before).max() < 0.999
    n = len(echoes)
    poses.publish(moved)
    wait_for(lambda: len(echoes) >= n + 3, 30, 'echoes after moving')
    after = frame_to_echo(echoes.snapshot()[-1])[0]
    # Same direct path (same rig), different room echoes (another place in the room).
    late = slice(64 + 200, None)
    assert np.abs(after[:, late] - before[:, late]).max() > 10 * 0.0005
    camera.stop()
    assert node.proc.poll() is None, node.log()


def test_config_yaml_documents_every_parameter():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        'config', 'chirp_emitter.yaml')
    with open(path) as f:
        text = f.read()
    params = yaml.safe_load(text)['/**/chirp_emitter']['ros__parameters']
    flat = {}
    for k, v in params.items():
        if isinstance(v, dict):
            flat.update({f'{k}.{kk}': vv for kk, vv in v.items()})
        else:
            flat[k] = v
    assert set(flat) == {s.name for s in PARAMS}
    lines = text.splitlines()
    for spec in PARAMS:
        assert flat[spec.name] == spec.default, spec.name
        leaf = spec.name.split('.')[-1]
        i = next(i for i, ln in enumerate(lines) if ln.strip().startswith(leaf + ':'))
        assert '#' in lines[i] or lines[i - 1].strip().startswith('#'), \
            f'{spec.name} has no comment'
