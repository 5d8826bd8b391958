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


def test_flip_in_a_batch_swaps_the_ears_and_mirrors_every_frame_alike(tmp_path):
    torch = pytest.importorskip('torch')
    from avs_net_ros.datasets.generate import generate
    from training.datasets import augment_batch, BatvisionDataset
    generate(str(tmp_path / 'd'), 'bv1', {'train': 7, 'val': 0, 'test': 0}, seed=2,
             size=(32, 24), frames_per_location=7, progress=False)
    ds = BatvisionDataset(str(tmp_path / 'd'), 'bv1', 'train', image_size=(24, 32),
                          depth_size=(24, 32), triplets=True, triplet_interval=3)
    s = ds[0]
    keys = ('image', 'image_prev', 'image_next', 'depth', 'valid', 'echo_spec', 'echo')
    batch = {k: torch.stack([s[k]] * 16) for k in keys}
    out = augment_batch(batch, torch.Generator().manual_seed(0))
    flipped = [i for i in range(16) if torch.equal(out['depth'][i], batch['depth'][i].flip(-1))]
    kept = [i for i in range(16) if torch.equal(out['depth'][i], batch['depth'][i])]
    assert flipped and kept and len(flipped) + len(kept) == 16
    for i in flipped:  # the ears swap with the image columns
        assert torch.equal(out['echo_spec'][i], batch['echo_spec'][i].flip(0))
        assert torch.equal(out['echo'][i], batch['echo'][i].flip(0))
        assert torch.equal(out['valid'][i], batch['valid'][i].flip(-1))
    for i in kept:
        assert torch.equal(out['echo_spec'][i], batch['echo_spec'][i])
    # The frames of a triplet get the same flip and jitter: three equal frames stay equal.
    same = dict(batch, image_prev=batch['image'].clone(), image_next=batch['image'].clone())
    out = augment_batch(same, torch.Generator().manual_seed(1))
    assert torch.equal(out['image_prev'], out['image'])
    assert torch.equal(out['image_next'], out['image'])
    assert not torch.equal(out['image'], same['image'])


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
