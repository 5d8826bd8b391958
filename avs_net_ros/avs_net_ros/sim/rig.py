"""The sensor rig: pinhole camera pose and intrinsics, speaker and the two ears.

World frame: z up. A pose is a position and a yaw (about z, 0 = looking along +x) and pitch
(positive = looking up). The camera frame follows OpenCV: x right, y down, z forward, so a
pixel's ray is ``R @ ((u - cx) / fx, (v - cy) / fy, 1)`` and the ray parameter is z-depth.
The left ear sits ``ear_spacing / 2`` to the camera's left (image left), the right ear to its
right, both at camera height; flipping the image horizontally therefore swaps the ears.
"""

from dataclasses import dataclass, replace
from typing import Dict, Tuple

from avs_net_ros.core.errors import AvsInputError

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for a ``width`` x ``height`` image."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = 90.0) -> 'Intrinsics':
        """Square pixels, principal point at the image centre, horizontal FOV in degrees."""
        if width <= 0 or height <= 0:
            raise AvsInputError(f'image size must be positive, got {width}x{height}')
        if not 1.0 < hfov_deg < 179.0:
            raise AvsInputError(f'horizontal FOV must be in (1, 179) degrees, got {hfov_deg}')
        f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
        return cls(int(width), int(height), f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def matrix(self) -> np.ndarray:
        """Return K as a 3x3 float64 matrix."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


@dataclass(frozen=True)
class CameraPose:
    """Camera position (m) and orientation (yaw, pitch in radians)."""

    x: float
    y: float
    z: float
    yaw: float
    pitch: float = 0.0

    @property
    def position(self) -> np.ndarray:
        """Camera centre as a float64 (3,) array."""
        return np.array([self.x, self.y, self.z], dtype=np.float64)

    def axes(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (right, down, forward) unit vectors in the world frame."""
        cy, sy = np.cos(self.yaw), np.sin(self.yaw)
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        forward = np.array([cy * cp, sy * cp, sp])
        right = np.array([sy, -cy, 0.0])
        up = np.cross(right, forward)
        return right, -up, forward

    def rotation(self) -> np.ndarray:
        """Return the camera-to-world matrix whose columns are right, down, forward."""
        return np.stack(self.axes(), axis=1)

    def scaled(self, k: float) -> 'CameraPose':
        """Return the pose with its position multiplied by ``k`` (for scaled scenes)."""
        return replace(self, x=self.x * k, y=self.y * k, z=self.z * k)


@dataclass(frozen=True)
class RigGeometry:
    """Where the speaker and microphones sit relative to the camera (camera frame, metres).

    Attributes:
        ear_spacing: Distance between the two microphones (m).
        speaker_offset: Speaker position (right, down, forward) from the camera centre; the
            default is just below the camera, centred between the ears, as in BatVision's
            rig (the real BV2 sample has zero left/right lag on the direct sound).
        speaker_directivity: 'omni' or 'cardioid' (pointing along the camera axis).
        mic_directivity: 'omni' or 'cardioid' (each ear pointing 45 degrees outwards).

    """

    ear_spacing: float = 0.18
    speaker_offset: Tuple[float, float, float] = (0.0, 0.08, 0.02)
    speaker_directivity: str = 'cardioid'
    mic_directivity: str = 'omni'

    def __post_init__(self) -> None:
        """Reject impossible rigs."""
        if self.ear_spacing <= 0:
            raise AvsInputError(f'ear_spacing must be positive, got {self.ear_spacing}')
        if len(self.speaker_offset) != 3 or not np.isfinite(self.speaker_offset).all():
            raise AvsInputError(f'speaker_offset must be three finite numbers (right, down, '
                                f'forward), got {self.speaker_offset}')
        for d in (self.speaker_directivity, self.mic_directivity):
            if d not in ('omni', 'cardioid'):
                raise AvsInputError(f"directivity must be 'omni' or 'cardioid', got {d!r}")

    def direct_path_samples(self, sample_rate: int = 44100,
                            speed_of_sound_mps: float = 343.42) -> float:
        """Return the speaker-to-nearest-ear flight time in samples (pose independent)."""
        o = np.asarray(self.speaker_offset, dtype=np.float64)
        half = self.ear_spacing / 2
        dist = min(np.linalg.norm(o - [-half, 0, 0]), np.linalg.norm(o - [half, 0, 0]))
        return float(dist / speed_of_sound_mps * sample_rate)

    def positions(self, pose: CameraPose) -> Tuple[np.ndarray, np.ndarray]:
        """Return (speaker (3,), mics (3, 2) with columns left, right) in world metres."""
        right, down, forward = pose.axes()
        c = pose.position
        half = self.ear_spacing / 2
        mics = np.stack([c - half * right, c + half * right], axis=1)
        o = self.speaker_offset
        speaker = c + o[0] * right + o[1] * down + o[2] * forward
        return speaker, mics


#: Rotation of a REP 103 optical frame (x right, y down, z forward) in its body frame (x
#: forward, y left, z up), as a quaternion (x, y, z, w).
OPTICAL_IN_BODY = (-0.5, 0.5, -0.5, 0.5)


def rig_in_base(rig: RigGeometry, camera_xyz: Tuple[float, float, float]
                ) -> Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]]:
    """Return where the rig's parts sit in the robot's base frame (REP 103: x forward, y left).

    ``camera_xyz`` is the camera centre in the base frame (the camera looks along +x). Returns
    part -> (translation (x, y, z) in metres, rotation quaternion (x, y, z, w)) for 'camera'
    (the optical frame), 'speaker', 'mic_left' and 'mic_right' (the last three unrotated).
    """
    c = np.asarray(camera_xyz, dtype=np.float64)
    if c.shape != (3,) or not np.isfinite(c).all():
        raise AvsInputError(f'camera_xyz must be three finite numbers, got {camera_xyz}')
    right, down, forward = (0.0, -1.0, 0.0), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0)
    o = rig.speaker_offset
    speaker = c + o[0] * np.array(right) + o[1] * np.array(down) + o[2] * np.array(forward)
    half = rig.ear_spacing / 2
    ident = (0.0, 0.0, 0.0, 1.0)
    return {'camera': (tuple(c.tolist()), OPTICAL_IN_BODY),
            'speaker': (tuple(speaker.tolist()), ident),
            'mic_left': (tuple((c + [0.0, half, 0.0]).tolist()), ident),
            'mic_right': (tuple((c - [0.0, half, 0.0]).tolist()), ident)}


def body_pose(pose: CameraPose, camera_xyz: Tuple[float, float, float]
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Return the base frame's world position and (3, 3) rotation for camera ``pose``.

    The base frame turns and tilts with the camera (x forward, y left, z up, REP 103) and sits
    ``camera_xyz`` behind/below it, so base pose composed with ``rig_in_base`` gives the camera
    pose back.
    """
    right, down, forward = pose.axes()
    rot = np.stack([forward, -right, -down], axis=1)
    return pose.position - rot @ np.asarray(camera_xyz, dtype=np.float64), rot
