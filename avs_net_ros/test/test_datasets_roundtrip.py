"""Simulated BV1/BV2 datasets: write -> read round trips, determinism and the command line."""

import os
import subprocess
import sys

from avs_net_ros.datasets import bv1, bv2
from avs_net_ros.datasets.common import depth_to_metres, read_wav
from avs_net_ros.datasets.generate import generate
from avs_net_ros.datasets.simulate import LocationSimulator
from avs_net_ros.sim.families import BV1_LIKE, BV2_LIKE
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _close_image(a, b):
    """JPEG at the real data's quality (75, 4:2:0): PSNR well above 25 dB."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-9)) > 25.0


def test_bv2_instance_round_trip(tmp_path):
    sim = LocationSimulator(BV2_LIKE, 'bv2', seed=5, split='train', location=0, num_frames=3,
                            width=128, height=72)
    inst = sim.frame(2)
    depth_mm = bv2.encode_depth_mm(inst.depth, inst.valid)
    names = bv2.write_instance(str(tmp_path), 'Loc', 2, inst.rgb, depth_mm, inst.audio)
    bv2.write_split_csvs(str(tmp_path), 'Loc', {'val': [bv2.csv_row('Loc', 2, 1.5e9)]})
    # Byte format: canonical 44-byte PCM header, 2 ch, 44.1 kHz, 32-bit, low byte zero.
    raw = (tmp_path / 'Loc' / 'audio' / names[0]).read_bytes()
    assert raw[:4] == b'RIFF' and raw[8:16] == b'WAVEfmt ' and raw[36:40] == b'data'
    fmt = np.frombuffer(raw[20:36], dtype='<u2')
    assert list(fmt[[0, 1, 7]]) == [1, 2, 32] and int.from_bytes(raw[24:28], 'little') == 44100
    samples = np.frombuffer(raw[44:], '<i4')
    assert samples.size == 2 * 20000 and np.all(samples & 0xFF == 0)
    assert (tmp_path / 'Loc' / 'camera' / names[1]).read_bytes()[:3] == b'\xff\xd8\xff'
    (rec,) = bv2.read_index(str(tmp_path), 'val')
    back = bv2.load_instance(rec)
    np.testing.assert_allclose(back['audio'], inst.audio, atol=2 ** -23)
    assert back['depth_mm'].dtype == np.uint16
    metres = depth_to_metres(back['depth_mm'], 30.0)
    np.testing.assert_array_equal(metres > 0, inst.valid)
    np.testing.assert_allclose(metres[inst.valid], inst.depth[inst.valid], atol=5e-4)
    assert _close_image(back['rgb'], inst.rgb)


def test_bv1_instance_round_trip(tmp_path):
    sim = LocationSimulator(BV1_LIKE, 'bv1', seed=5, split='test', location=1, num_frames=2,
                            width=96, height=64)
    inst = sim.frame(1)
    assert inst.audio.shape == (2, 4410)
    # ~980 near-silent lead-in samples, as in the real BV1 clips.
    assert np.abs(inst.audio[:, :900]).max() < 0.02 < np.abs(inst.audio[:, 960:1200]).max()
    depth_mm = bv1.encode_depth_mm(inst.depth, inst.valid, BV1_LIKE.sensor_max_range)
    row = bv1.write_instance(str(tmp_path), 7, 1.6e9 + 0.25, inst.rgb, depth_mm, inst.audio)
    bv1.write_split_csv(str(tmp_path), 'test', [row])
    (rec,) = bv1.read_index(str(tmp_path), 'test')
    assert rec.location == row[2].split('/')[0] and rec.index == 7
    back = bv1.load_instance(rec)
    np.testing.assert_array_equal(back['audio'], inst.audio)
    stored = back['depth_mm']
    assert stored.dtype == np.float32
    assert np.isnan(stored[~inst.valid & (inst.depth <= 12.0)]).all()
    metres = depth_to_metres(stored, 12.0)
    np.testing.assert_array_equal(metres > 0, inst.valid)
    np.testing.assert_allclose(metres[inst.valid], np.minimum(inst.depth, 12.0)[inst.valid],
                               rtol=1e-6)
    assert _close_image(back['rgb'], inst.rgb)


def _tree_bytes(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, 'rb') as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def test_generator_is_deterministic_and_parallel_safe(tmp_path):
    kw = {'layout': 'bv2', 'counts': {'train': 6, 'val': 2, 'test': 2}, 'seed': 11,
          'size': (64, 36), 'frames_per_location': 4, 'progress': False}
    generate(str(tmp_path / 'a'), workers=1, **kw)
    generate(str(tmp_path / 'b'), workers=2, **kw)
    a, b = _tree_bytes(tmp_path / 'a'), _tree_bytes(tmp_path / 'b')
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    locs = bv2.list_locations(str(tmp_path / 'a'))
    assert len(locs) == 2 + 1 + 1  # ceil(6 / 4) train locations, one each for val and test
    n = {s: len(bv2.read_index(str(tmp_path / 'a'), s)) for s in ('train', 'val', 'test')}
    assert n == {'train': 6, 'val': 2, 'test': 2}
    c = tmp_path / 'c'
    generate(str(c), workers=1, **{**kw, 'seed': 12})
    assert _tree_bytes(c) != a


def test_bv1_generator_writes_the_layout(tmp_path):
    generate(str(tmp_path / 'bv1'), layout='bv1', counts={'train': 5, 'val': 0, 'test': 2},
             seed=0, size=(48, 32), frames_per_location=5, progress=False)
    recs = bv1.read_index(str(tmp_path / 'bv1'), 'train')
    assert len(recs) == 5 and len({r.location for r in recs}) == 1
    assert [r.index for r in recs] == list(range(5))
    assert bv1.read_index(str(tmp_path / 'bv1'), 'val') == []
    raw = bv1.load_instance(recs[0])
    assert raw['audio'].shape == (2, 4410) and raw['rgb'].shape == (32, 48, 3)


def test_command_line_writes_a_small_dataset(tmp_path):
    out = tmp_path / 'SimBV2'
    env = {**os.environ, 'PYTHONPATH': ROOT}
    help_text = subprocess.run([sys.executable, '-m', 'avs_net_ros.datasets.generate', '--help'],
                               capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert help_text.returncode == 0 and '--layout' in help_text.stdout
    run = subprocess.run([sys.executable, '-m', 'avs_net_ros.datasets.generate', '--out',
                          str(out), '--train', '3', '--val', '1', '--test', '1', '--width',
                          '64', '--height', '36', '--frames', '3', '--workers', '2'],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert len(bv2.read_index(str(out), 'train')) == 3
    audio, rate = read_wav(str(out / 'Sim_train_000' / 'audio' / 'audio_0.wav'))
    assert rate == 44100 and audio.shape == (2, 20000)
    again = subprocess.run([sys.executable, '-m', 'avs_net_ros.datasets.generate', '--out',
                            str(out)], capture_output=True, text=True, env=env)
    assert again.returncode == 2 and 'not empty' in again.stderr


@pytest.mark.parametrize('layout', ['bv2', 'bv1'])
def test_torch_dataset_reads_back_simulated_arrays(tmp_path, layout):
    pytest.importorskip('torch')
    from training.datasets import BatvisionDataset
    from avs_net_ros.datasets.simulate import LocationSimulator as Sim
    family = BV2_LIKE if layout == 'bv2' else BV1_LIKE
    generate(str(tmp_path / 'd'), layout=layout, counts={'train': 2, 'val': 0, 'test': 0},
             seed=3, size=(64, 48), frames_per_location=2, progress=False)
    ds = BatvisionDataset(str(tmp_path / 'd'), layout, 'train', image_size=(48, 64),
                          depth_size=(48, 64), spec_size=(64, 32))
    sample = ds[1]
    inst = Sim(family, layout, 3, 'train', 0, 2, 64, 48).frame(1)
    expected = np.where(inst.valid, np.minimum(inst.depth, family.max_depth), 0)
    np.testing.assert_allclose(sample['depth'][0].numpy(), expected, atol=5e-4)
    np.testing.assert_array_equal(sample['valid'][0].numpy(), inst.valid)
    assert _close_image((sample['image'].numpy().transpose(1, 2, 0) * 255).round(), inst.rgb)
    n = ds.settings.features.window_samples
    np.testing.assert_allclose(sample['echo'].numpy(), inst.audio[:, :n], atol=2 ** -23)
    assert sample['echo_spec'].shape == (2, 64, 32)
