"""Robot-like camera trajectories for frame sequences (self-supervised triplets, rosbags).

A differential-drive robot at a camera frame rate: it cruises at a speed drawn per location,
accelerates and turns within limits (no jumps in heading or position between frames), wanders
with a smoothly varying turn rate, slows and turns before walls and boxes it sees ahead
(towards the freer side), stops now and then (frames where the camera stands still, which
auto-masking must handle), and its camera shakes a little in pitch. Distances are in room
units (``Scene.scale``: the ceiling height / 3 with scale ambiguity, metres without), so a
large room is driven through as a small one is, and the images of a sequence stay alike.

``sample_trajectory`` in :mod:`avs_net_ros.sim.families` (the generator's default) is a simpler
wander at 5 Hz that turns on the spot, up to 60 times 0.1 rad within one frame, when blocked;
this model is for sequences whose consecutive frames must overlap.
"""

from dataclasses import asdict, dataclass, fields
import math
from typing import Any, Dict, Mapping, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.families import sample_pose, SceneFamily
from avs_net_ros.sim.rig import CameraPose
from avs_net_ros.sim.scene import Scene

import numpy as np


@dataclass(frozen=True)
class RobotMotion:
    """Motion limits and habits of the robot (lengths in room units, about metres).

    Attributes:
        frame_rate: Camera frames per second of the sequence (Hz).
        speed: Cruise speed range (units/s), drawn once per location.
        accel: Largest change of speed (units/s^2).
        turn_rate_deg: Largest turn rate (deg/s).
        turn_accel_deg: Largest change of turn rate (deg/s^2).
        wander_deg: Spread of the wandering turn rate (deg/s).
        stop_rate: Expected stops per second of driving.
        stop_duration: Range of a stop's length (s).
        clearance: Closest approach to walls and boxes (units).
        lookahead: Distance ahead checked for obstacles (units).
        pitch_shake_deg: Spread of the camera's pitch shake (deg).

    """

    frame_rate: float = 10.0
    speed: Tuple[float, float] = (0.2, 0.35)
    accel: float = 0.5
    turn_rate_deg: float = 20.0
    turn_accel_deg: float = 60.0
    wander_deg: float = 8.0
    stop_rate: float = 0.05
    stop_duration: Tuple[float, float] = (0.5, 1.5)
    clearance: float = 0.5
    lookahead: float = 0.8
    pitch_shake_deg: float = 0.3

    def __post_init__(self) -> None:
        """Reject limits that cannot describe a robot."""
        positive = ('frame_rate', 'accel', 'turn_rate_deg', 'turn_accel_deg', 'clearance',
                    'lookahead')
        bad = [n for n in positive if not getattr(self, n) > 0]
        if bad or not 0 < self.speed[0] <= self.speed[1] or self.stop_rate < 0 or \
                not 0 <= self.stop_duration[0] <= self.stop_duration[1]:
            raise AvsInputError(f'robot motion: bad values {bad or asdict(self)}')

    def to_dict(self) -> Dict[str, Any]:
        """Return the parameters as plain YAML-friendly types."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def motion_from_dict(data: Mapping[str, Any]) -> RobotMotion:
    """Build a ``RobotMotion`` from a mapping (a YAML file); unknown keys are named."""
    known = {f.name for f in fields(RobotMotion)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise AvsInputError(f'unknown robot motion keys {unknown} (known: {sorted(known)})')
    return RobotMotion(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})


def _free(scene: Scene, x: float, y: float, yaw: float, reach: float, margin: float) -> float:
    """Distance (up to ``reach``) the robot can drive along ``yaw`` keeping ``margin``."""
    steps = 8
    for i in range(1, steps + 1):
        d = reach * i / steps
        if not scene.contains(x + d * math.cos(yaw), y + d * math.sin(yaw), margin):
            return reach * (i - 1) / steps
    return reach


def robot_trajectory(motion: RobotMotion, family: SceneFamily, scene: Scene, num_frames: int,
                     rng: np.random.Generator) -> Tuple[CameraPose, ...]:
    """Return ``num_frames`` camera poses of the robot driving through ``scene``."""
    unit = scene.scale
    dt = 1.0 / motion.frame_rate
    margin = motion.clearance * unit
    start = sample_pose(family, scene, rng, motion.clearance)
    x, y, yaw, pitch0 = start.x, start.y, start.yaw, start.pitch
    cruise = float(rng.uniform(*motion.speed)) * unit
    max_w, max_dw = math.radians(motion.turn_rate_deg), math.radians(motion.turn_accel_deg)
    wander = math.radians(motion.wander_deg)
    reach = motion.lookahead * unit
    pitch_lo, pitch_hi = np.radians(family.pitch_deg)
    v = w = 0.0
    wander_w = 0.0
    stop_left = 0.0
    shake = 0.0
    avoid = 0.0  # the side the robot turns to while an obstacle is ahead, kept until clear
    poses = []
    for _ in range(num_frames):
        poses.append(CameraPose(float(x), float(y), start.z, float(yaw),
                                float(np.clip(pitch0 + shake, pitch_lo, pitch_hi))))
        # Where to go: wander, unless an obstacle is near ahead or the robot is stopped.
        wander_w = 0.9 * wander_w + float(rng.normal(0, 0.45 * wander))
        target_v, target_w = cruise, float(np.clip(wander_w, -max_w, max_w))
        ahead = _free(scene, x, y, yaw, reach, margin)
        if ahead < reach:
            if not avoid:
                left = _free(scene, x, y, yaw + math.pi / 3, reach, margin)
                right = _free(scene, x, y, yaw - math.pi / 3, reach, margin)
                avoid = 1.0 if left > right or (left == right and wander_w >= 0) else -1.0
            target_w = avoid * max_w
            target_v = cruise * ahead / reach
        else:
            avoid = 0.0
        if stop_left > 0:
            stop_left -= dt
            target_v, target_w = 0.0, 0.0
        elif rng.random() < motion.stop_rate * dt:
            stop_left = float(rng.uniform(*motion.stop_duration))
        v += float(np.clip(target_v - v, -motion.accel * unit * dt, motion.accel * unit * dt))
        w += float(np.clip(target_w - w, -max_dw * dt, max_dw * dt))
        yaw = math.atan2(math.sin(yaw + w * dt), math.cos(yaw + w * dt))
        nx, ny = x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw)
        if scene.contains(nx, ny, 0.5 * margin):
            x, y = nx, ny
        else:
            v = 0.0  # bumper: stay and keep turning
        shake = 0.7 * shake + float(rng.normal(0, math.radians(motion.pitch_shake_deg)))
    return tuple(poses)
