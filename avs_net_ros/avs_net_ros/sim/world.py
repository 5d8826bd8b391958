"""SimulatedWorld: one scene, a rig, and per-pose camera and microphone outputs.

This is what the simulated-robot node and the dataset generator call::

    world = SimulatedWorld(scene)
    rgb, depth, intr = world.render(pose, width=256, height=192)
    echo = world.record(pose, rng=np.random.default_rng(0))   # (2, N) float32, 44.1 kHz

Impulse responses are cached per pose (rounded to a millimetre and a tenth of a degree), so
replaying a pose costs only the convolution.
"""

from collections import OrderedDict
from typing import Optional, Tuple

from avs_net_ros.sim.acoustics import AcousticConfig, impulse_responses, record
from avs_net_ros.sim.render import render
from avs_net_ros.sim.rig import CameraPose, Intrinsics, RigGeometry
from avs_net_ros.sim.scene import Scene
from avs_net_ros.sim.sensors import StereoSensorConfig, valid_mask

import numpy as np


class SimulatedWorld:
    """A scene with a camera + speaker + binaural microphone rig moving through it."""

    def __init__(self, scene: Scene, rig: RigGeometry = RigGeometry(),
                 acoustics: AcousticConfig = AcousticConfig(),
                 sensor: StereoSensorConfig = StereoSensorConfig(), hfov_deg: float = 90.0,
                 cache_size: int = 64) -> None:
        """Hold ``scene`` and the rig, acoustic, depth-sensor and lens settings."""
        self.scene = scene
        self.rig = rig
        self.acoustics = acoustics
        self.sensor = sensor
        self.hfov_deg = hfov_deg
        self._cache: 'OrderedDict[tuple, np.ndarray]' = OrderedDict()
        self._cache_size = cache_size

    @property
    def sample_rate(self) -> int:
        """Sample rate of recordings (Hz)."""
        return self.acoustics.sample_rate

    @property
    def emit_sample(self) -> int:
        """Sample of a recording at which the chirp leaves the speaker."""
        return self.acoustics.emit_sample

    def intrinsics(self, width: int, height: int) -> Intrinsics:
        """Pinhole intrinsics of this world's camera at ``width`` x ``height``."""
        return Intrinsics.from_fov(width, height, self.hfov_deg)

    def render(self, pose: CameraPose, width: int = 1280, height: int = 720,
               intrinsics: Optional[Intrinsics] = None
               ) -> Tuple[np.ndarray, np.ndarray, Intrinsics]:
        """Return (rgb uint8 (H, W, 3), depth float32 metres (H, W), intrinsics)."""
        intr = intrinsics or self.intrinsics(width, height)
        out = render(self.scene, pose, intr)
        return out.rgb, out.depth, intr

    def sensor_valid(self, rgb: np.ndarray, depth: np.ndarray, intr: Intrinsics,
                     rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Return the stereo depth camera's valid mask for a rendered view."""
        return valid_mask(depth, rgb, intr, self.sensor, rng)

    def impulse_responses(self, pose: CameraPose) -> np.ndarray:
        """Return (2, L) speaker-to-ear impulse responses for ``pose`` (cached)."""
        key = (round(pose.x, 3), round(pose.y, 3), round(pose.z, 3),
               round(float(np.degrees(pose.yaw)), 1), round(float(np.degrees(pose.pitch)), 1))
        rirs = self._cache.get(key)
        if rirs is None:
            rirs = impulse_responses(self.scene, pose, self.rig, self.acoustics)
            self._cache[key] = rirs
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return rirs

    def record(self, pose: CameraPose, rng: Optional[np.random.Generator] = None,
               gain: Optional[float] = None) -> np.ndarray:
        """Return the (2, N) float32 recording of one chirp emitted at ``emit_sample``.

        Includes the direct path; ``rng`` draws sensor noise (None = noiseless).
        """
        return record(self.impulse_responses(pose), self.acoustics, rng, gain)
