"""sim_robot over real DDS (loopback, domain 93): camera, ground truth, pose and echoes."""

import json

from avs_net_ros.core.acoustics import align_to_direct_path
from avs_net_ros.messages import image_to_array, image_to_echo, stamp_to_ns, string_to_echo_info
from avs_net_ros.ros.sim_robot import SimRobotNode
from avs_net_ros.sim.world import SimulatedWorld
from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from ros_fixtures import LATCHED, overrides, RosHarness, wait_for
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

DOMAIN = 93


@pytest.fixture(scope='module')
def sim():
    h = RosHarness(DOMAIN)
    out = {
        'image': h.collect(Image, 'image'),
        'info': h.collect(CameraInfo, 'camera_info'),
        'depth': h.collect(Image, 'ground_truth/depth'),
        'pose': h.collect(PoseStamped, 'sim_pose'),
        'echoes': h.collect(Image, 'echoes'),
        'echo_info': h.collect(String, 'echoes/info', LATCHED),
    }
    node = h.add(SimRobotNode(context=h.context, parameter_overrides=overrides(
        width=64, height=48, frame_rate=20.0, num_poses=4, publish_echoes=True, chirp_every=2,
        echo_noise=False, seed=3)))
    wait_for(lambda: len(out['echoes'].snapshot()) >= 2 and len(out['image'].snapshot()) >= 5,
             20, 'five frames and two echoes')
    yield h, node, out
    h.close()


def _stamp(msg):
    return stamp_to_ns(msg.header.stamp)


def test_camera_and_ground_truth_share_headers_and_match_the_world(sim):
    _, node, out = sim
    images = out['image'].snapshot()
    depths = {_stamp(m): m for m in out['depth'].snapshot()}
    infos = {_stamp(m): m for m in out['info'].snapshot()}
    img = images[1]
    t = _stamp(img)
    assert (img.encoding, img.width, img.height) == ('rgb8', 64, 48)
    assert img.header.frame_id == 'camera_optical' and t in depths and t in infos
    stamps = [_stamp(m) for m in images]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # recompute frame 1 with an independent world on the same scene and pose
    world = SimulatedWorld(node.scene)
    rgb, depth, intr = world.render(node.poses[1], 64, 48)
    np.testing.assert_array_equal(image_to_array(img), rgb)
    gt = image_to_array(depths[t])
    assert depths[t].encoding == '32FC1'
    valid = np.isfinite(gt)
    assert 0.5 < valid.mean() < 1.0  # the stereo-camera model drops some pixels (NaN)
    np.testing.assert_allclose(gt[valid], depth[valid], rtol=1e-6)
    k = np.array(infos[t].k).reshape(3, 3)
    np.testing.assert_allclose(k, intr.matrix())
    assert infos[t].width == 64 and infos[t].height == 48


def test_pose_topic_follows_the_trajectory(sim):
    _, node, out = sim
    poses = out['pose'].snapshot()
    p = poses[2].pose
    want = node.poses[2]
    np.testing.assert_allclose([p.position.x, p.position.y, p.position.z], want.position)
    q = np.array([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w])
    assert np.linalg.norm(q) == pytest.approx(1.0)
    x, y, z, w = q
    forward = np.array([1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w)])
    np.testing.assert_allclose(forward, want.axes()[2], atol=1e-9)  # body x = looking direction
    # what the chirp emitter's sim backend decodes (yaw, REP 103 pitch) gives the pose back
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    pitch = np.arcsin(2 * (w * y - z * x))
    assert yaw == pytest.approx(want.yaw) and -pitch == pytest.approx(want.pitch)
    assert poses[2].header.frame_id == 'map'


def test_echoes_are_stamped_with_frames_and_self_described(sim):
    _, node, out = sim
    info = string_to_echo_info(out['echo_info'].snapshot()[0])
    raw = json.loads(out['echo_info'].snapshot()[0].data)
    assert (info.sample_rate, info.channels, info.backend) == (44100, 2, 'simulated_world')
    assert info.window_samples == node.sonar.window == 3112 and raw['alignment']
    image_stamps = [_stamp(m) for m in out['image'].snapshot()]
    echoes = out['echoes'].snapshot()
    for msg in echoes[:2]:
        assert _stamp(msg) in image_stamps
        assert image_stamps.index(_stamp(msg)) % 2 == 0  # chirp_every = 2
        echo = image_to_echo(msg)
        assert echo.shape == (2, info.window_samples) and np.all(np.isfinite(echo))
        # lead-in 0: the window starts at the direct path
        onset = align_to_direct_path(echo, node._chirp, search=(0, 50)).onset
        assert onset <= 2
    assert node.echo_faults == 0


def test_lead_in_longer_than_the_pre_roll_is_kept(sim):
    # BV2-layout models count their lead-in up to the direct path: emission (192) + flight.
    h, _, _ = sim
    node = SimRobotNode(context=h.context, namespace='lead_in', parameter_overrides=overrides(
        width=32, height=24, num_poses=2, publish_echoes=True, echo_noise=False, seed=3,
        echo_lead_in_samples=208))  # not spun, and in its own namespace: publishes nothing
    try:
        assert node.world.emit_sample < 208
        echo = node.simulate_echo(node.poses[0])
        assert echo is not None and echo.shape == (2, node.sonar.window)
        onset = align_to_direct_path(echo, node._chirp, search=(150, 260)).onset
        assert abs(onset - 208) <= 2
    finally:
        node.destroy_node()
