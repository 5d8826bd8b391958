"""Robot-driven camera trajectories: bounded motion, clearance, stops, determinism, generator."""

import math

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.families import get_family, sample_scene
from avs_net_ros.sim.motion import motion_from_dict, robot_trajectory, RobotMotion
import numpy as np
import pytest
import yaml


def _drive(seed, frames=150, motion=RobotMotion(), family='bv1_like'):
    fam = get_family(family)
    rng = np.random.default_rng(seed)
    scene = sample_scene(fam, rng)
    return scene, robot_trajectory(motion, fam, scene, frames, rng)


def test_motion_is_bounded_stays_clear_of_walls_and_stops_sometimes():
    m = RobotMotion()
    dt = 1 / m.frame_rate
    stopped = 0
    for seed in range(12):
        scene, poses = _drive(seed)
        xy = np.array([[p.x, p.y] for p in poses])
        yaw = np.array([p.yaw for p in poses])
        step = np.hypot(*np.diff(xy, axis=0).T) / scene.scale
        turn = np.abs(np.angle(np.exp(1j * np.diff(yaw))))
        assert step.max() <= m.speed[1] * dt + 1e-9
        assert turn.max() <= math.radians(m.turn_rate_deg) * dt + 1e-9
        # Speed changes stay within the acceleration limit: no jumps between frames.
        assert np.abs(np.diff(step)).max() <= m.accel * dt * dt + 1e-9
        assert all(scene.contains(p.x, p.y, 0.5 * m.clearance * scene.scale) for p in poses)
        # It keeps moving: no location ends where it started, and frames 20 apart differ.
        assert np.hypot(*(xy[20:] - xy[:-20]).T).mean() > 0.1 * scene.scale
        stopped += int((step < 1e-9).any())
    assert stopped >= 1  # stationary frames exist (what auto-masking is for)


def test_same_seed_same_trajectory_and_bad_settings_are_named():
    assert _drive(3)[1] == _drive(3)[1]
    assert _drive(3)[1] != _drive(4)[1]
    with pytest.raises(AvsInputError, match='unknown robot motion keys'):
        motion_from_dict({'speeed': [0.1, 0.2]})
    with pytest.raises(AvsInputError, match='robot motion'):
        RobotMotion(frame_rate=0)
    assert motion_from_dict({'speed': [0.1, 0.2]}).speed == (0.1, 0.2)


def test_generator_drives_the_robot_and_records_its_rate(tmp_path):
    from avs_net_ros.datasets import bv1
    from avs_net_ros.datasets.generate import main
    out = tmp_path / 'd'
    assert main(['--out', str(out), '--layout', 'bv1', '--motion', 'robot', '--frame-rate',
                 '15', '--train', '6', '--val', '0', '--test', '0', '--frames', '6',
                 '--width', '64', '--height', '48', '--workers', '1', '--quiet']) == 0
    recs = bv1.read_index(str(out), 'train')
    times = np.array([r.time for r in recs])
    assert np.allclose(np.diff(times), 1 / 15, atol=1e-5)
    meta = yaml.safe_load(open(out / recs[0].location / 'sim_meta.yaml'))
    assert meta['frame_period'] == pytest.approx(1 / 15)
    assert meta['motion']['frame_rate'] == 15
    assert main(['--out', str(tmp_path / 'e'), '--frame-rate', '15', '--quiet']) == 2
