"""Chirp, sound speed, echo windows and direct-path alignment."""

from avs_net_ros.core.acoustics import (align_to_direct_path, ChirpConfig, cut_echo,
                                        echo_window_samples, make_chirp, max_chirp_rate,
                                        speed_of_sound)
from avs_net_ros.core.errors import AvsInputError, NoDirectPathError
import numpy as np
import pytest
from scipy import signal


def test_batvision_echo_windows():
    assert echo_window_samples(30.0, 44100) == 7782  # BV2 cut in the official loader
    assert echo_window_samples(12.0, 44100) == 3112
    assert echo_window_samples(12.0, 44100, speed_of_sound(20.0)) == 3081  # 3081.95 truncated


def test_speed_of_sound_and_chirp_rate():
    assert speed_of_sound(20.0) == pytest.approx(343.42)
    assert max_chirp_rate(12.0) == pytest.approx(14.3, abs=0.1)  # c / (2 x 12 m): 14 Hz
    assert max_chirp_rate(30.0) == pytest.approx(5.7, abs=0.1)
    assert max_chirp_rate(12.0, reverb_guard=0.1) < 6.0


@pytest.mark.parametrize('method', ['linear', 'logarithmic'])
def test_chirp_sweeps_its_band(method):
    cfg = ChirpConfig(duration=0.02, method=method, amplitude=0.8)
    x = make_chirp(cfg)
    assert x.dtype == np.float32 and x.shape == (882,)
    assert np.abs(x).max() <= 0.8 + 1e-6
    assert abs(x[0]) < 1e-3 and abs(x[-1]) < 0.05  # faded ends
    f, t, s = signal.spectrogram(x.astype(np.float64), fs=44100, nperseg=128, noverlap=96)
    peak = f[np.argmax(s, axis=0)]
    assert peak[-2] > peak[1] + 5000  # frequency rises over the sweep


@pytest.mark.parametrize('kwargs,message', [({'f_end': 30000.0}, 'f_end'),
                                            ({'method': 'cubic'}, 'method'),
                                            ({'duration': 1e-5}, 'shorter'),
                                            ({'amplitude': 2.0}, 'amplitude'),
                                            ({'fade': 0.9}, 'fade')])
def test_bad_chirp_settings_are_rejected(kwargs, message):
    with pytest.raises(AvsInputError, match=message):
        ChirpConfig(**kwargs)


@pytest.mark.parametrize('onset', [0, 177, 1029, 4000])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matched_filter_finds_planted_chirp_under_noise(onset, seed):
    rng = np.random.default_rng(seed)
    chirp = make_chirp()
    rec = rng.standard_normal((2, 9000)) * 0.05  # -32 dB noise vs the 0.5 peak chirp
    rec[0, onset:onset + chirp.size] += chirp
    rec[1, onset + 3:onset + 3 + chirp.size] += 0.7 * chirp  # farther ear
    later = onset + 1500  # a wall echo, weaker than the direct path
    rec[:, later:later + chirp.size] += 0.2 * chirp
    found = align_to_direct_path(rec, chirp)
    assert abs(found.onset - onset) <= 1
    assert abs(found.channel_onsets[1] - (onset + 3)) <= 1
    assert found.peak_ratio > 20


def test_no_chirp_is_reported_not_guessed():
    rng = np.random.default_rng(5)
    with pytest.raises(NoDirectPathError, match='no direct-path chirp'):
        align_to_direct_path(rng.standard_normal((2, 9000)), make_chirp())
    with pytest.raises(NoDirectPathError):
        align_to_direct_path(np.zeros((2, 9000)), make_chirp())


def test_alignment_makes_echo_timing_independent_of_latency():
    chirp = make_chirp()
    rng = np.random.default_rng(3)
    room = np.zeros((2, 4000))
    room[:, :chirp.size] += chirp
    room[:, 700:700 + chirp.size] += 0.3 * chirp  # echo 700 samples after the direct path
    cuts = []
    for latency in (0, 256, 1029, 2562):
        rec = rng.standard_normal((2, 8000)) * 1e-3
        rec[:, latency:latency + 4000] += room
        found = align_to_direct_path(rec, chirp)
        cuts.append(cut_echo(rec, found.onset, window=3112, lead_in=0))
    for c in cuts[1:]:
        np.testing.assert_allclose(c, cuts[0], atol=1e-2)


def test_bad_recordings_get_clear_errors():
    chirp = make_chirp()
    with pytest.raises(AvsInputError, match='NaN'):
        align_to_direct_path(np.full((2, 1000), np.nan), chirp)
    with pytest.raises(AvsInputError, match='shorter than the chirp'):
        align_to_direct_path(np.ones((2, 10)), chirp)
    with pytest.raises(AvsInputError, match='does not fit'):
        cut_echo(np.ones((2, 1000)), onset=100, window=3112)
