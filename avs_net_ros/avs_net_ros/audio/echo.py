"""Turn the recording around one chirp into an echo: checks, direct-path alignment, cutting.

Echo timing is measured from the direct path found by the matched filter
(``core.acoustics.align_to_direct_path``), not from the sample the chirp was written at, so
the published echo does not depend on the device's round-trip latency.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.core.acoustics import align_to_direct_path, cut_echo
from avs_net_ros.core.errors import AvsInputError

import numpy as np


class EchoFault(AvsInputError):
    """A recording gave no usable echo; ``kind`` says why (a health counter name)."""

    def __init__(self, kind: str, message: str) -> None:
        """Keep the fault kind next to the message."""
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class EchoCut:
    """An echo cut from one recording.

    Attributes:
        echo: (2, window) float32, row 0 left, gain applied.
        onset: Index of the direct path in the recording passed in.
        latency: Onset minus the index where the chirp was written (device round trip).
        peak_ratio: Matched-filter confidence.
        clipped: Fraction of recorded samples in the window at or above the clip level.

    """

    echo: np.ndarray
    onset: int
    latency: int
    peak_ratio: float
    clipped: float


def recording_span(settings: SonarSettings, latency: Optional[int] = None,
                   tolerance: int = 0) -> Tuple[int, int]:
    """Return (before, after): samples to record before and after the chirp's output sample.

    With ``latency`` unknown the direct path is searched up to ``max_latency`` after the
    chirp; once known, around ``latency +- tolerance`` (see ``search_range``).
    """
    before = settings.lead_in_samples
    reach = (settings.max_latency_samples if latency is None
             else latency + tolerance + _late_margin(settings))
    after = reach + max(settings.window - settings.lead_in_samples,
                        settings.chirp.num_samples) + 1
    return before, after


#: With a known latency the search still starts this far before it, so that the median of
#: the matched filter (the noise estimate of the peak ratio) is taken over enough samples.
NOISE_SPAN = 512


def _late_margin(settings: SonarSettings) -> int:
    return int(settings.chirp.num_samples)


def search_range(settings: SonarSettings, latency: Optional[int] = None,
                 tolerance: int = 0) -> Tuple[int, int]:
    """Return the onsets (first, last + 1) searched in a recording from ``recording_span``.

    With a known latency the search also runs one chirp length past ``latency + tolerance``:
    a direct path that arrives later than that (the device latency moved, as PulseAudio's
    does under load) is then found and refused by ``cut_recording``. A search ending at the
    tolerance took the side lobe at its edge instead and cut a misaligned echo.
    """
    before = settings.lead_in_samples
    if latency is None:
        return before, before + settings.max_latency_samples + 1
    return (max(0, before + latency - max(tolerance, NOISE_SPAN)),
            before + latency + tolerance + _late_margin(settings) + 1)


def cut_recording(recording: np.ndarray, chirp: np.ndarray, settings: SonarSettings,
                  latency: Optional[int] = None, tolerance: int = 32) -> EchoCut:
    """Align and cut the echo from ``recording`` (2, before + after), see ``recording_span``.

    The chirp was written at index ``before`` of ``recording``. Its direct path is searched up
    to ``max_latency`` after it, or, when the device ``latency`` is known, must lie within
    ``tolerance`` samples of it.

    Raises:
        EchoFault: kind 'nan' (non-finite samples), 'no_direct_path' (matched filter found no
            chirp), 'silent' (a channel is all zeros in the window).

    """
    x = np.asarray(recording, np.float32)
    before = settings.lead_in_samples
    search = search_range(settings, latency, tolerance)
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise EchoFault('nan', f'recording has {bad} NaN/infinite samples of {x.size}; '
                        f'no echo published for this chirp')
    try:
        path = align_to_direct_path(
            x, chirp, search=search, min_peak_ratio=settings.min_peak_ratio)
    except AvsInputError as e:
        raise EchoFault('no_direct_path', f'{e}; no echo published for this chirp') from e
    if latency is not None and abs(path.onset - before - latency) > tolerance:
        raise EchoFault('no_direct_path', f'strongest chirp {path.onset - before} samples after '
                        f'emission, expected at {latency} +- {tolerance}; no echo published '
                        f'for this chirp')
    raw = cut_echo(x, path.onset, settings.window, settings.lead_in_samples)
    if not np.all(np.any(raw != 0, axis=1)):
        silent = [name for name, ch in zip(('left', 'right'), raw) if not np.any(ch)]
        raise EchoFault('silent', f'{" and ".join(silent)} microphone channel is all zeros '
                        f'in the echo window; no echo published for this chirp')
    clipped = float(np.mean(np.abs(raw) >= settings.clip_level))
    echo = (raw * np.float32(settings.gain)).astype(np.float32)
    return EchoCut(echo=echo, onset=path.onset, latency=path.onset - before,
                   peak_ratio=float(path.peak_ratio), clipped=clipped)
