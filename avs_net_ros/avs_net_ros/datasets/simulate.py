"""Simulated BatVision instances: scenes from a family, a robot trajectory, RGB-D and echoes.

Everything is derived from integer seeds, so the same (seed, split, location) always produces
the same arrays and the same bytes on disk, whichever worker renders it.
"""

from dataclasses import dataclass, replace
from typing import Iterator, Optional, Tuple

from avs_net_ros.datasets.features import EMIT_SAMPLE
from avs_net_ros.sim.acoustics import AcousticConfig
from avs_net_ros.sim.families import sample_scene, sample_trajectory, SceneFamily
from avs_net_ros.sim.motion import robot_trajectory, RobotMotion
from avs_net_ros.sim.rig import CameraPose, RigGeometry
from avs_net_ros.sim.sensors import StereoSensorConfig
from avs_net_ros.sim.world import SimulatedWorld

import numpy as np

NUM_SAMPLES = {'bv2': 20000, 'bv1': 4410}
#: Frame period of simulated sequences (s): 5 Hz, under the 5.7 Hz chirp limit for 30 m.
FRAME_PERIOD = 0.2
#: Epoch of the first simulated frame (September 2022, like the real BV2 rows).
BASE_TIME = 1662463000.0


@dataclass
class SimInstance:
    """One simulated frame.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 true z-depth in metres.
        valid: (H, W) bool, where the simulated stereo camera measures depth.
        audio: (2, N) float32 binaural recording in [-1, 1] (left, right).
        pose: The camera pose.
        frame: Frame number within the location's trajectory.

    """

    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    audio: np.ndarray
    pose: CameraPose
    frame: int


def acoustic_config(layout: str, **overrides) -> AcousticConfig:
    """Return the acoustic settings of a layout ('bv1' or 'bv2') with ``overrides``."""
    base = AcousticConfig(num_samples=NUM_SAMPLES[layout], emit_sample=EMIT_SAMPLE[layout])
    return replace(base, **overrides)


def location_seed(seed: int, split: str, location: int) -> np.random.SeedSequence:
    """Return the seed sequence of one location of one split."""
    return np.random.SeedSequence([int(seed), ('train', 'val', 'test').index(split),
                                   int(location)])


class LocationSimulator:
    """One location: its scene, trajectory and world; renders any of its frames."""

    def __init__(self, family: SceneFamily, layout: str, seed: int, split: str, location: int,
                 num_frames: int, width: int, height: int,
                 rig: RigGeometry = RigGeometry(),
                 acoustics: Optional[AcousticConfig] = None,
                 motion: Optional[RobotMotion] = None) -> None:
        """Sample the scene and trajectory of ``location`` deterministically.

        ``motion`` drives the camera as a robot (``avs_net_ros.sim.motion``); without it the
        family's wander (``sample_trajectory``) moves it.
        """
        self.seq = location_seed(seed, split, location)
        rng = np.random.default_rng(np.random.SeedSequence(self.seq.entropy, spawn_key=(0,)))
        self.scene = sample_scene(family, rng)
        if motion is None:
            self.poses = sample_trajectory(family, self.scene, num_frames, rng)
        else:
            self.poses = robot_trajectory(motion, family, self.scene, num_frames, rng)
        sensor = StereoSensorConfig(max_range=family.sensor_max_range)
        self.world = SimulatedWorld(self.scene, rig, acoustics or acoustic_config(layout),
                                    sensor)
        self.width, self.height = width, height

    def frame(self, k: int) -> SimInstance:
        """Render frame ``k`` (deterministic: its own random stream)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seq.entropy,
                                                           spawn_key=(1, int(k))))
        pose = self.poses[k]
        rgb, depth, intr = self.world.render(pose, self.width, self.height)
        valid = self.world.sensor_valid(rgb, depth, intr, rng)
        gain = self.world.acoustics.gain * float(10 ** (rng.uniform(-2, 2) / 20))
        audio = self.world.record(pose, rng, gain)
        return SimInstance(rgb, depth, valid, audio, pose, k)

    def frames(self, ks) -> Iterator[Tuple[int, SimInstance]]:
        """Yield (k, instance) for each frame number in ``ks``."""
        for k in ks:
            yield k, self.frame(k)
