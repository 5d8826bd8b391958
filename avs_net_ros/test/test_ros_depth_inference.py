"""depth_inference over real DDS (loopback, domain 91): outputs, pairing, fallback, faults.

Echoes arrive as avs_net_msgs/EchoFrame; each carries its own settings.
"""

import subprocess
import sys
import time

from avs_net_msgs.msg import EchoFrame
from avs_net_ros.core.scale import ScaleFit
from avs_net_ros.messages import image_to_array, stamp_to_ns
from avs_net_ros.ros.depth_inference import DepthInferenceNode, PARAMS
from avs_net_ros.ros.lifecycle import bring_up, state_of
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from ros_fixtures import (camera_info_msg, echo_msg, half_dark_frame, image_msg, make_echo,
                          overrides,
                          publish_until, ROOT, ros_env, RosHarness, SENSOR_QOS, wait_for,
                          wait_matched)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32

DOMAIN = 91
SEC = 1_000_000_000
SR = 44100


@pytest.fixture(scope='module')
def ros():
    h = RosHarness(DOMAIN)
    h.pubs = {
        'image': h.publisher(Image, 'image', SENSOR_QOS),
        'camera_info': h.publisher(CameraInfo, 'camera_info', SENSOR_QOS),
        'echoes': h.publisher(EchoFrame, 'echoes'),
    }
    h.out = {
        'metric': h.collect(Image, 'depth/metric'),
        'pseudo': h.collect(Image, 'depth/pseudo_dense'),
        'relative': h.collect(Image, 'depth/relative'),
        'scale': h.collect(Float32, 'depth/scale'),
        'info': h.collect(CameraInfo, 'depth/camera_info'),
        'diag': h.collect(DiagnosticArray, '/diagnostics'),
    }
    yield h
    h.close()


@pytest.fixture
def node_factory(ros, model_set):
    """Start a depth_inference node in the harness; removed after the test."""
    made = []

    def make(**params):
        base = {'avs_model': model_set['av'], 'relative_model': model_set['masked'],
                'visual_model': model_set['v'], 'providers': ['cpu'], 'diagnostics_period': 0.1}
        base.update(params)
        node = ros.add(DepthInferenceNode(context=ros.context,
                                          parameter_overrides=overrides(**base)))
        made.append(node)
        bring_up(node)
        for c in ros.out.values():
            c.clear()
        for pub in ros.pubs.values():
            wait_matched(pub)
        return node

    yield make
    for node in made:
        ros.remove(node)


def _finder(collector, stamp_ns):
    def find():
        return [m for m in collector.snapshot() if stamp_to_ns(m.header.stamp) == stamp_ns]
    return find


def _by_stamp(collector, stamp_ns, timeout=10.0):
    return wait_for(_finder(collector, stamp_ns), timeout, f'a message stamped {stamp_ns}')[0]


def _send_image(ros, msg, collector):
    """Publish a camera frame (best effort) until ``collector`` has an output stamped so."""
    t = stamp_to_ns(msg.header.stamp)
    return publish_until(ros.pubs['image'], msg, _finder(collector, t),
                         what=f'an output stamped {t}')[0]


def _diag(ros, predicate, timeout=10.0):
    def find():
        for arr in reversed(ros.out['diag'].snapshot()):
            for st in arr.status:
                if st.name.startswith('depth_inference') and predicate(st):
                    return st
        return None
    return wait_for(find, timeout, 'a matching diagnostics status')


def _values(status):
    return {kv.key: kv.value for kv in status.values}


def test_metric_depth_matches_offline_pipeline(ros, node_factory, model_set):
    node = node_factory(echo_wait=2.0, publish_relative=True)
    t1 = 100 * SEC + 123
    rgb, echo = half_dark_frame(1), make_echo(1)
    publish_until(ros.pubs['camera_info'], camera_info_msg(t1),
                  lambda: node._camera_info is not None, what='camera_info to arrive')
    ros.pubs['echoes'].publish(echo_msg(echo, t1))  # reliable; waits for its frame
    metric = _send_image(ros, image_msg(rgb, t1), ros.out['metric'])
    assert node.counters['published_echo_frames'] == 1

    offline = MetricDepthPipeline(model_set['av'], model_set['masked'], providers=['cpu']).infer(
        rgb, echo, SR)
    assert (metric.encoding, metric.height, metric.width) == ('32FC1', 48, 64)
    assert metric.step == 64 * 4 and metric.is_bigendian == 0
    assert metric.header.frame_id == 'camera_optical'
    depth = image_to_array(metric)
    assert np.isnan(depth[:, :30]).all() and np.isfinite(depth[:, 34:]).all()
    np.testing.assert_array_equal(np.isnan(depth), np.isnan(offline.metric))
    np.testing.assert_allclose(depth, offline.metric, rtol=1e-6, equal_nan=True)
    pseudo = image_to_array(_by_stamp(ros.out['pseudo'], t1))
    np.testing.assert_allclose(pseudo, offline.pseudo_dense, rtol=1e-6)
    relative = image_to_array(_by_stamp(ros.out['relative'], t1))
    np.testing.assert_allclose(relative, offline.relative, rtol=1e-6, equal_nan=True)
    info = _by_stamp(ros.out['info'], t1)
    assert info.header.frame_id == 'camera_optical' and list(info.k)[0] == pytest.approx(51.2)
    scale = wait_for(lambda: ros.out['scale'].snapshot(), 5, 'the scale')[0].data
    assert scale == pytest.approx(offline.scale, rel=1e-6)
    status = _diag(ros, lambda s: s.level == DiagnosticStatus.OK)
    assert status.message == 'metric scale from echoes'
    assert _values(status)['pairing'] == 'avs_net_ros.runtime.pairing'

    # a frame with no echo is scaled by the filtered scale of the echo before it
    t2 = t1 + SEC // 30
    rgb2 = half_dark_frame(2)
    between = image_to_array(_send_image(ros, image_msg(rgb2, t2), ros.out['metric']))
    pipe = MetricDepthPipeline(model_set['av'], model_set['masked'], providers=['cpu'])
    want = ScaleFit('median', 'depth', offline.scale).apply(pipe.relative_depth(rgb2))
    np.testing.assert_allclose(between, want, rtol=1e-5, equal_nan=True)


def test_no_echoes_fall_back_to_visual_model_and_say_so(ros, node_factory, model_set):
    node_factory(echo_timeout=0.5)
    rgb = half_dark_frame(3)
    t = 200 * SEC
    depth = image_to_array(_send_image(ros, image_msg(rgb[..., ::-1].copy(), t, 'bgr8'),
                                       ros.out['metric']))
    offline = MetricDepthPipeline(model_set['v'], model_set['masked'],
                                  providers=['cpu']).infer(rgb)
    np.testing.assert_allclose(depth, offline.metric, rtol=1e-6, equal_nan=True)
    status = _diag(ros, lambda s: s.level == DiagnosticStatus.WARN)
    assert status.message == 'no echo received yet: fallback visual_model'
    assert _values(status)['last_source'] == 'fallback_visual_model'
    # echoes, then silence longer than echo_timeout (by stamps): fallback again
    ros.pubs['echoes'].publish(echo_msg(make_echo(3), t + SEC))
    _send_image(ros, image_msg(rgb, t + SEC), ros.out['pseudo'])  # the echo frame
    _send_image(ros, image_msg(rgb, t + 3 * SEC), ros.out['metric'])
    status = _diag(ros, lambda s: 'no usable echo' in s.message)
    assert status.message == ('no usable echo for 2.00 s (> echo_timeout 0.5 s): fallback '
                              'visual_model')


def test_frames_held_for_echo_wait_are_each_published_when_due(ros, node_factory):
    """Without echoes, each held frame goes out echo_wait after it came, none dropped.

    (The worker used to poll at echo_wait / 4; with frames closer than that, two fell due in
    one poll and the older was dropped as stale.)
    """
    node = node_factory(echo_wait=0.4, echo_timeout=0.5)
    rgb = half_dark_frame(5)
    t0 = 300 * SEC
    _send_image(ros, image_msg(rgb, t0), ros.out['metric'])  # discovery settled
    sent = {}
    for i in range(1, 11):  # 20 Hz, closer than echo_wait / 4 = 100 ms
        msg = image_msg(rgb, t0 + i * SEC // 20)
        ros.pubs['image'].publish(msg)
        sent[stamp_to_ns(msg.header.stamp)] = time.monotonic()
        time.sleep(0.05)
    wait_for(lambda: all(_finder(ros.out['metric'], s)() for s in sent), 10,
             'an output for each of the 10 frames')
    assert node.counters['dropped_frames'] == 0
    got = {stamp_to_ns(m.header.stamp): t for t, m in ros.out['metric'].timed()
           if stamp_to_ns(m.header.stamp) in sent}
    held = [got[s] - sent[s] for s in sent]
    assert min(held) >= 0.39 and max(held) < 0.8


def test_camera_frames_go_out_while_an_echo_is_processed(ros, node_factory, tmp_path):
    """Echo frames run on a worker of their own: a slow AVS-Net does not stall the camera.

    The AV model here takes about a second per run; frames at 20 Hz meanwhile go out through
    the fallback (no echo was processed yet). With one worker for both, none could.
    """
    from model_builders import build_slow_avs_model

    node = node_factory(avs_model=build_slow_avs_model(str(tmp_path / 'slow_av.onnx')),
                        echo_timeout=0.5)
    rgb = half_dark_frame(6)
    t0 = 400 * SEC
    _send_image(ros, image_msg(rgb, t0), ros.out['metric'])  # discovery settled
    t_echo = t0 + SEC // 20
    ros.pubs['echoes'].publish(echo_msg(make_echo(4), t_echo))
    deadline = time.monotonic() + 10
    while node.counters['pairs'] < 1 and time.monotonic() < deadline:
        ros.pubs['image'].publish(image_msg(rgb, t_echo))  # best effort: until it pairs
        time.sleep(0.02)
    assert node.counters['pairs'] == 1, 'the echo did not pair with its frame'
    echo_sent = time.monotonic()
    i = 2
    while not _finder(ros.out['pseudo'], t_echo)() and time.monotonic() < echo_sent + 30:
        ros.pubs['image'].publish(image_msg(rgb, t0 + i * SEC // 20))
        i += 1
        time.sleep(0.05)
    pseudo = [t for t, m in ros.out['pseudo'].timed() if stamp_to_ns(m.header.stamp) == t_echo]
    assert pseudo, 'the echo frame was never processed'
    during = [t for t, m in ros.out['metric'].timed()
              if echo_sent + 0.1 < t < pseudo[0] and stamp_to_ns(m.header.stamp) > t0]
    assert pseudo[0] - echo_sent > 0.3, 'the slow model was not slow: nothing to compare'
    assert len(during) >= 3, f'{len(during)} frames went out while the echo was processed'


def test_a_failing_model_run_is_reported_and_the_node_keeps_running(ros, node_factory):
    """An unexpected error in inference (injected here) is counted and logged; next frames go."""
    node = node_factory(echo_timeout=0.5)
    rgb = half_dark_frame(2)
    real = node.engine.on_frame

    def fail(*args):
        raise RuntimeError('injected: out of device memory')

    node.engine.on_frame = fail
    publish_until(ros.pubs['image'], image_msg(rgb, 400 * SEC),
                  lambda: node.counters['worker_errors'] >= 1, what='the failure to be counted')
    status = _diag(ros, lambda s: _values(s).get('worker_errors', '0') != '0')
    assert 'inference failed: RuntimeError: injected' in _values(status)['last_error']
    node.engine.on_frame = real
    _send_image(ros, image_msg(rgb, 401 * SEC), ros.out['metric'])  # still working


def _odd_count(msg):
    msg.samples = msg.samples[:-1]
    return msg


def _rate(rate):
    def set_rate(msg):
        msg.sample_rate = rate
        return msg
    return set_rate


def test_bad_echoes_are_rejected_and_the_node_keeps_running(ros, node_factory):
    """Each corrupt or mismatched EchoFrame is refused with its reason; a good one still pairs."""
    node = node_factory(echo_wait=0.0)
    t = 300 * SEC
    nan_echo = make_echo(4)
    nan_echo[0, 5] = np.nan
    keep = (lambda msg: msg)
    cases = [
        (nan_echo, keep, 'echo frame has 1 NaN or infinite samples'),
        (make_echo(4), _odd_count, 'echo frame has 3999 samples, not a positive multiple of '
                                   'its 2 channels'),
        (make_echo(4), _rate(0), 'echo frame has an unknown sample rate (0 Hz)'),
        (make_echo(4), _rate(22050), 'echo sample rate is 22050 Hz, the model needs 44100 Hz'),
        (make_echo(4)[:1], keep, 'echo has 1 channels, the model needs 2'),
        (make_echo(4, samples=100), keep, 'echo has 100 samples, the model needs at least'),
    ]
    for i, (echo, spoil, why) in enumerate(cases):
        ros.pubs['echoes'].publish(spoil(echo_msg(echo, t + i)))
        wait_for(lambda i=i: node.counters['echoes_rejected'] == i + 1, 10, why)
        assert why in node.last_error and f'stamp {t + i} ns' in node.last_error
        assert why in _values(_diag(ros, lambda s: why in _values(s)['last_error']))[
            'last_error']
    # still alive: a good echo pairs with its frame and yields an echo frame
    ros.pubs['echoes'].publish(echo_msg(make_echo(5), t + 20))
    _send_image(ros, image_msg(half_dark_frame(5), t + 20), ros.out['pseudo'])
    assert node.counters['pairs'] == 1 and node.counters['echoes_rejected'] == len(cases)
    assert _values(_diag(ros, lambda s: _values(s)['echo_settings'] != 'none'))[
        'echo_settings'] == f'{SR} Hz x 2, 2000 samples'


def test_unsupported_image_encoding_is_reported(ros, node_factory):
    node = node_factory()
    t = 400 * SEC
    publish_until(ros.pubs['image'], image_msg(np.zeros((48, 64), np.float32), t, '32FC1'),
                  lambda: node.counters['images_rejected'] >= 1, what='the rejection')
    assert "camera image encoding '32FC1' is not supported" in node.last_error
    _send_image(ros, image_msg(half_dark_frame(6), t + 1), ros.out['metric'])
    assert not [m for m in ros.out['metric'].snapshot() if stamp_to_ns(m.header.stamp) == t]


def test_burst_keeps_newest_frames_and_increasing_stamps(ros, node_factory):
    """Frames far faster than inference: the newest is processed, older ones are dropped."""
    node = node_factory()
    t0 = 500 * SEC
    frames = [half_dark_frame(i) for i in range(4)]
    n = 60
    for i in range(n):
        ros.pubs['image'].publish(image_msg(frames[i % 4], t0 + i * SEC // 100))
        time.sleep(0.002)
    # DDS may drop some of the burst itself (best effort); wait until the node is idle
    wait_for(lambda: node.counters['frames_in'] > 0 and not node._frames, 10, 'idle')
    last = node._last_frame_ns
    _by_stamp(ros.out['metric'], last)  # the newest frame received is always published
    stamps = [stamp_to_ns(m.header.stamp) for m in ros.out['metric'].snapshot()]
    assert stamps == sorted(set(stamps))
    c = node.counters
    assert c['published_metric'] + c['dropped_frames'] == c['frames_in']
    assert len(node._frames) == 0 and node._pairer._own.pending()[0] <= 10


def _configure_fails(ros, **params):
    """Build a node with ``params``; configure must fail and leave it unconfigured."""
    node = DepthInferenceNode(context=ros.context, parameter_overrides=overrides(**params))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert state_of(node) == 'unconfigured'
        return node.failure
    finally:
        node.destroy_node()


def test_missing_model_file_fails_configure_with_the_path(ros, tmp_path):
    missing = str(tmp_path / 'no_such_avs.onnx')
    assert f'model file not found: {missing}' in _configure_fails(ros, avs_model=missing)
    # standalone with autostart (the default): the process exits with 1 and the reason
    r = subprocess.run([sys.executable, '-m', 'avs_net_ros.ros.depth_inference', '--ros-args',
                        '-p', f'avs_model:={missing}'], cwd=ROOT, env=ros_env(DOMAIN),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f'model file not found: {missing}' in r.stderr + r.stdout
    assert 'parameter avs_model (path of the AVS-Net' in _configure_fails(ros)


def test_every_parameter_has_a_description(ros, node_factory):
    node = node_factory()
    names = [p.name for p in PARAMS]
    described = node.describe_parameters(names)
    assert all(d.description and d.read_only for d in described)
    assert "fallback = 'sometimes' is not one of" in _configure_fails(
        ros, avs_model='x.onnx', fallback='sometimes')


def test_gpu_provider_parameters_are_checked_and_reach_the_sessions(ros, model_set, tmp_path):
    cache = tmp_path / 'trt_engines'
    node = DepthInferenceNode(context=ros.context, parameter_overrides=overrides(
        avs_model=model_set['av'], providers=['cpu'], fallback='none', trt_fp16=True,
        trt_engine_cache_dir=str(cache), cudnn_conv_algo_search='HEURISTIC'))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert cache.is_dir()  # TensorRT's engine cache, made when the options were built
    finally:
        node.destroy_node()
    assert "cudnn_conv_algo_search = 'FAST' is not one of" in _configure_fails(
        ros, avs_model=model_set['av'], cudnn_conv_algo_search='FAST')
