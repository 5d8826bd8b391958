"""Torch datasets over the BatVision layouts (real BV1/BV2 and simulated ones)."""

from training.datasets.augment import augment_batch
from training.datasets.batvision import BatvisionDataset, echo_settings

__all__ = ['BatvisionDataset', 'augment_batch', 'echo_settings']
