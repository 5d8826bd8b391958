"""depth_inference with a third-party relative model, over real DDS (loopback, domain 97).

The Depth-Anything-like graph (test/foreign_builders: dynamic size, its own tensor names,
output an exact affine function of the scene's inverse depth) is the relative model and the
exact visual-only stand-in the AVS-Net: the published metric depth must be the scene's depth.
"""

import os
import subprocess
import sys

from avs_net_ros.core.foreign import ForeignModelSpec
from avs_net_ros.messages import image_to_array, stamp_to_ns
from avs_net_ros.ros.depth_inference import DepthInferenceNode
from avs_net_ros.ros.lifecycle import bring_up, state_of
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from foreign_builders import build_exact_avs_model, build_foreign_model, scene
import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from ros_fixtures import (image_msg, overrides, publish_until, ROOT, ros_env, RosHarness,
                          SENSOR_QOS, wait_matched)
from sensor_msgs.msg import Image
from std_msgs.msg import Float32

DOMAIN = 97
SEC = 1_000_000_000
FOREIGN_PARAMS = {'relative_output': 'affine_disparity', 'relative_short_side': 56,
                  'relative_size_multiple': 14, 'relative_output_name': 'predicted_depth'}


@pytest.fixture(scope='module')
def ros():
    h = RosHarness(DOMAIN)
    h.image = h.publisher(Image, 'image', SENSOR_QOS)
    h.metric = h.collect(Image, 'depth/metric')
    h.scale = h.collect(Float32, 'depth/scale')
    yield h
    h.close()


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp('foreign_ros')
    return {'v': build_exact_avs_model(str(d / 'v.onnx'), (56, 70)),
            'da': build_foreign_model(str(d / 'depth_anything_like.onnx'), 'depth_anything',
                                      None)}


def _metric(ros, rgb, stamp, timeout=10.0):
    def find():
        return [m for m in ros.metric.snapshot() if stamp_to_ns(m.header.stamp) == stamp]
    return image_to_array(publish_until(ros.image, image_msg(rgb, stamp), find, timeout,
                                        what=f'depth/metric stamped {stamp}')[0])


def test_node_publishes_the_metric_depth_of_a_described_foreign_model(ros, models):
    node = ros.add(DepthInferenceNode(context=ros.context, parameter_overrides=overrides(
        avs_model=models['v'], relative_model=models['da'], providers=['cpu'],
        **FOREIGN_PARAMS)))
    try:
        bring_up(node)
        assert node.pipeline.relative.foreign is not None
        assert node.pipeline.scale_method == 'scale_shift'  # auto, for affine disparity
        wait_matched(ros.image)
        rgb, depth = scene(56, 70, seed=7)
        got = _metric(ros, rgb, 10 * SEC)
        assert float(np.max(np.abs(got - depth) / depth)) < 1e-3
        offline = MetricDepthPipeline(models['v'], models['da'], providers=['cpu'],
                                      relative_spec=ForeignModelSpec.from_params(
                                          FOREIGN_PARAMS)).infer(rgb)
        np.testing.assert_allclose(got, offline.metric, rtol=1e-6)
    finally:
        ros.remove(node)


def test_node_without_the_output_kind_fails_configure_saying_what_to_set(ros, models):
    node = DepthInferenceNode(context=ros.context, parameter_overrides=overrides(
        avs_model=models['v'], relative_model=models['da'], providers=['cpu']))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert state_of(node) == 'unconfigured'
        assert 'carries no avs_net_ros metadata' in node.failure
        assert 'depth_inference parameter relative_output' in node.failure
    finally:
        node.destroy_node()
    node = DepthInferenceNode(context=ros.context, parameter_overrides=overrides(
        avs_model=models['v'], relative_model=models['da'], providers=['cpu'],
        relative_output='affine_disparity'))  # dynamic graph, no size rule
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert 'give input_size (a fixed size) or short_side' in node.failure
    finally:
        node.destroy_node()


def test_standalone_node_reads_the_description_from_a_parameter_file(ros, models, tmp_path):
    """ros2 run depth_inference --params-file depth_inference.yaml --params-file foreign.yaml."""
    foreign = tmp_path / 'da.yaml'
    foreign.write_text('/**/depth_inference:\n  ros__parameters:\n' + ''.join(
        f'    {k}: {v!r}\n' if isinstance(v, str) else f'    {k}: {v}\n'
        for k, v in FOREIGN_PARAMS.items()))
    log = open(tmp_path / 'node.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'avs_net_ros.ros.depth_inference', '--ros-args',
         '--params-file', os.path.join(ROOT, 'config', 'depth_inference.yaml'),
         '--params-file', str(foreign), '-p', f'avs_model:={models["v"]}',
         '-p', f'relative_model:={models["da"]}', '-p', 'providers:=[cpu]'],
        cwd=ROOT, env=ros_env(DOMAIN), stdout=log, stderr=subprocess.STDOUT)
    try:
        rgb, depth = scene(56, 70, seed=8)
        got = _metric(ros, rgb, 20 * SEC, timeout=60.0)  # the process starts and loads
        assert float(np.max(np.abs(got - depth) / depth)) < 1e-3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    text = open(tmp_path / 'node.log').read()
    assert 'affine_disparity, third-party, fed as described by the relative_* parameters; ' \
           'scale method scale_shift' in text
