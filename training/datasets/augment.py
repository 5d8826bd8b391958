"""Augmentations that keep image, depth and echo consistent with each other.

A horizontal flip mirrors the scene, so what was on the left is now on the right: the image and
depth are flipped and the left and right ears are swapped. Photometric jitter touches the image
only; echo gain jitter scales both ears alike (it must not change the left/right balance).
"""

from dataclasses import dataclass
from typing import Dict

import numpy as np


@dataclass(frozen=True)
class PairedAugment:
    """Random, geometry-consistent augmentation of raw arrays.

    Attributes:
        hflip: Probability of a horizontal flip (with the ears swapped).
        brightness: Brightness factor drawn from [1 - b, 1 + b].
        contrast: Contrast factor drawn from [1 - c, 1 + c].
        echo_gain_db: Echo gain drawn from [-g, +g] dB, same for both ears.

    """

    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    echo_gain_db: float = 0.0

    def draw(self, rng: np.random.Generator) -> Dict[str, float]:
        """Draw one set of parameters (shared by all frames of a triplet)."""
        return {'flip': bool(rng.random() < self.hflip),
                'brightness': float(rng.uniform(1 - self.brightness, 1 + self.brightness)),
                'contrast': float(rng.uniform(1 - self.contrast, 1 + self.contrast)),
                'gain': float(10 ** (rng.uniform(-self.echo_gain_db, self.echo_gain_db) / 20))}

    @staticmethod
    def image(rgb: np.ndarray, p: Dict[str, float]) -> np.ndarray:
        """Apply to an (H, W, 3) float image in [0, 1]."""
        x = rgb[:, ::-1] if p['flip'] else rgb
        x = x * p['brightness']
        mean = x.mean()
        return np.clip((x - mean) * p['contrast'] + mean, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def depth(depth: np.ndarray, p: Dict[str, float]) -> np.ndarray:
        """Apply to an (H, W) depth map."""
        return np.ascontiguousarray(depth[:, ::-1]) if p['flip'] else depth

    @staticmethod
    def echo(audio: np.ndarray, p: Dict[str, float]) -> np.ndarray:
        """Apply to (2, N) audio: swap the ears on a flip, scale both by the gain."""
        x = audio[::-1] if p['flip'] else audio
        return np.ascontiguousarray(x * np.float32(p['gain']), dtype=np.float32)
