"""Depth metrics agree with a plain per-pixel implementation; AIDE_k behaves as defined."""

import math

from avs_net_ros.core.errors import AvsInputError, EmptyMaskError
from avs_net_ros.core.metrics import (aide_per_band, AideAccumulator, depth_metrics,
                                      GroundTruth, METRIC_NAMES, MetricAverager)
import numpy as np
import pytest


def reference_metrics(pred, gt, max_depth, min_depth=1e-3):
    """Straightforward per-pixel loop, written from the textbook definitions."""
    terms = {k: [] for k in METRIC_NAMES}
    for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist()):
        if not (math.isfinite(g) and 0 < g <= max_depth):
            continue
        p = min(max(p, min_depth), max_depth)
        r = max(g / p, p / g)
        terms['abs_rel'].append(abs(g - p) / g)
        terms['sq_rel'].append((g - p) ** 2 / g)
        terms['rmse'].append((g - p) ** 2)
        terms['rmse_log'].append((math.log(g) - math.log(p)) ** 2)
        terms['log10'].append(abs(math.log10(g) - math.log10(p)))
        for i in (1, 2, 3):
            terms[f'delta{i}'].append(1.0 if r < 1.25 ** i else 0.0)
    out = {k: sum(v) / len(v) for k, v in terms.items()}
    out['rmse'] = math.sqrt(out['rmse'])
    out['rmse_log'] = math.sqrt(out['rmse_log'])
    return out


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_metrics_match_plain_implementation(seed):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.2, 14.0, size=(24, 32))
    gt[rng.random(gt.shape) < 0.2] = 0.0  # invalid
    gt[0, :3] = [np.nan, np.inf, 13.0]  # 13 > max_depth: excluded
    pred = gt * rng.uniform(0.6, 1.5, size=gt.shape) + rng.uniform(-0.5, 0.5, size=gt.shape)
    pred[1, :2] = [np.nan, -3.0]
    ours = depth_metrics(pred, gt, max_depth=12.0)
    ref = reference_metrics(np.nan_to_num(pred, nan=1e-3), gt, max_depth=12.0)
    for k in METRIC_NAMES:
        assert ours[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k


def test_perfect_prediction_and_known_scale_error():
    gt = np.random.default_rng(3).uniform(1.0, 10.0, size=(16, 16))
    perfect = depth_metrics(gt, gt, max_depth=12.0)
    assert perfect['abs_rel'] == 0.0 and perfect['delta1'] == 1.0 and perfect['rmse'] == 0.0
    assert depth_metrics(gt * 1.1, gt, max_depth=12.0)['abs_rel'] == pytest.approx(0.1)


def test_prediction_is_resized_to_ground_truth():
    gt = np.full((40, 60), 3.0)
    low_res = np.full((10, 15), 3.0)
    assert depth_metrics(low_res, gt, max_depth=10.0)['abs_rel'] == pytest.approx(0.0)


def test_dataset_figure_is_mean_of_images():
    gt = np.full((8, 8), 2.0)
    avg = MetricAverager()
    avg.add(depth_metrics(gt * 1.2, gt, max_depth=10.0))
    avg.add(depth_metrics(gt * 1.4, gt, max_depth=10.0))
    assert avg.mean()['abs_rel'] == pytest.approx(0.3) and avg.count == 2


def test_empty_mask_is_an_error():
    with pytest.raises(EmptyMaskError, match='no valid ground-truth pixel'):
        depth_metrics(np.ones((4, 4)), np.zeros((4, 4)), max_depth=10.0)
    with pytest.raises(EmptyMaskError):
        MetricAverager().mean()


def test_aide_is_zero_for_equal_predictions():
    rng = np.random.default_rng(4)
    gt = rng.uniform(0.1, 9.9, size=(32, 32))
    pred = gt * rng.uniform(0.5, 1.5, size=gt.shape)
    bands = aide_per_band(pred, pred.copy(), gt, max_depth=10.0)
    assert sorted(bands) == list(range(10))
    assert all(v == 0.0 for v in bands.values())


def test_aide_sign_and_band_assignment():
    gt = np.array([[0.5, 1.5, 2.5, 2.5, 0.0]])
    ov = np.array([[0.5, 2.5, 2.0, 2.0, 7.0]])  # band 1 off by 1 m, band 2 off by 0.5 m
    av = np.array([[0.5, 1.7, 2.5, 3.5, 7.0]])  # band 1 better (0.2), band 2 mixed
    bands = aide_per_band(ov, av, gt, max_depth=10.0)
    assert bands[0] == 0.0
    assert bands[1] == pytest.approx(1.0 - 0.2)  # AV closer: positive
    assert bands[2] == pytest.approx(((0.5 - 0.0) + (0.5 - 1.0)) / 2)
    assert 4 not in bands  # gt 0 is invalid
    acc = AideAccumulator()
    acc.add(bands)
    acc.add({1: -0.2})
    assert acc.result()[1] == (pytest.approx(0.3), 2)
    assert acc.result()[2][1] == 1  # only images with pixels in the band count


def test_prepared_ground_truth_scores_like_the_raw_array():
    rng = np.random.default_rng(5)
    gt = rng.uniform(0.2, 14.0, size=(30, 40))
    gt[rng.random(gt.shape) < 0.3] = np.nan
    pred = gt * rng.uniform(0.7, 1.4, size=gt.shape)
    mask = rng.random(gt.shape) < 0.5
    prepared = GroundTruth.prepare(gt, 12.0)
    for kw in ({}, {'mask': mask}):
        a = depth_metrics(pred, gt, max_depth=12.0, **kw)
        b = depth_metrics(pred, prepared, max_depth=12.0, **kw)
        for k in METRIC_NAMES:
            assert b[k] == pytest.approx(a[k], rel=1e-12, abs=1e-15), k
    other = pred * 1.1
    assert aide_per_band(pred, other, prepared, max_depth=12.0) == aide_per_band(
        pred, other, gt, max_depth=12.0)
    with pytest.raises(AvsInputError, match='max_depth 12.0'):
        depth_metrics(pred, prepared, max_depth=10.0)


def test_median_scale_error_is_the_log_factor_off():
    """Scale s gives |ln s|; NaN predictions and invalid ground truth are left out."""
    from avs_net_ros.core.metrics import median_scale_error

    gt = np.linspace(1.0, 5.0, 48).reshape(6, 8)
    gt[0, :3] = np.nan
    gt[1, :2] = 0.0
    assert median_scale_error(gt * 2.0, gt, max_depth=30.0) == pytest.approx(np.log(2.0))
    assert median_scale_error(gt / 3.0, gt, max_depth=30.0) == pytest.approx(np.log(3.0))
    pred = gt * 1.5
    pred[5] = np.nan
    assert median_scale_error(pred, gt, max_depth=30.0) == pytest.approx(np.log(1.5))
    blocks = np.kron(np.arange(1.0, 13.0).reshape(3, 4), np.ones((2, 2)))
    half = (blocks * 2.0)[::2, ::2]   # another resolution: nearest pixel centres
    assert median_scale_error(half, blocks, max_depth=30.0) == pytest.approx(np.log(2.0))
    with pytest.raises(EmptyMaskError):
        median_scale_error(np.full_like(gt, np.nan), gt, max_depth=30.0)


def test_median_log_ratio_says_too_far_or_too_near():
    from avs_net_ros.core.metrics import median_log_ratio

    gt = np.linspace(1.0, 5.0, 48).reshape(6, 8)
    assert median_log_ratio(gt * 2.0, gt, max_depth=30.0) == pytest.approx(np.log(2.0))
    assert median_log_ratio(gt / 3.0, gt, max_depth=30.0) == pytest.approx(-np.log(3.0))
