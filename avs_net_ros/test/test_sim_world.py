"""SimulatedWorld, scenes, families and trajectories: what the robot node and generator use."""

import os

from avs_net_ros.core.acoustics import align_to_direct_path, make_chirp
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets.features import DEFAULT_LEAD_IN
from avs_net_ros.sim.families import (BV1_LIKE, BV2_LIKE, family_from_dict, get_family,
                                      sample_scene, sample_tour, sample_trajectory)
from avs_net_ros.sim.render import render
from avs_net_ros.sim.rig import CameraPose, Intrinsics
from avs_net_ros.sim.scene import Box, Scene, shoebox
from avs_net_ros.sim.sensors import occlusion_mask, valid_mask
from avs_net_ros.sim.world import SimulatedWorld
import numpy as np
import pytest
import yaml

SIM_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'config',
                          'sim')


def test_render_depth_matches_geometry_of_a_box_room():
    scene = shoebox(6.0, 4.0, 3.0)
    pose = CameraPose(1.0, 2.0, 1.5, 0.0)  # looking at the wall x = 6, 5 m away
    rgb, depth, intr = SimulatedWorld(scene).render(pose, 64, 48)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert depth.shape == (48, 64) and depth.dtype == np.float32
    # Central pixels hit the front wall: z-depth is exactly 5 m.
    assert depth[20:28, 28:36] == pytest.approx(5.0, abs=1e-4)
    # Bottom rows see the floor 1.5 m below: z = 1.5 / tan(angle below the axis).
    v = 47 - intr.cy
    assert depth[47, 32] == pytest.approx(1.5 * intr.fy / v, rel=1e-4)


def test_box_occludes_the_wall_and_has_its_own_depth():
    scene = shoebox(6.0, 4.0, 3.0, boxes=(Box(3.0, 1.5, 3.5, 2.5, 2.0),))
    out = render(scene, CameraPose(1.0, 2.0, 1.0, 0.0), Intrinsics.from_fov(65, 49))
    assert out.depth[24, 32] == pytest.approx(2.0, abs=1e-4)
    assert out.surface[24, 32] >= 6  # a box face, not a wall/floor/ceiling


def test_world_recording_has_direct_path_near_bv2_position_and_is_cached():
    scene = shoebox(6.0, 4.0, 3.0)
    world = SimulatedWorld(scene)
    pose = CameraPose(2.0, 2.0, 1.2, 0.3)
    rec = world.record(pose, rng=np.random.default_rng(0))
    assert rec.shape == (2, 20000) and rec.dtype == np.float32
    assert np.abs(rec).max() <= 1.0
    onset = align_to_direct_path(rec, make_chirp(world.acoustics.chirp)).onset
    assert 176 <= onset <= 290
    assert abs(onset - DEFAULT_LEAD_IN['bv2']) <= 1  # what datasets record as the lead-in
    assert world.emit_sample == 192 and world.sample_rate == 44100
    first = world.impulse_responses(pose)
    assert world.impulse_responses(pose) is first
    # Same pose, no noise: identical recordings; noise changes them.
    np.testing.assert_array_equal(world.record(pose), world.record(pose))
    assert not np.array_equal(world.record(pose, np.random.default_rng(1)), world.record(pose))


def test_pose_outside_the_room_is_rejected():
    world = SimulatedWorld(shoebox(6.0, 4.0, 3.0))
    with pytest.raises(AvsInputError, match='outside'):
        world.render(CameraPose(7.0, 2.0, 1.0, 0.0), 32, 24)
    with pytest.raises(AvsInputError, match='outside'):
        world.record(CameraPose(2.0, 2.0, 3.5, 0.0))


def test_bad_scene_is_rejected_with_a_reason():
    with pytest.raises(AvsInputError, match='counter-clockwise'):
        Scene(np.array([[0, 0], [0, 4], [6, 4], [6, 0]]), 3.0, ('white_plaster',) * 4)
    with pytest.raises(AvsInputError, match='unknown material'):
        shoebox(6, 4, 3, 'unobtainium')


@pytest.mark.parametrize('family', [BV2_LIKE, BV1_LIKE])
def test_families_sample_valid_scenes_and_smooth_trajectories(family):
    rng = np.random.default_rng(0)
    for _ in range(5):
        scene = sample_scene(family, rng)
        assert scene.scale_ambiguity
        xmin, ymin, xmax, ymax = scene.bounds()
        assert max(xmax - xmin, ymax - ymin) <= family.max_extent + 1e-6
        poses = sample_trajectory(family, scene, 30, rng)
        assert len(poses) == 30
        for a, b in zip(poses, poses[1:]):
            assert scene.contains(b.x, b.y)
            assert np.hypot(b.x - a.x, b.y - a.y) <= family.step * scene.scale + 1e-9
        out = render(scene, poses[-1], Intrinsics.from_fov(48, 32))
        assert np.isfinite(out.depth).all() and out.depth.min() > 0


def test_a_tour_spreads_independent_views_over_the_room():
    """A tour's poses lie in the room and are far apart, unlike a walk's consecutive poses."""
    rng = np.random.default_rng(5)
    scene = sample_scene(BV2_LIKE, rng)
    tour = sample_tour(BV2_LIKE, scene, 12, np.random.default_rng(6))
    walk = sample_trajectory(BV2_LIKE, scene, 12, np.random.default_rng(6))
    assert len(tour) == 12 and all(scene.contains(p.x, p.y) for p in tour)

    def spread(poses):
        return float(np.mean([np.hypot(a.x - b.x, a.y - b.y) for a, b in zip(poses, poses[1:])]))
    assert spread(tour) > 10 * spread(walk)
    assert np.ptp([p.yaw for p in tour]) > np.pi  # headings all round, not one direction


def test_bv1_family_is_smaller_than_bv2():
    rng = np.random.default_rng(1)
    ext = {f.name: np.mean([max(np.ptp(sample_scene(f, rng).floor_plan, axis=0))
                            for _ in range(30)]) for f in (BV1_LIKE, BV2_LIKE)}
    assert ext['bv1_like'] < ext['bv2_like']
    assert get_family('bv1_like').max_depth == 12.0 and get_family('bv2_like').max_depth == 30.0


def test_family_config_files_load_and_match_the_builtins():
    for name in ('bv2_like', 'bv1_like'):
        with open(os.path.join(SIM_CONFIG, f'{name}.yaml')) as f:
            data = yaml.safe_load(f)
        assert family_from_dict(data) == get_family(name)
    with pytest.raises(AvsInputError, match='unknown scene family keys'):
        family_from_dict({'base': 'bv2_like', 'ceiling': 3})


def test_stereo_sensor_model_marks_range_and_occlusion_holes():
    scene = shoebox(30.0, 4.0, 3.0, boxes=(Box(3.0, 1.6, 3.4, 2.4, 2.5),))
    intr = Intrinsics.from_fov(160, 90)
    out = render(scene, CameraPose(1.0, 2.0, 1.5, 0.0), intr)
    occ = occlusion_mask(out.depth, intr, 0.12)
    assert occ.any()
    # Occlusion shadows sit just left of the box (the second camera is to the right).
    cols = np.flatnonzero(occ[45])
    box_cols = np.flatnonzero(out.surface[45] >= 6)
    assert cols.max() < box_cols.min()
    valid = valid_mask(out.depth, out.rgb, intr)
    assert not valid[out.depth > 20.0].any()
