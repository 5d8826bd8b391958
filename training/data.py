"""Datasets selected by config: BV1/BV2 roots, real or simulated (``training.datasets``).

A dataset entry (``data.train``, ``data.val``, each of ``data.test``) is a dict::

    {root: path, layout: bv2 | bv1, split: train | val | test, depth_size: [H, W],
     spec_size: [H, W], max_depth: m, lead_in: samples, locations: [...], limit: N,
     cache: true, eval_max_depth: m}

``image_size`` comes from the model config. ``depth_size`` defaults to the image size for
training and must be the ground-truth resolution for evaluation. ``cache`` keeps decoded samples
in memory (small simulated sets: decoding and the STFT then run once, not every epoch).
``limit`` keeps the first N samples. ``max_depth`` sets the depth clip and the echo window;
a test set of another family keeps the model's window and sets its own evaluation range with
``eval_max_depth`` (the paper's masks: 12 m for BV1, 30 m for BV2).

Self-supervised training reads frame triplets: ``triplets: true``, ``triplet_interval``
(frames, default 20), ``triplet_cross_split``, and ``intrinsics`` (pixel intrinsics of the
stored images, for roots without a camera file: ``avs_net_ros.datasets.camera``).
"""

from typing import Any, Dict, Optional, Tuple

from avs_net_ros.core.contract import EchoContract

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from training.config import TrainConfig

_KEYS = ('image', 'depth', 'valid', 'echo_spec', 'index')
#: Kept too when the dataset gives them (frame triplets).
_TRIPLET_KEYS = ('image_prev', 'image_next', 'intrinsics')


class CachedDataset(Dataset):
    """Decode every sample of ``base`` once and serve the tensors from memory."""

    def __init__(self, base: Dataset, desc: str = 'cache') -> None:
        self.settings = getattr(base, 'settings', None)
        self.max_depth = getattr(base, 'max_depth', None)
        self.samples = [_keep(base[i]) for i in tqdm(range(len(base)), desc=desc, leave=False)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return self.samples[i]


def _keep(sample: Dict[str, Any]) -> Dict[str, Any]:
    return {k: sample[k] for k in _KEYS + _TRIPLET_KEYS if k in sample}


class _Subset(Dataset):
    def __init__(self, base: Dataset, n: int) -> None:
        self.base, self.n = base, min(n, len(base))
        self.settings = getattr(base, 'settings', None)
        self.max_depth = getattr(base, 'max_depth', None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.base[i]


def build_dataset(entry: Dict[str, Any], image_size: Tuple[int, int],
                  desc: str = 'data') -> Dataset:
    """Build one dataset from a config entry (see the module docstring).

    Raises:
        ValueError: a required key is missing or a key is unknown.

    """
    from training.datasets import BatvisionDataset

    entry = dict(entry)
    known = {'root', 'layout', 'split', 'depth_size', 'spec_size', 'max_depth', 'lead_in',
             'locations', 'limit', 'cache', 'kind', 'eval_max_depth', 'triplets',
             'triplet_interval', 'triplet_cross_split', 'intrinsics'}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f'unknown dataset key(s) {unknown} in {desc} (known: {sorted(known)})')
    for key in ('root', 'layout', 'split'):
        if key not in entry:
            raise ValueError(f'dataset entry {desc} needs {key!r}')
    entry.pop('kind', None)
    entry.pop('eval_max_depth', None)
    cache = entry.pop('cache', False)
    limit = entry.pop('limit', None)
    depth_size = tuple(entry.pop('depth_size', image_size))
    spec_size = tuple(entry.pop('spec_size', (256, 256)))
    ds: Dataset = BatvisionDataset(entry.pop('root'), entry.pop('layout'), entry.pop('split'),
                                   image_size=tuple(image_size), depth_size=depth_size,
                                   spec_size=spec_size, **entry)
    if limit:
        ds = _Subset(ds, int(limit))
    if cache:
        ds = CachedDataset(ds, desc)
    return ds


def build_datasets(config: TrainConfig) -> Tuple[Dataset, Optional[Dataset]]:
    """Return (train, val or None) for a training config."""
    size = tuple(config.model.image_size)
    train = build_dataset(config.data.train, size, 'data.train')
    val = build_dataset(config.data.val, size, 'data.val') if config.data.val else None
    return train, val


def build_test_sets(config: TrainConfig) -> Dict[str, Tuple[Dataset, float]]:
    """Return {name: (dataset, evaluation max depth)} for ``data.test``."""
    size = tuple(config.model.image_size)
    out = {}
    for name, entry in config.data.test.items():
        ds = build_dataset(entry, size, f'data.test.{name}')
        out[name] = (ds, float(entry.get('eval_max_depth') or ds.max_depth))
    return out


def echo_contract(config: TrainConfig) -> EchoContract:
    """Return the echo settings the training set was built with, for the ONNX contract."""
    from training.datasets import echo_settings

    t = config.data.train
    return echo_settings(t['layout'], t.get('max_depth'),
                         tuple(t.get('spec_size', (256, 256))), t.get('lead_in'))


def collate_eval(batch: list) -> Dict[str, torch.Tensor]:
    """Collate evaluation samples (tensors only)."""
    return {k: torch.stack([b[k] for b in batch]) for k in ('image', 'depth', 'valid',
                                                            'echo_spec')}
