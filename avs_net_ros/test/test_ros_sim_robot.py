"""sim_robot over real DDS (loopback, domain 93): camera, ground truth, pose, TF and echoes."""

import json
import os

from ament_index_python.packages import get_package_share_directory
from avs_net_msgs.msg import EchoFrame
from avs_net_ros.core.acoustics import align_to_direct_path
from avs_net_ros.messages import frame_to_echo, image_to_array, stamp_to_ns
from avs_net_ros.ros.sim_robot import SimRobotNode
from avs_net_ros.ros.tf import STATIC_QOS
from avs_net_ros.sim.world import SimulatedWorld
from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from ros_fixtures import overrides, RosHarness, wait_for
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

DOMAIN = 93


@pytest.fixture(scope='module')
def sim():
    h = RosHarness(DOMAIN)
    out = {
        'image': h.collect(Image, 'image'),
        'info': h.collect(CameraInfo, 'camera_info'),
        'depth': h.collect(Image, 'ground_truth/depth'),
        'pose': h.collect(PoseStamped, 'sim_pose'),
        'echoes': h.collect(EchoFrame, 'echoes'),
        'tf': h.collect(TFMessage, '/tf'),
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
    image_stamps = [_stamp(m) for m in out['image'].snapshot()]
    echoes = out['echoes'].snapshot()
    chirp = node.world.acoustics.chirp
    for msg in echoes[:2]:
        assert _stamp(msg) in image_stamps
        assert image_stamps.index(_stamp(msg)) % 2 == 0  # chirp_every = 2
        assert msg.header.frame_id == 'speaker_link'
        echo, info = frame_to_echo(msg)
        assert (info.sample_rate, info.channels, info.backend) == (44100, 2, 'simulated_world')
        assert info.window_samples == node.sonar.window == 3112
        assert (info.chirp_start_hz, info.chirp_end_hz, info.chirp_duration,
                info.chirp_method) == (chirp.f_start, chirp.f_end, chirp.duration, chirp.method)
        assert (info.max_range, info.lead_in_samples) == (12.0, 0)
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


def _matrix(q):
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _pose(t):
    tr, r = t.transform.translation, t.transform.rotation
    return np.array([tr.x, tr.y, tr.z]), _matrix((r.x, r.y, r.z, r.w))


def test_tf_static_carries_the_rig_to_a_late_subscriber(sim):
    """Subscribed after the node published it once: transient local, as tf2_ros broadcasts."""
    h, node, _ = sim
    late = h.collect(TFMessage, '/tf_static', STATIC_QOS)
    msg = wait_for(lambda: late.snapshot(), 10, 'the latched /tf_static')[-1]
    frames = {t.child_frame_id: t for t in msg.transforms}
    assert set(frames) == {'camera_optical', 'speaker_link', 'mic_left_link', 'mic_right_link'}
    assert {t.header.frame_id for t in msg.transforms} == {'base_link'}
    cam, cam_rot = _pose(frames['camera_optical'])
    np.testing.assert_allclose(cam, [0.0, 0.0, 0.3])  # camera_xyz
    # REP 103 optical frame: x right (base -y), y down (base -z), z forward (base +x)
    np.testing.assert_allclose(cam_rot, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    rig = node.world.rig
    left, right = _pose(frames['mic_left_link'])[0], _pose(frames['mic_right_link'])[0]
    assert left[1] - right[1] == pytest.approx(rig.ear_spacing)  # left ear on +y (REP 103)
    # the speaker sits where the simulator puts it: rig.speaker_offset in the optical frame
    np.testing.assert_allclose(cam_rot.T @ (_pose(frames['speaker_link'])[0] - cam),
                               rig.speaker_offset, atol=1e-12)


def test_tf_carries_the_pose_odom_to_base_link(sim):
    """The pose odom -> base_link composed with the static rig gives the simulated camera pose."""
    _, node, out = sim
    image_stamps = [_stamp(m) for m in out['image'].snapshot()]
    by_stamp = {_stamp(t): t for m in out['tf'].snapshot() for t in m.transforms}
    t = by_stamp[image_stamps[2]]  # one transform per camera frame, same stamp
    assert (t.header.frame_id, t.child_frame_id) == ('odom', 'base_link')
    base, base_rot = _pose(t)
    want = node.poses[2]
    np.testing.assert_allclose(base + base_rot @ [0.0, 0.0, 0.3], want.position, atol=1e-9)
    right, down, forward = want.axes()
    optical = base_rot @ np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    np.testing.assert_allclose(optical, np.stack([right, down, forward], axis=1), atol=1e-9)


def test_tf2_msgs_has_the_type_hash_of_jazzys():
    """The TFMessage this environment has (real, or the stand-in) is ROS 2 Jazzy's type."""
    from rosbags.typesys import get_typestore, Stores
    path = os.path.join(get_package_share_directory('tf2_msgs'), 'msg', 'TFMessage.json')
    with open(path) as f:
        hashes = {h['type_name']: h['hash_string'] for h in json.load(f)['type_hashes']}
    want = get_typestore(Stores.ROS2_JAZZY).hash_rihs01('tf2_msgs/msg/TFMessage')
    assert hashes['tf2_msgs/msg/TFMessage'] == want
