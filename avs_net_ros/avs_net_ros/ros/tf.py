"""TF of the rig and of the simulated robot, as tf2_ros broadcasts it (no tf2_ros needed).

- ``/tf_static`` (tf2_msgs/TFMessage, reliable, transient local, depth 1: the QoS of tf2_ros's
  StaticTransformBroadcaster, so late joiners get it): base frame -> camera optical frame,
  speaker, left and right microphone (``sim.rig.rig_in_base``).
- ``/tf`` (tf2_msgs/TFMessage, reliable, depth 100 as tf2_ros's TransformBroadcaster): the
  robot's pose, odom -> base frame (REP 105).

Frames follow REP 103 (base x forward, y left, z up; the optical frame x right, y down, z
forward) and the depth images carry the camera optical frame id (REP 118).
"""

from typing import Dict, List, Sequence, Tuple

from avs_net_ros.sim.rig import body_pose, CameraPose, rig_in_base, RigGeometry
from geometry_msgs.msg import TransformStamped
import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

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


class RigTf:
    """Publishes the rig on /tf_static once and the robot's pose on /tf per frame."""

    def __init__(self, node: Node, rig: RigGeometry, camera_xyz: Sequence[float],
                 frames: Dict[str, str]) -> None:
        """Publish the static rig now.

        ``frames`` names 'odom', 'base', 'camera' (optical), 'speaker', 'mic_left' and
        'mic_right'.
        """
        self.frames = dict(frames)
        self.camera_xyz = tuple(float(v) for v in camera_xyz)
        self._static = node.create_publisher(TFMessage, '/tf_static', STATIC_QOS)
        self._dynamic = node.create_publisher(TFMessage, '/tf', DYNAMIC_QOS)
        stamp = node.get_clock().now().to_msg()
        parts = rig_in_base(rig, self.camera_xyz)
        self.static: List[TransformStamped] = [
            transform(stamp, self.frames['base'], self.frames[part], xyz, quat)
            for part, (xyz, quat) in parts.items()]
        self._static.publish(TFMessage(transforms=self.static))

    def publish_pose(self, stamp: object, pose: CameraPose) -> None:
        """Publish odom -> base for the camera ``pose`` (the base carries the camera)."""
        position, rot = body_pose(pose, self.camera_xyz)
        self._dynamic.publish(TFMessage(transforms=[transform(
            stamp, self.frames['odom'], self.frames['base'], position,
            quaternion_from_matrix(rot))]))
