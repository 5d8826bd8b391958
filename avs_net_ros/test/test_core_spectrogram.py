"""The BatVision echo features equal torchaudio's Spectrogram and torchvision's Resize."""

import os

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.resize import resize_bilinear
from avs_net_ros.core.spectrogram import (echo_spectrogram, EchoFeatureConfig, stft_magnitude,
                                          StftConfig)
import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
import torchaudio
import torchvision.transforms as T

SAMPLE_WAV = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data',
                          'batvision_v2_sample', 'audio_47.wav')


def torchaudio_spec(x: np.ndarray) -> np.ndarray:
    tf = torchaudio.transforms.Spectrogram(n_fft=512, win_length=64, hop_length=16, power=1.0)
    return tf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def max_rel_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest error relative to the reference's peak magnitude."""
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize('n', [4410, 7782, 20000, 3112])
def test_stft_equals_torchaudio_on_random_batches(n):
    x = np.random.default_rng(n).standard_normal((3, 2, n)).astype(np.float32) * 0.2
    ref = torchaudio_spec(x)
    ours = stft_magnitude(x)
    assert ours.shape == ref.shape == (3, 2, 257, 1 + n // 16)
    assert max_rel_error(ours, ref) <= 1e-4
    strong = ref > 1e-3 * ref.max()
    assert np.max(np.abs(ours - ref)[strong] / ref[strong]) <= 1e-4


def load_sample() -> np.ndarray:
    if not os.path.isfile(SAMPLE_WAV):
        pytest.fail(f'the real BatVision V2 sample is missing: {SAMPLE_WAV}')
    audio, sr = soundfile.read(SAMPLE_WAV, dtype='float32', always_2d=True)
    assert sr == 44100 and audio.shape == (20000, 2)
    return np.ascontiguousarray(audio.T)


def test_stft_equals_torchaudio_on_real_batvision_audio():
    x = load_sample()
    for cut in (x, x[:, :7782]):  # full clip and the 30 m echo window
        ref = torchaudio_spec(cut)
        ours = stft_magnitude(cut)
        assert ours.shape == ref.shape
        assert max_rel_error(ours, ref) <= 1e-4


def test_power_two_is_squared_magnitude():
    x = np.random.default_rng(1).standard_normal((2, 1000)).astype(np.float32)
    mag = stft_magnitude(x)
    power = stft_magnitude(x, StftConfig(power=2.0))
    np.testing.assert_allclose(power, mag.astype(np.float64) ** 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('shape,size', [((2, 257, 487), (256, 256)),
                                        ((2, 257, 276), (256, 256)),
                                        ((3, 720, 1280), (256, 320)),
                                        ((2, 16, 20), (64, 48))])
def test_resize_matches_torchvision_and_interpolate(shape, size):
    a = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    t = torch.from_numpy(a)
    ref_tv = T.Resize(size, antialias=True)(t).numpy()
    np.testing.assert_allclose(resize_bilinear(a, size, antialias=True), ref_tv, atol=2e-5)
    ref_ac = F.interpolate(t[None], size, mode='bilinear', align_corners=True)[0].numpy()
    np.testing.assert_allclose(resize_bilinear(a, size, align_corners=True), ref_ac, atol=1e-3)
    ref_pl = F.interpolate(t[None], size, mode='bilinear', align_corners=False)[0].numpy()
    np.testing.assert_allclose(resize_bilinear(a, size), ref_pl, atol=2e-5)


def test_echo_spectrogram_is_cut_stft_then_resize():
    x = load_sample()
    cfg = EchoFeatureConfig()
    spec = echo_spectrogram(x, cfg, sample_rate=44100)
    assert spec.shape == (2, 256, 256) and spec.dtype == np.float32
    ref = T.Resize((256, 256), antialias=True)(torch.from_numpy(torchaudio_spec(x[:, :7782])))
    assert max_rel_error(spec, ref.numpy()) <= 1e-4
    batch = echo_spectrogram(np.stack([x, x[::-1]]), cfg)
    np.testing.assert_array_equal(batch[0], spec)
    np.testing.assert_array_equal(batch[1], spec[::-1])


@pytest.mark.parametrize('echo,rate,message', [
    (np.zeros((2, 8000), np.float32), 44100, 'all-zero channel'),
    (np.full((2, 8000), np.nan, np.float32), 44100, 'NaN'),
    (np.ones((3, 8000), np.float32), 44100, '3 channels'),
    (np.ones(8000, np.float32), 44100, 'shape'),
    (np.ones((2, 100), np.float32), 44100, '100 samples'),
    (np.ones((2, 8000), np.float32), 48000, '48000 Hz'),
    (np.ones((2, 8000), np.int32), 44100, 'integer'),
    (np.ones((2, 8000), np.complex64), 44100, 'real-valued'),
])
def test_bad_echoes_get_clear_errors(echo, rate, message):
    with pytest.raises(AvsInputError, match=message):
        echo_spectrogram(echo, EchoFeatureConfig(), sample_rate=rate)
