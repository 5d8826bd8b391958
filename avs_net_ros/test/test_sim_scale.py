"""Scale ambiguity: a scene scaled by k looks the same, but its depths and echoes scale."""

from dataclasses import replace

from avs_net_ros.core.acoustics import make_chirp
from avs_net_ros.sim.acoustics import AcousticConfig
from avs_net_ros.sim.families import BV2_LIKE, sample_pose, sample_scene
from avs_net_ros.sim.rig import CameraPose, Intrinsics
from avs_net_ros.sim.scene import Box, Door, Lamp, shoebox
from avs_net_ros.sim.world import SimulatedWorld
import numpy as np
from scipy import signal


def _scene(ambiguous: bool):
    return shoebox(7.0, 5.0, 3.0, 'red_brick', floor_material='parquet',
                   ceiling_material='ceiling_tiles', boxes=(Box(4.5, 1.0, 5.5, 2.0, 1.1),),
                   doors=(Door(1, 1.5),), lamps=(Lamp(3.5, 2.5), Lamp(1.5, 1.0)),
                   scale_ambiguity=ambiguous)


POSE = CameraPose(1.2, 2.4, 1.1, 0.15, -0.05)
INTR = Intrinsics.from_fov(160, 120, 90.0)


def test_scaled_scene_renders_the_same_image_and_doubled_depth():
    scene = _scene(True)
    rgb1, depth1, _ = SimulatedWorld(scene).render(POSE, intrinsics=INTR)
    world2 = SimulatedWorld(scene.scaled(2.0))
    rgb2, depth2, _ = world2.render(POSE.scaled(2.0), intrinsics=INTR)
    diff = np.abs(rgb1.astype(int) - rgb2.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01
    np.testing.assert_allclose(depth2, 2.0 * depth1, rtol=1e-5)
    assert depth1.min() > 0.3 and np.isfinite(depth1).all()


def test_metric_mode_keeps_size_cues():
    scene = _scene(False)
    rgb1, _, _ = SimulatedWorld(scene).render(POSE, intrinsics=INTR)
    rgb2, _, _ = SimulatedWorld(scene.scaled(2.0)).render(POSE.scaled(2.0), intrinsics=INTR)
    # Metric texture periods and 1/d^2 lamps: the bigger room looks different.
    assert np.abs(rgb1.astype(int) - rgb2.astype(int)).mean() > 5


def test_scaled_scene_echoes_arrive_later():
    config = AcousticConfig(max_order=3)
    chirp = make_chirp(config.chirp).astype(np.float64)
    firsts = []
    for k in (1.0, 2.0):
        world = SimulatedWorld(_scene(True).scaled(k), acoustics=config)
        rec = world.record(POSE.scaled(k))
        mf = np.abs(signal.fftconvolve(rec, chirp[::-1][None], mode='valid', axes=1)).sum(0)
        start = config.emit_sample + 40
        first = start + np.flatnonzero(mf[start:] > 0.25 * mf[start:].max())[0]
        firsts.append(first - config.emit_sample)
    # The nearest surface (the floor, 1.1 m below) is twice as far: the echo takes ~2x longer
    # (the ears and speaker are not scaled, hence the tolerance of one STFT hop).
    assert abs(firsts[1] - 2 * firsts[0]) <= 16
    assert firsts[1] > firsts[0] + 200


def test_family_images_do_not_depend_on_absolute_size():
    family = replace(BV2_LIKE, boxes=(1, 1), lamps=(2, 2), doors=(1, 1))
    scene = sample_scene(family, np.random.default_rng(3))
    pose = sample_pose(family, scene, np.random.default_rng(4))
    k = 2.7
    a, _, _ = SimulatedWorld(scene).render(pose, intrinsics=INTR)
    b, _, _ = SimulatedWorld(scene.scaled(k)).render(pose.scaled(k), intrinsics=INTR)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
