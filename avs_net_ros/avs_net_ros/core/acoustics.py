"""Acoustics of the chirp sonar: the emitted chirp, sound speed, echo windows and alignment.

Defaults and where they come from:

- Chirp: a 3 ms linear sweep from 20 Hz to 20 kHz at 44.1 kHz. BatVision does not publish its
  chirp; this is the ``3ms_sweep`` of VisualEchoes / SoundSpaces that Pano-Echo and SAGENet use
  for BatVision-style echoes.
- Speed of sound: c = 331.3 + 0.606 T m/s (dry air, T in degrees Celsius).
- Echo window: BatVision's loader cuts ``int((2 * max_depth / 340) * sr)`` samples, i.e. it
  assumes c = 340 m/s; that stays the default so models trained on BatVision see the same
  window, and a measured speed of sound can be passed instead.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from avs_net_ros.core.errors import AvsInputError, NoDirectPathError

import numpy as np


#: Speed of sound BatVision assumes when it cuts the echo window (m/s).
BATVISION_SPEED_OF_SOUND = 340.0


@dataclass(frozen=True)
class ChirpConfig:
    """Settings of the emitted chirp.

    Attributes:
        sample_rate: Samples per second of the audio device (Hz).
        f_start: Sweep start frequency (Hz).
        f_end: Sweep end frequency (Hz); must stay below sample_rate / 2.
        duration: Sweep length (s).
        method: Sweep law, 'linear' or 'logarithmic' (frequency vs time).
        fade: Fraction of the duration tapered at each end with a half Hann window, so the
            speaker is not driven with a step (clicks spread energy outside the sweep).
        amplitude: Peak amplitude in full-scale units (1.0 = 0 dBFS).

    """

    sample_rate: int = 44100
    f_start: float = 20.0
    f_end: float = 20000.0
    duration: float = 0.003
    method: str = 'linear'
    fade: float = 0.1
    amplitude: float = 0.5

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a chirp."""
        if self.sample_rate <= 0:
            raise AvsInputError(f'chirp sample_rate must be positive, got {self.sample_rate}')
        if not 0 < self.f_start < self.f_end < self.sample_rate / 2:
            raise AvsInputError(
                f'chirp needs 0 < f_start < f_end < sample_rate/2, got f_start={self.f_start}, '
                f'f_end={self.f_end}, sample_rate={self.sample_rate}')
        if self.method not in ('linear', 'logarithmic'):
            raise AvsInputError(f"chirp method must be 'linear' or 'logarithmic', "
                                f'got {self.method!r}')
        if self.duration * self.sample_rate < 8:
            raise AvsInputError(f'chirp of {self.duration} s is shorter than 8 samples')
        if not 0 <= self.fade <= 0.5:
            raise AvsInputError(f'chirp fade must be in [0, 0.5], got {self.fade}')
        if not 0 < self.amplitude <= 1:
            raise AvsInputError(f'chirp amplitude must be in (0, 1], got {self.amplitude}')

    @property
    def num_samples(self) -> int:
        """Length of the chirp in samples."""
        return int(round(self.duration * self.sample_rate))


def make_chirp(config: ChirpConfig = ChirpConfig()) -> np.ndarray:
    """Return the chirp as a 1-D float32 array of ``config.num_samples`` samples."""
    from scipy import signal  # lazy: scipy.signal costs seconds at node start-up

    n = config.num_samples
    t = np.arange(n) / config.sample_rate
    x = signal.chirp(t, f0=config.f_start, t1=config.duration, f1=config.f_end,
                     method=config.method, phi=-90.0)
    n_fade = int(round(config.fade * n))
    if n_fade > 0:
        ramp = np.hanning(2 * n_fade + 1)[:n_fade]
        x[:n_fade] *= ramp
        x[n - n_fade:] *= ramp[::-1]
    return (config.amplitude * x).astype(np.float32)


def speed_of_sound(temperature_c: float = 20.0) -> float:
    """Speed of sound in dry air (m/s) at ``temperature_c`` degrees Celsius."""
    return 331.3 + 0.606 * float(temperature_c)


def echo_window_samples(max_depth: float, sample_rate: int,
                        speed_of_sound_mps: float = BATVISION_SPEED_OF_SOUND) -> int:
    """Return the samples covering the round trip to ``max_depth`` metres (BatVision's formula)."""
    if max_depth <= 0 or sample_rate <= 0 or speed_of_sound_mps <= 0:
        raise AvsInputError(
            f'echo window needs positive max_depth, sample_rate and speed of sound, got '
            f'{max_depth}, {sample_rate}, {speed_of_sound_mps}')
    return int((2 * max_depth / speed_of_sound_mps) * sample_rate)


def max_chirp_rate(max_range: float, speed_of_sound_mps: float = 343.4,
                   reverb_guard: float = 0.0) -> float:
    """Highest chirp rate (Hz) whose echoes from ``max_range`` do not overlap the next chirp.

    ``reverb_guard`` (s) is extra silence for the room's reverberation to decay.
    """
    return 1.0 / (2.0 * max_range / speed_of_sound_mps + reverb_guard)


@dataclass(frozen=True)
class DirectPath:
    """Where the emitted chirp was found in a recording.

    Attributes:
        onset: Sample index at which the chirp starts in the recording (all channels
            combined): the device latency plus the speaker-to-microphone flight time.
        channel_onsets: The same, per channel.
        peak_ratio: Matched-filter peak over the median of the filter output; the confidence.

    """

    onset: int
    channel_onsets: Tuple[int, ...]
    peak_ratio: float


def _as_recording(recording: np.ndarray) -> np.ndarray:
    x = np.asarray(recording)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise AvsInputError(f'recording must be (channels, samples), got shape {x.shape}')
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise AvsInputError(f'recording must be real numbers, got dtype {x.dtype}')
    if not np.all(np.isfinite(x)):
        raise AvsInputError('recording contains NaN or infinite samples')
    return x.astype(np.float64, copy=False)


def align_to_direct_path(recording: np.ndarray, chirp: np.ndarray, *,
                         search: Optional[Tuple[int, int]] = None,
                         min_peak_ratio: float = 20.0) -> DirectPath:
    """Find the direct-path chirp in ``recording`` by matched filtering.

    The matched filter (cross-correlation with the emitted chirp) peaks where the chirp starts,
    whatever the sound card's latency, so echo times measured from that onset are independent
    of the device. ``search`` = (first, last) restricts the onsets considered.

    Raises:
        NoDirectPathError: the peak is not ``min_peak_ratio`` times above the median of the
            filter output (no chirp in the recording, or it is buried in noise).
        AvsInputError: the recording is not a finite (channels, samples) array or is shorter
            than the chirp.

    """
    x = _as_recording(recording)
    c = np.asarray(chirp, dtype=np.float64).ravel()
    if c.size == 0 or not np.any(c):
        raise AvsInputError('chirp template is empty or all zero')
    if x.shape[1] < c.size:
        raise AvsInputError(f'recording has {x.shape[1]} samples, shorter than the chirp '
                            f'({c.size})')
    from scipy import signal

    # 'valid' correlation: output index k = chirp starting at sample k.
    corr = signal.fftconvolve(x, c[::-1][None, :], mode='valid', axes=1)
    score = np.abs(corr)
    lo, hi = (0, score.shape[1]) if search is None else search
    lo, hi = max(0, int(lo)), min(score.shape[1], int(hi))
    if hi <= lo:
        raise AvsInputError(f'direct-path search range {search} is outside the recording')
    combined = score.max(axis=0)[lo:hi]
    noise = float(np.median(combined))
    peak = float(combined.max())
    ratio = peak / noise if noise > 0 else (np.inf if peak > 0 else 0.0)
    if not ratio >= min_peak_ratio:
        raise NoDirectPathError(
            f'no direct-path chirp found: matched-filter peak is {ratio:.1f}x its median, '
            f'below the {min_peak_ratio:.1f}x needed')
    onset = lo + int(np.argmax(combined))
    per_channel = tuple(lo + int(np.argmax(s[lo:hi])) for s in score)
    return DirectPath(onset=onset, channel_onsets=per_channel, peak_ratio=ratio)


def cut_echo(recording: np.ndarray, onset: int, window: int, lead_in: int = 0) -> np.ndarray:
    """Cut ``window`` samples starting ``lead_in`` samples before the direct-path ``onset``.

    ``lead_in`` reproduces where the direct path sits in the windows the model was trained on
    (BatVision V2 recordings carry the direct sound a few milliseconds after their start).
    """
    x = np.asarray(recording)
    start = int(onset) - int(lead_in)
    stop = start + int(window)
    if start < 0 or stop > x.shape[-1]:
        raise AvsInputError(
            f'echo window [{start}, {stop}) does not fit the recording of {x.shape[-1]} '
            f'samples (onset {onset}, lead-in {lead_in}, window {window})')
    return x[..., start:stop]
