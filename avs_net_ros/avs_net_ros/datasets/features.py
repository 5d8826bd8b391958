"""Turning raw BatVision arrays into model inputs, shared by training and offline evaluation.

:func:`echo_settings` is the one place that decides a dataset's echo features (sample rate, echo
window for the maximum depth, STFT, spectrogram size, lead-in). It returns the core's
``EchoContract``, the type the ONNX contract stores, so the exporter writes exactly what the
data was built with.

Depth is resized with nearest-neighbour at pixel centres (torch's 'nearest-exact'): bilinear, as
in the official loader, would blend the invalid zeros into valid pixels at hole edges and create
depths that were never measured.
"""

from typing import Optional, Tuple

from avs_net_ros.core.acoustics import (BATVISION_SPEED_OF_SOUND, echo_window_samples,
                                        speed_of_sound)
from avs_net_ros.core.contract import EchoContract
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.spectrogram import echo_spectrogram, EchoFeatureConfig, StftConfig
from avs_net_ros.datasets.bv1 import BV1_MAX_DEPTH, BV1_SAMPLES
from avs_net_ros.datasets.bv2 import BV2_MAX_DEPTH, BV2_SAMPLE_RATE
from avs_net_ros.sim.rig import RigGeometry

import numpy as np

#: Sample at which simulated recordings emit the chirp: BV2-like ones put the direct sound near
#: sample ~200 (the real BV2 sample rises from ~176), BV1-like ones after ~970 near-silent
#: samples, as the real BV1 clips.
EMIT_SAMPLE = {'bv2': 192, 'bv1': 960}
#: Default lead-in (samples before the direct-path onset) per layout: where the simulated
#: recordings' chirp onset sits (emission plus the default rig's speaker-to-ear flight, 16
#: samples), i.e. 208 for BV2 and 976 for BV1.
DEFAULT_LEAD_IN = {k: v + int(round(RigGeometry().direct_path_samples(
    BV2_SAMPLE_RATE, speed_of_sound(20.0)))) for k, v in EMIT_SAMPLE.items()}


def echo_settings(layout: str, max_depth: Optional[float] = None,
                  spec_size: Tuple[int, int] = (256, 256), lead_in: Optional[int] = None,
                  sample_rate: int = BV2_SAMPLE_RATE) -> EchoContract:
    """Return the echo settings a BV1 or BV2 dataset uses.

    BV2 (official): the first ``int(2 * max_depth / 340 * sr)`` samples (7782 for 30 m).
    BV1: the official loader does not cut; its clips are ~4410 samples with ~980 samples of
    lead-in, so the window is the lead-in plus the round trip to ``max_depth`` (4088 samples at
    12 m), which covers every echo up to 12 m and keeps the shape fixed.
    """
    if layout not in ('bv1', 'bv2'):
        raise AvsInputError(f"unknown dataset layout {layout!r}; expected 'bv1' or 'bv2'")
    depth = max_depth or (BV2_MAX_DEPTH if layout == 'bv2' else BV1_MAX_DEPTH)
    lead = DEFAULT_LEAD_IN[layout] if lead_in is None else int(lead_in)
    window = echo_window_samples(depth, sample_rate)
    if layout == 'bv1':
        window = min(window + lead, BV1_SAMPLES)
    feats = EchoFeatureConfig(sample_rate=sample_rate, window_samples=window,
                              stft=StftConfig(), spec_size=tuple(spec_size))
    return EchoContract(features=feats, echo_max_depth=float(depth),
                        speed_of_sound=BATVISION_SPEED_OF_SOUND, lead_in_samples=lead)


def cut_window(audio: np.ndarray, settings: EchoContract) -> np.ndarray:
    """Return the first ``window_samples`` of (2, N) audio, zero-padded if it is shorter."""
    n = settings.features.window_samples
    x = np.asarray(audio, dtype=np.float32)
    if x.shape[-1] >= n:
        return np.ascontiguousarray(x[..., :n])
    pad = np.zeros(x.shape[:-1] + (n - x.shape[-1],), dtype=np.float32)
    return np.concatenate([x, pad], axis=-1)


def spectrogram(echo: np.ndarray, settings: EchoContract) -> np.ndarray:
    """Return the (2, H, W) echo spectrogram of a cut echo (the core's BatVision STFT)."""
    return echo_spectrogram(echo, settings.features, settings.features.sample_rate)


def resize_nearest(a: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize the last two axes to ``size`` by nearest neighbour at pixel centres."""
    h, w = a.shape[-2:]
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return a[..., rows[:, None], cols[None, :]]
