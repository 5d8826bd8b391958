"""Torch ``Dataset`` over BV1/BV2 roots (real or simulated), as the official loaders prepare them.

Per sample: depth mm -> m, clipped to ``max_depth`` (invalid -> 0), resized by nearest neighbour
(so invalid zeros never blend into valid pixels, see ``avs_net_ros.datasets.features``); audio
cut to the echo window and turned into the core's BatVision spectrogram; RGB resized with the
core's antialiased bilinear resize (torchvision's ``Resize`` on tensors).

Sample dict: 'image' float32 (3, H, W) in [0, 1]; 'depth' float32 (1, Hd, Wd) metres, 0 where
invalid; 'valid' bool (1, Hd, Wd); 'echo_spec' float32 (2, Hs, Ws); 'echo' float32 (2, N) (the
cut window); 'index' int; 'location' str. With ``triplets=True`` also 'image_prev' and
'image_next' (frames ``triplet_interval`` before and after), 'intrinsics' float32 (4,) (the
location's camera, normalised: ``avs_net_ros.datasets.camera``), and the dataset holds only
frames that have both neighbours. Augmentation is the trainer's, per batch
(``training.datasets.augment``).
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

from avs_net_ros.core.contract import EchoContract
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.resize import resize_bilinear
from avs_net_ros.datasets import bv1, bv2
from avs_net_ros.datasets.camera import IntrinsicsLookup
from avs_net_ros.datasets.common import depth_to_metres, Record, SPLITS
from avs_net_ros.datasets.features import (cut_window, echo_settings, resize_nearest,
                                           spectrogram)
from avs_net_ros.datasets.triplets import triplet_index
import numpy as np
import torch
from torch.utils.data import Dataset


__all__ = ['BatvisionDataset', 'echo_settings']

_LAYOUTS = {'bv1': bv1, 'bv2': bv2}


class BatvisionDataset(Dataset):
    """One split of a BV1 or BV2 root."""

    def __init__(self, root: str, layout: str, split: str,
                 image_size: Tuple[int, int] = (256, 256),
                 depth_size: Tuple[int, int] = (256, 256),
                 spec_size: Tuple[int, int] = (256, 256), max_depth: Optional[float] = None,
                 lead_in: Optional[int] = None, locations: Optional[Sequence[str]] = None,
                 blacklist: Sequence[str] = (),
                 triplets: bool = False, triplet_interval: int = 20,
                 triplet_cross_split: bool = False, beyond_max: str = 'clip',
                 intrinsics: Optional[Mapping[str, float]] = None) -> None:
        """Index ``split`` of the ``layout`` ('bv1' or 'bv2') dataset at ``root``.

        ``intrinsics`` (pixels of the stored images: width, height, fx, fy, cx, cy) replaces
        the camera files of the root for triplets.
        """
        if layout not in _LAYOUTS:
            raise AvsInputError(f"unknown dataset layout {layout!r}; expected 'bv1' or 'bv2'")
        self.layout = layout
        self.settings: EchoContract = echo_settings(layout, max_depth, spec_size, lead_in)
        self.max_depth = self.settings.echo_max_depth
        self.image_size = tuple(image_size)
        self.depth_size = tuple(depth_size)
        self.beyond_max = beyond_max
        if layout == 'bv2':
            self.records = bv2.read_index(root, split, locations, blacklist)
        else:
            self.records = bv1.read_index(root, split)
        self.triplets = None
        if triplets:
            pool = []
            if triplet_cross_split:
                for other in SPLITS:
                    if other != split:
                        pool += (bv2.read_index(root, other, locations, blacklist)
                                 if layout == 'bv2' else bv1.read_index(root, other))
            self.triplets = triplet_index(self.records, triplet_interval, pool,
                                          triplet_cross_split)
            self.intrinsics = IntrinsicsLookup(root, intrinsics)

    @property
    def io(self):
        """The layout's raw I/O module (looked up, so the dataset pickles for spawn workers)."""
        return _LAYOUTS[self.layout]

    def __len__(self) -> int:
        """Return the number of samples (frames with neighbours when triplets are on)."""
        return len(self.triplets) if self.triplets is not None else len(self.records)

    def _image(self, record: Record) -> torch.Tensor:
        rgb = bv2.read_image(record.camera).astype(np.float32) / 255.0
        chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        img = resize_bilinear(chw, self.image_size, antialias=True)
        return torch.from_numpy(np.clip(img, 0, 1).astype(np.float32))

    def load(self, record: Record) -> Dict[str, object]:
        """Return the sample dict of ``record``."""
        raw = self.io.load_instance(record, image=False)
        if raw['sample_rate'] != self.settings.features.sample_rate:
            raise AvsInputError(f'{record.audio[0]}: sample rate {raw["sample_rate"]} Hz, '
                                f'expected {self.settings.features.sample_rate}')
        depth = depth_to_metres(raw['depth_mm'], self.max_depth, self.beyond_max)
        echo = cut_window(raw['audio'], self.settings)
        depth = resize_nearest(depth, self.depth_size)
        if not record.camera:
            raise AvsInputError(f'record {record.location}/{record.index} has no image path')
        return {
            'image': self._image(record),
            'depth': torch.from_numpy(np.ascontiguousarray(depth)[None]),
            'valid': torch.from_numpy(np.ascontiguousarray(depth > 0)[None]),
            'echo_spec': torch.from_numpy(spectrogram(echo, self.settings)),
            'echo': torch.from_numpy(echo),
            'index': int(record.index),
            'location': record.location,
        }

    def __getitem__(self, i: int) -> Dict[str, object]:
        """Return sample ``i`` (see the module docstring for the keys)."""
        if self.triplets is None:
            return self.load(self.records[i])
        pos, prev, nxt = self.triplets[i]
        sample = self.load(self.records[pos])
        sample['image_prev'] = self._image(prev)
        sample['image_next'] = self._image(nxt)
        intr = self.intrinsics(self.records[pos].location)
        sample['intrinsics'] = torch.tensor(intr, dtype=torch.float32)
        return sample
