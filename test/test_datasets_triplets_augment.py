"""Frame triplets over sequences and augmentations that keep image/depth/echo consistent."""

import pickle

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets.common import Record
from avs_net_ros.datasets.triplets import triplet_index
import numpy as np
import pytest


def _records(split, idx, loc='L'):
    return [Record(split, loc, i, 100.0 + 0.2 * i, ('a',), 'c', 'd') for i in idx]


def test_triplets_need_both_neighbours_in_the_same_split_by_default():
    train = _records('train', range(0, 50))
    trip = triplet_index(train, interval=20)
    assert [train[p].index for p, _, _ in trip] == list(range(20, 30))
    for p, prev, nxt in trip:
        assert prev.index == train[p].index - 20 and nxt.index == train[p].index + 20
        assert prev.split == nxt.split == 'train'


def test_cross_split_triplets_and_locations_do_not_mix():
    train = _records('train', range(0, 30))
    val = _records('val', range(30, 60))
    other = _records('train', range(100, 200), loc='M')
    assert triplet_index(train, 20) != triplet_index(train, 20, val, cross_split=True)
    trip = triplet_index(train + other, 20, val, cross_split=True)
    got = {(train + other)[p].index for p, _, _ in trip}
    assert got == set(range(20, 30)) | set(range(120, 180))
    assert all(prev.location == nxt.location for _, prev, nxt in trip)
    assert any(nxt.split == 'val' for _, _, nxt in trip)
    with pytest.raises(AvsInputError, match='interval'):
        triplet_index(train, 0)


def test_gap_in_a_sequence_is_not_bridged():
    # Two runs of 10 frames far apart: 5 positions away is always across the gap.
    recs = _records('train', list(range(0, 10)) + list(range(500, 510)))
    assert triplet_index(recs, interval=5) == []
    assert len(triplet_index(_records('train', range(0, 20)), interval=5)) == 10


def test_horizontal_flip_swaps_ears_and_mirrors_image_and_depth():
    pytest.importorskip('torch')
    from training.datasets.augment import PairedAugment
    rng = np.random.default_rng(0)
    rgb = rng.random((4, 6, 3)).astype(np.float32)
    depth = rng.random((4, 6)).astype(np.float32)
    audio = rng.normal(size=(2, 100)).astype(np.float32)
    aug = PairedAugment(hflip=1.0, brightness=0.0, contrast=0.0)
    p = aug.draw(rng)
    assert p['flip']
    np.testing.assert_allclose(aug.image(rgb, p), rgb[:, ::-1], atol=1e-6)
    np.testing.assert_array_equal(aug.depth(depth, p), depth[:, ::-1])
    np.testing.assert_array_equal(aug.echo(audio, p), audio[::-1])
    keep = PairedAugment(hflip=0.0, echo_gain_db=6.0).draw(rng)
    out = PairedAugment.echo(audio, keep)
    ratio = out / audio
    assert np.allclose(ratio, ratio[0, 0]) and 0.5 <= ratio[0, 0] <= 2.0


def test_flip_in_the_dataset_swaps_spectrogram_channels(tmp_path):
    torch = pytest.importorskip('torch')
    from avs_net_ros.datasets.generate import generate
    from training.datasets import BatvisionDataset, PairedAugment
    generate(str(tmp_path / 'd'), 'bv2', {'train': 1, 'val': 0, 'test': 0}, seed=2,
             size=(64, 36), frames_per_location=1, progress=False)
    plain = BatvisionDataset(str(tmp_path / 'd'), 'bv2', 'train', image_size=(36, 64),
                             depth_size=(36, 64))[0]
    flipped_ds = BatvisionDataset(str(tmp_path / 'd'), 'bv2', 'train', image_size=(36, 64),
                                  depth_size=(36, 64),
                                  augment=PairedAugment(hflip=1.0, brightness=0, contrast=0))
    torch.manual_seed(0)
    flipped = flipped_ds[0]
    assert torch.equal(flipped['echo_spec'], plain['echo_spec'].flip(0))
    assert torch.equal(flipped['echo'], plain['echo'].flip(0))
    assert torch.equal(flipped['depth'], plain['depth'].flip(-1))
    assert torch.allclose(flipped['image'], plain['image'].flip(-1), atol=1e-5)


def test_triplet_dataset_returns_neighbour_images(tmp_path):
    pytest.importorskip('torch')
    from avs_net_ros.datasets.generate import generate
    from training.datasets import BatvisionDataset
    generate(str(tmp_path / 'd'), 'bv1', {'train': 7, 'val': 0, 'test': 0}, seed=2,
             size=(32, 24), frames_per_location=7, progress=False)
    ds = BatvisionDataset(str(tmp_path / 'd'), 'bv1', 'train', image_size=(24, 32),
                          depth_size=(24, 32), triplets=True, triplet_interval=3)
    assert len(ds) == 1
    s = pickle.loads(pickle.dumps(ds))[0]  # spawn-started DataLoader workers pickle it
    assert s['index'] == 3
    assert s['image_prev'].shape == s['image_next'].shape == (3, 24, 32)
    assert not np.allclose(s['image_prev'].numpy(), s['image_next'].numpy())
