"""TF of the rig and of the simulated robot, as tf2_ros broadcasts it (no tf2_ros needed).

Published by the node that has the rig: ``chirp_emitter`` (the real speaker and microphones;
``publish_rig_tf``) or, in simulation, ``sim_robot`` (the simulated world's rig and the pose).

- ``/tf_static`` (tf2_msgs/TFMessage, reliable, transient local, depth 1: the QoS of tf2_ros's
  StaticTransformBroadcaster, so late joiners get it): base frame -> camera optical frame,
  speaker, left and right microphone (``sim.rig.rig_in_base``).
- ``/tf`` (tf2_msgs/TFMessage, reliable, depth 100 as tf2_ros's TransformBroadcaster): the
  robot's pose, odom -> base frame (REP 105).

Frames follow REP 103 (base x forward, y left, z up; the optical frame x right, y down, z
forward) and the depth images carry the camera optical frame id (REP 118).
"""

from typing import Dict, List, Sequence, Tuple

from avs_net_ros.ros.params import ParamSpec
from avs_net_ros.sim.rig import body_pose, CameraPose, rig_in_base, RigGeometry
from geometry_msgs.msg import TransformStamped
import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

#: Frame parameters of the nodes that publish the rig (declared by each, defined once here).
FRAME_PARAMS = (
    ParamSpec('base_frame', 'base_link', 'Frame of the robot body (REP 103: x forward, y '
              'left, z up); the rig on /tf_static hangs from it.'),
    ParamSpec('camera_xyz', [0.0, 0.0, 0.3], 'Camera centre in base_frame (m: forward, left, '
              'up); the camera looks along the base x axis.'),
    ParamSpec('speaker_frame', 'speaker_link', 'Frame of the speaker on /tf_static; the '
              'echoes are stamped in it.'),
    ParamSpec('mic_left_frame', 'mic_left_link', 'Frame of the left microphone on '
              '/tf_static.'),
    ParamSpec('mic_right_frame', 'mic_right_link', 'Frame of the right microphone on '
              '/tf_static.'),
)

STATIC_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
DYNAMIC_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE)


def quaternion_from_matrix(rot: np.ndarray) -> Tuple[float, float, float, float]:
    """Return (x, y, z, w) of a proper rotation matrix (w >= 0)."""
    m = np.asarray(rot, dtype=np.float64)
    w = np.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = np.sqrt(max(0.0, 1.0 + m[0, 0] - m[1, 1] - m[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - m[0, 0] + m[1, 1] - m[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - m[0, 0] - m[1, 1] + m[2, 2])) / 2
    x = np.copysign(x, m[2, 1] - m[1, 2])
    y = np.copysign(y, m[0, 2] - m[2, 0])
    z = np.copysign(z, m[1, 0] - m[0, 1])
    return float(x), float(y), float(z), float(w)


def transform(stamp: object, parent: str, child: str, xyz: Sequence[float],
              quat: Sequence[float]) -> TransformStamped:
    """Return a TransformStamped of ``child`` in ``parent``."""
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id, t.child_frame_id = parent, child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
        float(v) for v in xyz)
    r = t.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in quat)
    return t


def frames_from(params: Dict[str, object], camera_frame: str, odom_frame: str = '') -> Dict[
        str, str]:
    """Return the frame names ``RigTf`` takes from a node's ``FRAME_PARAMS`` values."""
    return {'odom': odom_frame, 'base': str(params['base_frame']), 'camera': camera_frame,
            'speaker': str(params['speaker_frame']),
            'mic_left': str(params['mic_left_frame']),
            'mic_right': str(params['mic_right_frame'])}


class RigTf:
    """Publishes the rig on /tf_static once and, with ``pose``, the robot's pose on /tf."""

    def __init__(self, node: Node, rig: RigGeometry, camera_xyz: Sequence[float],
                 frames: Dict[str, str], pose: bool = True) -> None:
        """Publish the static rig now.

        ``frames`` names 'odom', 'base', 'camera' (optical), 'speaker', 'mic_left' and
        'mic_right' (``frames_from``).

        Raises:
            AvsInputError: ``camera_xyz`` is not three finite numbers.

        """
        self.node = node
        self.frames = dict(frames)
        self.camera_xyz = tuple(float(v) for v in camera_xyz)
        parts = rig_in_base(rig, self.camera_xyz)
        self._static = node.create_publisher(TFMessage, '/tf_static', STATIC_QOS)
        self._dynamic = node.create_publisher(TFMessage, '/tf', DYNAMIC_QOS) if pose else None
        stamp = node.get_clock().now().to_msg()
        self.static: List[TransformStamped] = [
            transform(stamp, self.frames['base'], self.frames[part], xyz, quat)
            for part, (xyz, quat) in parts.items()]
        self._static.publish(TFMessage(transforms=self.static))

    def destroy(self) -> None:
        """Destroy the publishers (the static rig is no longer offered)."""
        for pub in (self._static, self._dynamic):
            if pub is not None:
                self.node.destroy_publisher(pub)
        self._static = self._dynamic = None

    def publish_pose(self, stamp: object, pose: CameraPose) -> None:
        """Publish odom -> base for the camera ``pose`` (the base carries the camera)."""
        position, rot = body_pose(pose, self.camera_xyz)
        self._dynamic.publish(TFMessage(transforms=[transform(
            stamp, self.frames['odom'], self.frames['base'], position,
            quaternion_from_matrix(rot))]))
