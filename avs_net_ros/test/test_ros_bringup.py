"""The whole graph without hardware: avs_bringup in its own process, observed over DDS.

sim_robot (camera, ground truth and echoes of a simulated room) feeds depth_inference, both
started by ``python -m avs_net_ros.ros.bringup use_sim:=true use_emitter:=false`` exactly as the
launch file would; this test process subscribes over loopback DDS on domain 92.
"""

import signal
import subprocess
import sys

from avs_net_ros.messages import image_to_array, stamp_to_ns
from avs_net_ros.ros.bringup import main as bringup_main
from avs_net_ros.ros.session import interrupt
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from ros_fixtures import ROOT, ros_env, RosHarness, wait_for
from sensor_msgs.msg import Image

DOMAIN = 92


@pytest.fixture(scope='module')
def graph(model_set, tmp_path_factory):
    masked = model_set['masked']
    h = RosHarness(DOMAIN)
    out = {
        'image': h.collect(Image, '/camera/image'),
        'metric': h.collect(Image, '/depth/metric'),
        'pseudo': h.collect(Image, '/depth/pseudo_dense'),
        'truth': h.collect(Image, '/ground_truth/depth'),
        'diag': h.collect(DiagnosticArray, '/diagnostics'),
    }
    log = open(tmp_path_factory.mktemp('log') / 'bringup.log', 'w+')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'avs_net_ros.ros.bringup', 'use_sim:=true', 'use_emitter:=false',
         f'avs_model:={model_set["av"]}', f'relative_model:={masked}',
         f'visual_model:={model_set["v"]}', 'providers:=cpu'],
        cwd=ROOT, env=ros_env(DOMAIN), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(out['pseudo'].snapshot()) >= 2 or proc.poll() is not None, 60,
                 'two echo frames from the simulated graph')
        assert proc.poll() is None, _read(log)
        yield proc, out, log
    finally:
        interrupt(proc, timeout=20)
        h.close()
        log.close()


def _read(log):
    log.flush()
    log.seek(0)
    return log.read()


def test_simulated_graph_publishes_metric_depth_at_camera_rate(graph):
    proc, out, log = graph
    camera = {stamp_to_ns(m.header.stamp) for m in out['image'].snapshot()}
    metric = out['metric'].snapshot()
    pseudo = out['pseudo'].snapshot()
    # every output carries the header of a camera frame (from when this test saw the camera)
    first = min(camera)
    assert {stamp_to_ns(m.header.stamp) for m in pseudo if stamp_to_ns(m.header.stamp) >= first
            } <= camera
    seen = [m for m in metric if stamp_to_ns(m.header.stamp) >= first]
    assert len(seen) >= 2 and {stamp_to_ns(m.header.stamp) for m in seen} <= camera
    assert all(m.header.frame_id == 'camera_optical' for m in metric)
    stamps = [stamp_to_ns(m.header.stamp) for m in metric]
    assert stamps == sorted(set(stamps))
    depth = image_to_array(metric[-1])
    assert (metric[-1].encoding, depth.shape) == ('32FC1', (120, 160))
    valid = np.isfinite(depth)  # REP 118: anything else is NaN
    assert valid.any() and (depth[valid] > 0).all() and not np.isinf(depth).any()
    # echoes from the simulated room reach the AV model: scale from echoes, no fallback

    def ok_status():
        for arr in reversed(out['diag'].snapshot()):
            for st in arr.status:
                if st.name.startswith('depth_inference') and st.level == DiagnosticStatus.OK:
                    return st
        return None
    st = wait_for(ok_status, 20, 'depth_inference reporting echo scale')
    assert st.message == 'metric scale from echoes'
    assert len(out['truth'].snapshot()) >= 2
    assert 'running /sim_robot, /depth_inference' in _read(log)


def test_interrupt_stops_the_graph_cleanly(graph):
    proc, _, log = graph
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0, _read(log)


def test_show_args_and_bad_arguments(capsys):
    assert bringup_main(['--show-args']) == 0
    assert "'use_emitter':" in capsys.readouterr().out
    assert bringup_main(['use_sim:=perhaps']) == 1
