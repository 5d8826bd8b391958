"""A stereo depth camera's failure modes, applied to ray-cast ground truth.

BatVision's depth comes from a stereo camera: pixels are missing where the matcher fails. The
model here marks invalid: depth beyond the sensor's range or closer than its minimum, pixels the
second camera cannot see (occlusion shadows beside foreground edges), low-texture patches, and
a few random blobs. Only validity is modelled (no depth noise), so ground truth stays exact
where it is valid.
"""

from dataclasses import dataclass
from typing import Optional

from avs_net_ros.sim.rig import Intrinsics

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class StereoSensorConfig:
    """Validity model of the simulated stereo depth camera.

    Attributes:
        min_range: Closest valid depth (m).
        max_range: Farthest valid depth (m); BV2's sample tops out near 15.7 m.
        baseline: Stereo baseline (m); the second camera is to the right.
        texture_threshold: Local RGB gradient energy below which matching fails.
        blob_fraction: Expected fraction of pixels dropped in random blobs.

    """

    min_range: float = 0.3
    max_range: float = 20.0
    baseline: float = 0.12
    texture_threshold: float = 0.0003
    blob_fraction: float = 0.03


def occlusion_mask(depth: np.ndarray, intr: Intrinsics, baseline: float) -> np.ndarray:
    """Return True where the right camera cannot see what the left (reference) camera sees.

    A left pixel x with disparity d maps to x - d on the right; it is hidden when a pixel to
    its right maps at or left of that spot with a larger disparity.
    """
    disp = intr.fx * baseline / np.maximum(depth, 1e-3)
    x = np.arange(depth.shape[1], dtype=np.float32)[None, :]
    target = x - disp
    # Running minimum of targets strictly to the right of each pixel.
    rev = np.minimum.accumulate(target[:, ::-1], axis=1)[:, ::-1]
    right_min = np.concatenate([rev[:, 1:], np.full((depth.shape[0], 1), np.inf)], axis=1)
    return right_min < target - 0.5


def valid_mask(depth: np.ndarray, rgb: np.ndarray, intr: Intrinsics,
               config: StereoSensorConfig = StereoSensorConfig(),
               rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Return the (H, W) bool mask of pixels a stereo camera would measure."""
    valid = (depth >= config.min_range) & (depth <= config.max_range) & np.isfinite(depth)
    valid &= ~occlusion_mask(depth, intr, config.baseline)
    gray = rgb.astype(np.float32).mean(axis=2) / 255.0
    gx = np.diff(gray, axis=1, append=gray[:, -1:])
    gy = np.diff(gray, axis=0, append=gray[-1:, :])
    size = max(3, int(round(depth.shape[1] / 40)))
    energy = ndimage.uniform_filter(gx * gx + gy * gy, size=size)
    valid &= energy > config.texture_threshold ** 2
    if rng is not None and config.blob_fraction > 0:
        h, w = depth.shape
        coarse = rng.random((max(2, h // 24), max(2, w // 24))).astype(np.float32)
        zoom = (h / coarse.shape[0], w / coarse.shape[1])
        fine = ndimage.zoom(coarse, zoom, order=1)[:h, :w]
        valid &= fine > np.quantile(fine, config.blob_fraction)
    return valid
