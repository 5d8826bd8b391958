"""Physics of the simulated echoes: wall echo delays and the binaural sign, from recordings."""

from avs_net_ros.core.acoustics import align_to_direct_path, make_chirp
from avs_net_ros.sim.acoustics import AcousticConfig, first_echo_delays
from avs_net_ros.sim.rig import CameraPose
from avs_net_ros.sim.scene import shoebox
from avs_net_ros.sim.world import SimulatedWorld
import numpy as np
import pytest
from scipy import signal

HOP = 16  # one BatVision STFT hop: 6 cm of range at 44.1 kHz


def _matched(rec, config):
    chirp = make_chirp(config.chirp).astype(np.float64)
    return np.abs(signal.fftconvolve(rec.astype(np.float64), chirp[::-1][None], mode='valid',
                                     axes=1))


def _first_echo(mf_channel, start, threshold):
    """Return the peak of the first arrival after ``start`` that rises above ``threshold``."""
    seg = mf_channel[start:]
    above = np.flatnonzero(seg > threshold)
    assert above.size, 'no echo found'
    i = above[0]
    # The matched-filter peak of that arrival lies within a few samples of the crossing.
    return start + i + int(np.argmax(seg[i:i + 24]))


@pytest.mark.parametrize('distance,temperature', [(1.5, 20.0), (3.0, 20.0), (6.0, 0.0)])
def test_front_wall_echo_arrives_at_two_d_over_c(distance, temperature):
    config = AcousticConfig(temperature_c=temperature, max_order=3)
    # A big hall: the wall in front is the nearest surface by far.
    scene = shoebox(40.0, 40.0, 24.0, 'concrete', floor_material='concrete',
                    ceiling_material='concrete')
    pose = CameraPose(distance, 20.0, 12.0, np.pi)  # looking at the wall x = 0
    world = SimulatedWorld(scene, acoustics=config)
    rec = world.record(pose, rng=np.random.default_rng(0))
    assert rec.shape == (2, config.num_samples) and rec.dtype == np.float32
    direct = align_to_direct_path(rec, make_chirp(config.chirp))
    flight = np.hypot(0.09, np.hypot(0.08, 0.02)) / config.speed_of_sound * 44100
    assert abs(direct.onset - (config.emit_sample + flight)) <= 2
    mf = _matched(rec, config)
    expected = 2 * distance / config.speed_of_sound * config.sample_rate
    guard = direct.onset + 60  # past the direct chirp
    for ch in range(2):
        peak = _first_echo(mf[ch], guard, 0.2 * mf[ch, guard:].max())
        measured = peak - config.emit_sample
        assert abs(measured - expected) <= HOP, (ch, measured, expected)
        geometric = first_echo_delays(scene, pose, world.rig, config)[ch]
        assert abs(measured - geometric) <= 3


@pytest.mark.parametrize('wall_side', ['left', 'right'])
def test_binaural_delay_sign_follows_the_wall_side(wall_side):
    config = AcousticConfig(max_order=2)
    scene = shoebox(40.0, 40.0, 24.0, 'concrete', floor_material='concrete',
                    ceiling_material='concrete')
    # Looking along +x, the camera's left is +y: a wall 2 m to the left is y = 40.
    y = 38.0 if wall_side == 'left' else 2.0
    pose = CameraPose(20.0, y, 12.0, 0.0)
    rec = SimulatedWorld(scene, acoustics=config).record(pose)
    mf = _matched(rec, config)
    guard = config.emit_sample + 200
    left = _first_echo(mf[0], guard, 0.3 * mf[0, guard:].max())
    right = _first_echo(mf[1], guard, 0.3 * mf[1, guard:].max())
    # Ears 18 cm apart, wall to one side: the near ear hears the echo ~2 x 9 cm earlier.
    lag = right - left
    expected = 2 * 0.09 / config.speed_of_sound * config.sample_rate
    if wall_side == 'left':
        assert lag == pytest.approx(expected, abs=4)
    else:
        assert -lag == pytest.approx(expected, abs=4)
