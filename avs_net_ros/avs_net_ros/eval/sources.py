"""Frames to write into bags: a simulated trajectory, or a BatVision-layout dataset split.

Echoes are cut exactly as the datasets feed training (``datasets.features.echo_settings`` and
``cut_window``: the first window of each recording, with the layout's lead-in before the
direct path), and ``echo_info`` records those settings (every EchoFrame carries them), so a
model trained on the layout reads the bag's echoes as it read its training data.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Optional

from avs_net_ros.core.contract import EchoContract
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets import bv1, bv2
from avs_net_ros.datasets.common import depth_to_metres, sort_records
from avs_net_ros.datasets.features import cut_window, echo_settings
import numpy as np


@dataclass
class SourceFrame:
    """One frame to write: camera image, cut echo, ground truth (m, NaN invalid), intrinsics."""

    stamp_ns: int
    rgb: np.ndarray
    echo: np.ndarray
    ground_truth: np.ndarray
    k: Optional[np.ndarray] = None


def echo_info(settings: EchoContract, backend: str, chirp: Optional[Dict[str, Any]] = None
              ) -> Dict[str, Any]:
    """Return the echo settings (``messages.ECHO_INFO_KEYS``) of echoes cut with ``settings``."""
    f = settings.features
    lead_in = int(settings.lead_in_samples)
    return {'sample_rate': int(f.sample_rate), 'channels': int(f.channels),
            'window_samples': int(f.window_samples), 'lead_in_samples': lead_in,
            'speed_of_sound': float(settings.speed_of_sound),
            'max_range': float(settings.echo_max_depth), 'chirp': dict(chirp or {}),
            'alignment': {'method': 'recording start (dataset layout)',
                          'lead_in_samples': lead_in},
            'backend': backend}


def simulated_frames(num_frames: int, *, family: str = 'bv2_like', layout: str = 'bv2',
                     seed: int = 0, location: int = 0, width: int = 320, height: int = 240,
                     rate_hz: float = 5.0, max_depth: Optional[float] = None,
                     start_ns: int = 1_000_000_000, acoustics: Any = None
                     ) -> 'tuple[Dict[str, Any], Iterator[SourceFrame]]':
    """Return (echo info, frames) of a robot moving through one simulated scene.

    Uses the simulator's ``LocationSimulator`` (scene, trajectory, rendering, pyroomacoustics
    echoes, stereo-camera valid mask); frames are ``1 / rate_hz`` apart in stamp.
    """
    from avs_net_ros.datasets.simulate import acoustic_config, LocationSimulator
    from avs_net_ros.sim.families import get_family

    if num_frames <= 0 or rate_hz <= 0:
        raise AvsInputError('num_frames and rate_hz must be positive')
    fam = get_family(family)
    settings = echo_settings(layout, max_depth or fam.max_depth)
    acoustics = acoustics or acoustic_config(layout)
    sim = LocationSimulator(fam, layout, seed, 'test', location, num_frames, width, height,
                            acoustics=acoustics)
    info = echo_info(settings, f'simulated ({family}, seed {seed})', asdict(acoustics.chirp))
    k_matrix = sim.world.intrinsics(width, height).matrix()

    def frames() -> Iterator[SourceFrame]:
        for k, inst in sim.frames(range(num_frames)):
            gt = np.where(inst.valid, inst.depth, np.nan).astype(np.float32)
            yield SourceFrame(start_ns + int(round(k * 1e9 / rate_hz)), inst.rgb,
                              cut_window(inst.audio, settings), gt, k_matrix)

    return info, frames()


def batvision_frames(root: str, layout: str, split: str = 'test',
                     locations: Optional[List[str]] = None, max_depth: Optional[float] = None,
                     lead_in: Optional[int] = None) -> 'tuple[Dict[str, Any], int, Iterator]':
    """Return (echo info, frame count, frames) of a BatVision V1/V2 split, in time order.

    Stamps are the records' times; depth is the dataset's (mm -> m, invalid -> NaN).

    Raises:
        DatasetFormatError: the root does not follow the layout.

    """
    if layout == 'bv2':
        records = bv2.read_index(root, split, locations)
        load = bv2.load_instance
    elif layout == 'bv1':
        records = bv1.read_index(root, split)
        load = bv1.load_instance
    else:
        raise AvsInputError(f"layout must be 'bv1' or 'bv2', got {layout!r}")
    records = sort_records(records)
    if not records:
        raise AvsInputError(f'{root}: split {split!r} has no records')
    settings = echo_settings(layout, max_depth, lead_in=lead_in)
    info = echo_info(settings, f'BatVision {layout.upper()} {split}')
    last = [-1]

    def frames() -> Iterator[SourceFrame]:
        for rec in records:
            inst = load(rec)
            if int(inst['sample_rate']) != settings.features.sample_rate:
                raise AvsInputError(f'{rec.audio[0]}: sample rate {inst["sample_rate"]} Hz, '
                                    f'expected {settings.features.sample_rate}')
            gt = depth_to_metres(inst['depth_mm'], settings.echo_max_depth, beyond='invalid')
            gt[gt <= 0] = np.nan
            stamp = int(round(rec.time * 1e9))
            stamp = max(stamp, last[0] + 1)  # stamps must be unique for pairing
            last[0] = stamp
            yield SourceFrame(stamp, np.asarray(inst['rgb']), cut_window(inst['audio'],
                                                                         settings), gt)

    return info, len(records), frames()
