"""The chirp_emitter node on a real audio server (PulseAudio null sink), over real DDS.

Domain 82. The null sink's monitor records what the node plays, so each echo is the node's own
chirp after the device latency, aligned to the lead-in.
"""

from audio_fixtures import NodeProcess, pulse_server_fixture, RosTester  # noqa: F401
from audio_fixtures import wait_for
from avs_net_msgs.msg import EchoFrame
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.messages import frame_to_echo
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from scipy import signal
from sensor_msgs.msg import Image
from std_msgs.msg import Header

DOMAIN = 82
PARAMS = {'backend': 'sounddevice', 'device': 'pulse', 'max_range': 4.0,
          'lead_in_samples': 64, 'reverb_guard': 0.02, 'max_latency': 0.2}


def test_missing_device_stops_the_node_naming_the_devices(pulse_server, tmp_path):
    node = NodeProcess(DOMAIN, dict(PARAMS, device='no_such_card'),
                       str(tmp_path / 'emitter.log'), env=pulse_server.env)
    try:
        assert node.wait_exit(timeout=60) == 1
        log = node.log()
    finally:
        node.stop()
    assert "no audio device matches 'no_such_card'" in log
    assert "'pulse' (ALSA" in log  # the devices that exist are named


@pytest.mark.slow
def test_node_on_pulse_null_sink_publishes_its_chirp_aligned(pulse_server, tmp_path):
    tester = RosTester(DOMAIN)
    node = NodeProcess(DOMAIN, PARAMS, str(tmp_path / 'emitter.log'), env=pulse_server.env)
    try:
        echoes = tester.collect(EchoFrame, 'echoes', qos_profile_sensor_data)
        diags = tester.collect(DiagnosticArray, '/diagnostics', 10)
        pub = tester.node.create_publisher(Image, 'image', qos_profile_sensor_data)
        wait_for(lambda: pub.get_subscription_count() >= 1 or node.proc.poll() is not None,
                 30, 'the node to subscribe to image')
        assert node.proc.poll() is None, node.log()
        frames = []

        def frame():
            msg = Image(header=Header(frame_id='cam'), height=1, width=1, encoding='mono8',
                        step=1, data=bytes(1))
            msg.header.stamp.sec = len(frames) + 1
            frames.append(msg.header.stamp.sec)
            pub.publish(msg)

        timer = tester.node.create_timer(1 / 30, frame)
        wait_for(lambda: len(echoes) >= 3, 30, '3 echoes from the node')
        timer.cancel()
        settings = SonarSettings(max_range=4.0, lead_in_samples=64)
        chirp = settings.chirp_waveform()
        for m in echoes.snapshot():
            assert m.header.stamp.sec in frames and m.header.frame_id == 'speaker_link'
            echo, info = frame_to_echo(m)
            assert echo.shape == (2, settings.window) and info.backend == 'sounddevice'
            for ch in echo:  # the chirp, at the lead-in, at its played amplitude
                corr = np.abs(signal.correlate(ch, chirp, mode='valid'))
                # Tolerances: on a loaded machine PulseAudio under/overruns inside a stream
                # and can cut into a chirp (test_audio_server checks JACK sample for sample).
                assert abs(int(np.argmax(corr)) - 64) <= 16
                assert 0.5 < corr.max() / np.dot(chirp, chirp) < 1.5
        latency = wait_for(lambda: [kv.value for arr in diags.snapshot() for st in arr.status
                                    for kv in st.values if kv.key == 'latency_samples'
                                    and kv.value not in ('', 'None')], 10,
                           'the measured device latency on /diagnostics')[-1]
        assert int(latency) > 0
        assert node.proc.poll() is None
    finally:
        node.stop()
        tester.close()
