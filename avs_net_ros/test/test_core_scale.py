"""Scale correction of relative depth and the temporal scale filter."""

from avs_net_ros.core.errors import AvsInputError, EmptyMaskError
from avs_net_ros.core.scale import disparity_to_depth, fit_scale, ScaleFilter
import numpy as np
import pytest


@pytest.fixture
def gt():
    rng = np.random.default_rng(0)
    return rng.uniform(0.5, 12.0, size=(30, 40)).astype(np.float64)


@pytest.mark.parametrize('method', ['median', 'least_squares'])
def test_exact_multiple_is_recovered(gt, method):
    rel = gt / 3.7
    fit = fit_scale(rel, gt, method)
    assert fit.scale == pytest.approx(3.7, rel=1e-9)
    np.testing.assert_allclose(fit.apply(rel), gt, rtol=1e-6)


def test_disparity_output_is_inverted_first(gt):
    disp = 5.0 / gt  # relative disparity = 1 / (depth / 5)
    fit = fit_scale(disp, gt, 'median', relative_kind='disparity')
    assert fit.scale == pytest.approx(5.0, rel=1e-9)
    np.testing.assert_allclose(fit.apply(disp), gt, rtol=1e-5)


@pytest.mark.parametrize('kind', ['disparity', 'depth'])
def test_scale_shift_recovers_affine_disparity(gt, kind):
    disp = 0.4 * (1.0 / gt) - 0.03  # affine-invariant output: unknown scale and shift
    rel = disp if kind == 'disparity' else 1.0 / disp
    fit = fit_scale(rel, gt, 'scale_shift', relative_kind=kind)
    assert fit.scale == pytest.approx(2.5, rel=1e-6)
    assert fit.shift == pytest.approx(0.075, rel=1e-6)
    np.testing.assert_allclose(fit.apply(rel), gt, rtol=1e-4)
    # the median ratio alone cannot undo a shift
    assert not np.allclose(fit_scale(rel, gt, 'median', relative_kind=kind).apply(rel), gt,
                           rtol=1e-2)


def test_mask_is_respected(gt):
    rel = gt / 2.0
    corrupted = gt.copy()
    corrupted[:, :20] *= 10.0  # wrong metric reference outside the mask
    mask = np.zeros(gt.shape, bool)
    mask[:, 20:] = True
    assert fit_scale(rel, corrupted, 'median', mask=mask).scale == pytest.approx(2.0)
    assert fit_scale(rel, corrupted, 'least_squares', mask=mask).scale == pytest.approx(2.0)
    assert fit_scale(rel, corrupted, 'median').scale != pytest.approx(2.0)
    fit = fit_scale(rel, corrupted, 'median', mask=mask)
    assert fit.num_pixels == mask.sum()


def test_invalid_pixels_are_ignored_and_marked(gt):
    rel = gt / 2.0
    ref = gt.copy()
    ref[0, :] = np.nan
    ref[1, :] = 0.0
    rel[2, :] = -1.0
    fit = fit_scale(rel, ref, 'median')
    assert fit.scale == pytest.approx(2.0)
    out = fit.apply(rel)
    assert np.isnan(out[2]).all() and np.isfinite(out[3:]).all()


def test_empty_mask_and_bad_input_errors(gt):
    with pytest.raises(EmptyMaskError, match='no pixel is valid'):
        fit_scale(gt, gt, 'median', mask=np.zeros(gt.shape, bool))
    with pytest.raises(EmptyMaskError):
        fit_scale(np.zeros_like(gt), gt, 'median')
    with pytest.raises(AvsInputError, match='same shape'):
        fit_scale(gt, gt[:10], 'median')
    with pytest.raises(AvsInputError, match='unknown scale method'):
        fit_scale(gt, gt, 'mean')
    with pytest.raises(AvsInputError, match='boolean'):
        fit_scale(gt, gt, 'median', mask=np.ones(gt.shape))


def test_disparity_to_depth_marks_nonpositive():
    d = disparity_to_depth(np.array([2.0, 0.0, -1.0, np.inf]))
    assert d[0] == 0.5 and np.isnan(d[1:]).all()


def test_scale_filter_smooths_rejects_outliers_and_expires():
    f = ScaleFilter(time_constant=0.5, max_jump=1.5, outlier_patience=3, max_age=2.0)
    assert f.value(0.0) is None
    assert f.update(2.0, 0.0) and f.value(0.0) == pytest.approx(2.0)
    assert f.update(2.2, 0.5)  # blended: alpha = 1 - exp(-1)
    expected = np.exp(np.log(2.0) + (1 - np.exp(-1)) * (np.log(2.2) - np.log(2.0)))
    assert f.value(0.5) == pytest.approx(expected)
    assert not f.update(9.0, 0.6)  # single outlier rejected, state unchanged
    assert 'away from the filtered' in f.last_rejection
    assert f.value(0.6) == pytest.approx(expected)
    assert not f.update(float('nan'), 0.7) and not f.update(-1.0, 0.7)
    assert f.value(2.4) is not None and f.value(2.6) is None  # older than max_age
    assert f.update(5.0, 3.0) and f.value(3.0) == pytest.approx(5.0)  # restart after a gap


def test_scale_filter_follows_a_real_change_after_patience():
    f = ScaleFilter(max_jump=1.5, outlier_patience=3)
    f.update(1.0, 0.0)
    assert not f.update(4.0, 0.1)
    assert not f.update(4.2, 0.2)
    assert f.update(3.9, 0.3)  # third consistent outlier: the scene changed
    assert f.value(0.3) == pytest.approx(4.0)
