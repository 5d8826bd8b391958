"""The simulated echo carries the room's absolute size, which the (scale-free) image lacks."""

from avs_net_ros.core.acoustics import make_chirp
from avs_net_ros.sim.acoustics import AcousticConfig
from avs_net_ros.sim.families import BV2_LIKE, sample_scene, sample_trajectory
from avs_net_ros.sim.world import SimulatedWorld
import numpy as np
from scipy import signal, stats


def test_first_echo_delay_tracks_median_depth_across_family_scenes():
    config = AcousticConfig(max_order=2, box_order=1)
    chirp = make_chirp(config.chirp).astype(np.float64)
    rng = np.random.default_rng(7)
    delays, depths = [], []
    for _ in range(16):
        scene = sample_scene(BV2_LIKE, rng)
        pose = sample_trajectory(BV2_LIKE, scene, 1, rng)[0]
        world = SimulatedWorld(scene, acoustics=config)
        _, depth, _ = world.render(pose, 40, 30)
        rec = world.record(pose, rng)
        mf = np.abs(signal.fftconvolve(rec, chirp[::-1][None], mode='valid', axes=1)).sum(0)
        start = config.emit_sample + 60
        first = start + np.flatnonzero(mf[start:] > 0.3 * mf[start:].max())[0]
        delays.append(first - config.emit_sample)
        depths.append(float(np.median(depth)))
    rho = stats.spearmanr(delays, depths).statistic
    assert rho > 0.6, (rho, delays, depths)
