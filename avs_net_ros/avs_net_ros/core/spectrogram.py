"""BatVision echo features: STFT magnitude of the binaural echo, resized to the model's size.

Equal to ``torchaudio.transforms.Spectrogram(n_fft=512, win_length=64, hop_length=16,
power=1.0)`` (periodic Hann window zero-padded to n_fft, centred frames with reflect padding,
one-sided, no normalisation), followed by torchvision's ``Resize`` on tensors (bilinear,
antialiased). One implementation serves training, the nodes and evaluation.

Because the window has only ``win_length`` non-zero taps, each frame's magnitude is the
``n_fft``-point FFT of just those taps: the zero padding around them only rotates the phase.
So the work is one batched FFT over (echo, channel, frame), with no Python loop.
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.resize import resize_bilinear

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class StftConfig:
    """Short-time Fourier transform settings (BatVision's "cut" settings by default).

    Attributes:
        n_fft: FFT size; the spectrogram has n_fft // 2 + 1 frequency rows.
        win_length: Hann window length in samples, centred in the n_fft frame.
        hop_length: Step between frames in samples (16 at 44.1 kHz is 6 cm of range).
        power: Exponent applied to the magnitude (1 = magnitude, 2 = power).

    """

    n_fft: int = 512
    win_length: int = 64
    hop_length: int = 16
    power: float = 1.0

    def __post_init__(self) -> None:
        """Reject inconsistent settings."""
        if not 0 < self.win_length <= self.n_fft or self.hop_length <= 0:
            raise AvsInputError(
                f'STFT needs 0 < win_length <= n_fft and hop_length > 0, got n_fft='
                f'{self.n_fft}, win_length={self.win_length}, hop_length={self.hop_length}')
        if self.power <= 0:
            raise AvsInputError(f'STFT power must be positive, got {self.power}')

    def num_frames(self, num_samples: int) -> int:
        """Frames produced from ``num_samples`` samples (centred frames)."""
        return 1 + num_samples // self.hop_length


@dataclass(frozen=True)
class EchoFeatureConfig:
    """Everything that turns a raw binaural echo into the model's spectrogram input.

    Attributes:
        sample_rate: Sample rate the echo must have (Hz).
        window_samples: Samples kept from the start of the echo (the echo window for the
            model's maximum range), or None to keep all of them.
        stft: STFT settings.
        spec_size: (height, width) the spectrogram is resized to.
        channels: Number of microphones (2 = left, right).

    """

    sample_rate: int = 44100
    window_samples: Optional[int] = 7782
    stft: StftConfig = field(default_factory=StftConfig)
    spec_size: Tuple[int, int] = (256, 256)
    channels: int = 2


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft_magnitude(x: np.ndarray, config: StftConfig = StftConfig()) -> np.ndarray:
    """Return ``|STFT(x)| ** power`` over the last axis, shape (..., n_fft//2+1, frames).

    Computed in float64 and returned as float32, like torchaudio's output for float32 input.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    pad = config.n_fft // 2
    if n <= pad:
        raise AvsInputError(f'echo of {n} samples is too short for reflect padding of {pad} '
                            f'(n_fft {config.n_fft})')
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    xp = np.pad(x, widths, mode='reflect')
    offset = (config.n_fft - config.win_length) // 2
    frames = config.num_frames(n)
    taps = sliding_window_view(xp[..., offset:], config.win_length, axis=-1)
    taps = taps[..., :(frames - 1) * config.hop_length + 1:config.hop_length, :]
    # numpy's pocketfft in float64: as fast as scipy's for batches and several times faster
    # for a single echo (measured by benchmarks/bench_spectrogram.py), and exact to 1e-7.
    spec = np.abs(np.fft.rfft(taps * _periodic_hann(config.win_length), n=config.n_fft,
                              axis=-1))
    if config.power != 1.0:
        spec = spec ** config.power
    return np.swapaxes(spec, -1, -2).astype(np.float32)


def validate_echo(echo: np.ndarray, config: EchoFeatureConfig,
                  sample_rate: Optional[int] = None) -> np.ndarray:
    """Check a raw echo (channels, samples) or batch (B, channels, samples); return float32.

    Raises:
        AvsInputError: naming the problem (dtype, shape, channel count, sample rate, length,
            NaN/inf samples, a silent channel).

    """
    x = np.asarray(echo)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise AvsInputError(f'echo must be a real-valued array, got dtype {x.dtype}')
    if x.ndim not in (2, 3):
        raise AvsInputError(f'echo must be (channels, samples) or (batch, channels, samples), '
                            f'got shape {x.shape}')
    if x.shape[-2] != config.channels:
        raise AvsInputError(f'echo has {x.shape[-2]} channels, the model needs '
                            f'{config.channels} (left, right)')
    if sample_rate is not None and int(sample_rate) != config.sample_rate:
        raise AvsInputError(f'echo sample rate is {sample_rate} Hz, the model needs '
                            f'{config.sample_rate} Hz')
    need = config.window_samples or (config.stft.n_fft // 2 + 1)
    if x.shape[-1] < need:
        raise AvsInputError(f'echo has {x.shape[-1]} samples, the model needs at least {need}')
    if np.issubdtype(x.dtype, np.integer):
        raise AvsInputError(f'echo must be float samples in [-1, 1], got integer dtype '
                            f'{x.dtype}; divide by the full-scale value first')
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise AvsInputError('echo contains NaN or infinite samples')
    silent = ~np.any(x != 0, axis=-1)
    if np.any(silent):
        raise AvsInputError('echo has an all-zero channel (microphone not recording?)')
    return x


def echo_spectrogram(echo: np.ndarray, config: EchoFeatureConfig = EchoFeatureConfig(),
                     sample_rate: Optional[int] = None) -> np.ndarray:
    """Turn raw echoes (…, channels, samples) into model input (…, channels, H, W) float32."""
    x = validate_echo(echo, config, sample_rate)
    if config.window_samples is not None:
        x = x[..., :config.window_samples]
    spec = stft_magnitude(x, config.stft)
    return resize_bilinear(spec, config.spec_size, antialias=True).astype(np.float32)
