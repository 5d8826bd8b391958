"""Readers name what is wrong: missing columns, files, stray entries, unknown layouts."""

import os

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets import bv1, bv2
from avs_net_ros.datasets.common import DatasetFormatError, read_wav, write_wav_int32
from avs_net_ros.datasets.features import echo_settings
from avs_net_ros.datasets.generate import generate
import numpy as np
import pytest


@pytest.fixture(scope='module')
def small_bv2(tmp_path_factory):
    root = tmp_path_factory.mktemp('bv2') / 'root'
    generate(str(root), 'bv2', {'train': 2, 'val': 1, 'test': 0}, seed=1, size=(32, 24),
             frames_per_location=2, progress=False)
    return str(root)


def test_missing_column_is_named(tmp_path):
    loc = tmp_path / 'Loc'
    loc.mkdir()
    (loc / 'train.csv').write_text('index,time,audio path,audio file name,depth path\n')
    with pytest.raises(DatasetFormatError, match="missing column.*'depth file name'"):
        bv2.read_index(str(tmp_path), 'train')
    (tmp_path / 'train.csv').write_text('index,time,audio path left,depth path\n')
    with pytest.raises(DatasetFormatError, match="'audio path right'"):
        bv1.read_index(str(tmp_path), 'train')


def test_missing_csv_and_files_are_named(small_bv2, tmp_path):
    os.remove(os.path.join(small_bv2, 'Sim_val_000', 'depth', 'depth_0.npy'))
    (rec,) = bv2.read_index(small_bv2, 'val')
    with pytest.raises(DatasetFormatError, match='depth_0.npy'):
        bv2.load_instance(rec)
    (tmp_path / 'EmptyLoc').mkdir()
    with pytest.raises(DatasetFormatError, match='missing CSV file .*EmptyLoc.*train.csv'):
        bv2.read_index(str(tmp_path), 'train')


def test_stray_file_in_bv2_root_and_bad_split_and_layout(small_bv2, tmp_path):
    (tmp_path / 'Loc').mkdir()
    (tmp_path / 'README.txt').write_text('x')
    with pytest.raises(DatasetFormatError, match='README.txt'):
        bv2.list_locations(str(tmp_path))
    with pytest.raises(DatasetFormatError, match="unknown split 'dev'"):
        bv2.read_index(small_bv2, 'dev')
    with pytest.raises(AvsInputError, match="unknown dataset layout 'bv3'"):
        echo_settings('bv3')
    pytest.importorskip('torch')
    from training.datasets import BatvisionDataset
    with pytest.raises(AvsInputError, match="'bv3'"):
        BatvisionDataset(small_bv2, 'bv3', 'train')
    with pytest.raises(DatasetFormatError, match='not a directory'):
        BatvisionDataset(str(tmp_path / 'nowhere'), 'bv2', 'train')


def test_wav_round_trip_and_rejects_non_wav(tmp_path):
    x = np.stack([np.linspace(-1, 1, 101), np.sin(np.arange(101))]).astype(np.float32)
    write_wav_int32(str(tmp_path / 'a.wav'), x)
    back, rate = read_wav(str(tmp_path / 'a.wav'))
    assert rate == 44100 and back.shape == (2, 101)
    np.testing.assert_allclose(back, np.clip(x, -1, 1 - 2 ** -23), atol=2 ** -23)
    (tmp_path / 'b.wav').write_bytes(b'not a wav')
    with pytest.raises(DatasetFormatError, match='b.wav'):
        read_wav(str(tmp_path / 'b.wav'))


def test_echo_settings_follow_the_official_windows():
    bv2s = echo_settings('bv2')
    assert bv2s.features.window_samples == 7782 and bv2s.echo_max_depth == 30.0
    assert bv2s.features.sample_rate == 44100 and bv2s.features.stft.hop_length == 16
    bv1s = echo_settings('bv1')
    assert bv1s.echo_max_depth == 12.0
    assert (bv1s.lead_in_samples, bv2s.lead_in_samples) == (976, 208)
    assert bv1s.features.window_samples == 3112 + 976
    assert echo_settings('bv2', max_depth=12.0, spec_size=(128, 64)).features.spec_size == \
        (128, 64)
