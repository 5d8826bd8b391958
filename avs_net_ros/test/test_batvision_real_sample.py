"""The real BV2 instance (audio_47/camera_47/depth_47) loads through the BV2 readers."""

import os
import shutil

from avs_net_ros.core.spectrogram import echo_spectrogram
from avs_net_ros.datasets import bv2
from avs_net_ros.datasets.common import depth_to_metres, read_wav
from avs_net_ros.datasets.features import echo_settings
import numpy as np
import pytest

# The shared data folder sits beside the checkout (test/ is in the package folder of the
# checkout); AVS_BV2_SAMPLE points elsewhere.
SAMPLE = os.environ.get('AVS_BV2_SAMPLE', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'data',
    'batvision_v2_sample'))
REAL_HEADER = ('index,time,left audio time,right audio time,audio path,audio file name,'
               'camera time,camera path,camera file name,depth time,depth path,depth file name')


@pytest.fixture()
def bv2_root(tmp_path):
    if not os.path.isdir(SAMPLE):
        pytest.fail(f'the real BV2 sample is missing: {SAMPLE} (set AVS_BV2_SAMPLE)')
    loc = 'Real_Location'
    for sub, name in (('audio', 'audio_47.wav'), ('camera', 'camera_47.jpeg'),
                      ('depth', 'depth_47.npy')):
        os.makedirs(tmp_path / loc / sub)
        shutil.copy(os.path.join(SAMPLE, name), tmp_path / loc / sub / name)
    row = (f'47,1662463123.5,1662463123.501,1662463123.501,{loc}/audio/,audio_47.wav,'
           f'1662463123.504,{loc}/camera/,camera_47.jpeg,1662463123.504,{loc}/depth/,'
           'depth_47.npy')
    (tmp_path / loc / 'train.csv').write_text(REAL_HEADER + '\n' + row + '\n')
    for split in ('val', 'test'):
        (tmp_path / loc / f'{split}.csv').write_text(REAL_HEADER + '\n')
    return str(tmp_path)


def test_our_header_is_the_real_one():
    assert ','.join(bv2.BV2_COLUMNS) == REAL_HEADER


def test_real_sample_raw_arrays(bv2_root):
    records = bv2.read_index(bv2_root, 'train')
    assert len(records) == 1 and bv2.read_index(bv2_root, 'val') == []
    rec = records[0]
    assert (rec.location, rec.index) == ('Real_Location', 47)
    raw = bv2.load_instance(rec)
    audio, depth, rgb = raw['audio'], raw['depth_mm'], raw['rgb']
    assert raw['sample_rate'] == 44100
    assert audio.shape == (2, 20000) and audio.dtype == np.float32
    assert 0.5 < np.abs(audio).max() <= 1.0
    assert depth.dtype == np.uint16 and depth.shape == (720, 1280)
    assert rgb.shape == (720, 1280, 3) and rgb.dtype == np.uint8
    # 24-bit data in int32 containers: every sample is a multiple of 2**8 / 2**31.
    ints = np.round(audio.astype(np.float64) * 2 ** 31).astype(np.int64)
    assert np.all(ints % 256 == 0)
    metres = depth_to_metres(depth, 30.0)
    valid = metres > 0
    assert valid.mean() == pytest.approx(1 - 0.217, abs=0.005)
    assert metres.max() == pytest.approx(15.711, abs=1e-3)
    assert metres[valid].min() == pytest.approx(0.353, abs=1e-3)


def test_real_sample_through_torch_dataset(bv2_root):
    from training.datasets import BatvisionDataset
    ds = BatvisionDataset(bv2_root, 'bv2', 'train')
    assert len(ds) == 1
    s = ds[0]
    assert s['image'].shape == (3, 256, 256) and 0 <= s['image'].min() <= s['image'].max() <= 1
    assert s['depth'].shape == (1, 256, 256) and s['valid'].shape == (1, 256, 256)
    assert s['valid'].dtype.is_floating_point is False
    depth = s['depth'].numpy()
    assert 10.0 < depth.max() <= 15.711 + 1e-4  # nearest resize: only measured values
    assert s['valid'].numpy().mean() == pytest.approx(0.783, abs=0.02)
    assert np.array_equal(s['valid'].numpy(), depth > 0)
    assert s['echo'].shape == (2, 7782)  # int(2 * 30 / 340 * 44100), as the official loader
    audio, _ = read_wav(os.path.join(bv2_root, 'Real_Location', 'audio', 'audio_47.wav'))
    expected = echo_spectrogram(audio[:, :7782], echo_settings('bv2').features)
    np.testing.assert_allclose(s['echo_spec'].numpy(), expected, rtol=1e-6)
    assert s['index'] == 47 and s['location'] == 'Real_Location'
