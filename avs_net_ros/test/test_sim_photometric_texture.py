"""Scenes dressed for photometric self-supervision: more texture, and only when asked for."""

from dataclasses import replace
import hashlib
import os

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets.generate import main as generate_main
from avs_net_ros.sim.families import (BV1_LIKE, BV2_LIKE, dress_for_photometry, sample_scene,
                                      sample_trajectory)
from avs_net_ros.sim.render import render
from avs_net_ros.sim.rig import CameraPose, Intrinsics
from avs_net_ros.sim.scene import shoebox
import numpy as np
import pytest
import yaml

#: sha256 (first 16 digits) of RGB + depth of the last of three wander poses, rendered at 96x64,
#: computed with the code before the dressing existed: the default rendering must not move
#: (the demo's models, Table 1 and Table 2 were made from it).
GOLDEN = {('bv2_like', 5): '503695d3d75acc1a', ('bv1_like', 7): '3a6bb5fd7033b2ac'}


def _gradient_energy(rgb: np.ndarray) -> float:
    """Mean squared horizontal + vertical difference of the grey image (0-1 scale)."""
    g = rgb.astype(np.float64).mean(axis=2) / 255.0
    return float((np.diff(g, axis=0) ** 2).mean() + (np.diff(g, axis=1) ** 2).mean())


@pytest.mark.parametrize('family, seed', [(BV2_LIKE, 5), (BV1_LIKE, 7)])
def test_default_families_render_as_before(family, seed):
    rng = np.random.default_rng(seed)
    scene = sample_scene(family, rng)
    poses = sample_trajectory(family, scene, 3, rng)
    out = render(scene, poses[-1], Intrinsics.from_fov(96, 64))
    digest = hashlib.sha256(out.rgb.tobytes() + out.depth.tobytes()).hexdigest()[:16]
    assert digest == GOLDEN[(family.name, seed)]
    assert scene.texture_contrast == 1.0 and scene.posters == ()
    assert 'photometric_texture' not in family.to_dict()


def test_dressing_raises_image_gradients_on_the_same_scenes():
    dressed_family = replace(BV1_LIKE, photometric_texture=1.0)
    plain, dressed = [], []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        scene = sample_scene(BV1_LIKE, rng)
        pose = sample_trajectory(BV1_LIKE, scene, 1, rng)[0]
        rich = dress_for_photometry(scene, dressed_family, np.random.default_rng(seed))
        intr = Intrinsics.from_fov(96, 64)
        a, b = render(scene, pose, intr), render(rich, pose, intr)
        np.testing.assert_array_equal(a.depth, b.depth)  # the same geometry
        plain.append(_gradient_energy(a.rgb))
        dressed.append(_gradient_energy(b.rgb))
    # Every view gains texture, and on average several times over.
    assert all(d > p for p, d in zip(plain, dressed)), (plain, dressed)
    assert np.mean(dressed) > 3 * np.mean(plain), (plain, dressed)


def test_contrast_alone_textures_a_plaster_wall_and_posters_paint_it():
    pose = CameraPose(1.0, 2.0, 1.5, 0.0)  # facing the wall x = 4, 3 m away
    intr = Intrinsics.from_fov(96, 64)
    scene = shoebox(4.0, 4.0, 3.0, 'white_plaster')
    plain = render(scene, pose, intr).rgb
    contrast = render(replace(scene, texture_contrast=3.0), pose, intr).rgb
    assert _gradient_energy(contrast) > 2 * _gradient_energy(plain)
    family = replace(BV2_LIKE, photometric_texture=1.0, poster_density=3.0,
                     texture_contrast=1.0)
    postered = dress_for_photometry(scene, family, np.random.default_rng(0))
    assert postered.posters and postered.texture_contrast == 1.0
    after = render(postered, pose, intr).rgb
    changed = (np.abs(after.astype(int) - plain.astype(int)) > 10).any(axis=2)
    assert changed.sum() > 50  # posters in view, painted over the wall
    # A scaled dressed scene keeps its posters in place (scale-free images).
    assert postered.scaled(2.0).posters[0].width == pytest.approx(2 * postered.posters[0].width)


def test_fraction_draws_dressed_and_plain_scenes_and_bad_settings_are_named():
    half = replace(BV2_LIKE, photometric_texture=0.5)
    scenes = [sample_scene(half, np.random.default_rng(s)) for s in range(30)]
    dressed = sum(s.texture_contrast != 1.0 for s in scenes)
    assert 5 < dressed < 25
    # Everything but the dressing is drawn as without it.
    for s in range(5):
        a = sample_scene(BV2_LIKE, np.random.default_rng(s))
        b = sample_scene(half, np.random.default_rng(s))
        assert np.array_equal(a.floor_plan, b.floor_plan)
        assert (a.wall_materials, a.boxes, a.doors, a.lamps, a.ambient) == \
            (b.wall_materials, b.boxes, b.doors, b.lamps, b.ambient)
    assert half.to_dict()['photometric_texture'] == 0.5
    for bad in ({'photometric_texture': 1.5}, {'texture_contrast': 0.0},
                {'poster_density': -1.0}):
        with pytest.raises(AvsInputError, match=next(iter(bad))):
            replace(BV2_LIKE, **bad)


def test_generator_option_dresses_scenes_and_rejects_a_bad_fraction(tmp_path, capsys):
    out = str(tmp_path / 'tex')
    assert generate_main(['--out', out, '--layout', 'bv1', '--train', '2', '--val', '0',
                          '--test', '0', '--frames', '2', '--width', '64', '--height', '32',
                          '--workers', '1', '--quiet', '--photometric-texture', '1']) == 0
    metas = [os.path.join(r, f) for r, _, fs in os.walk(out) for f in fs
             if f == 'sim_meta.yaml']
    assert len(metas) == 1
    with open(metas[0]) as f:
        meta = yaml.safe_load(f)
    assert meta['family']['photometric_texture'] == 1.0
    assert meta['scene']['texture_contrast'] == 3.0 and 'posters' in meta['scene']
    assert generate_main(['--out', str(tmp_path / 'bad'), '--photometric-texture', '2',
                          '--quiet']) == 2
    assert 'photometric_texture' in capsys.readouterr().err
