"""Losses and config: SILog as ZoeDepth defines it, scale invariance, clear errors."""

import numpy as np
import pytest
import torch

from training.config import config_from_dict, load_config
from training.losses import scale_invariant_loss, silog_loss, ssi_loss


def test_silog_matches_zoedepth_formula_on_upsampled_prediction():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 1, 4, 6, generator=g) + 0.5
    gt = torch.rand(2, 1, 8, 12, generator=g) * 5 + 0.5
    valid = torch.rand(2, 1, 8, 12, generator=g) > 0.3
    up = torch.nn.functional.interpolate(pred, size=(8, 12), mode='bilinear',
                                         align_corners=True)
    d = np.log(up[valid].numpy() + 1e-7) - np.log(gt[valid].numpy() + 1e-7)
    want = 10 * np.sqrt(np.var(d, ddof=1) + 0.15 * np.mean(d) ** 2)
    assert float(silog_loss(pred, gt, valid)) == pytest.approx(want, rel=1e-5)


def test_silog_is_not_scale_invariant_but_relative_loss_is():
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 1, 8, 8, generator=g) * 10 + 0.5
    valid = torch.ones_like(gt, dtype=torch.bool)
    pred = gt * (1 + 0.1 * torch.rand(3, 1, 8, 8, generator=g))
    per_image = torch.tensor([0.3, 2.0, 7.0]).view(3, 1, 1, 1)
    assert float(silog_loss(pred * per_image, gt, valid)) > 3 * float(silog_loss(pred, gt, valid))
    a = scale_invariant_loss(pred, gt, valid)
    b = scale_invariant_loss(pred * per_image, gt, valid)
    assert float(a) == pytest.approx(float(b), rel=1e-4)
    assert float(scale_invariant_loss(gt * per_image, gt, valid)) < 1e-3


def test_empty_masks_are_named():
    x = torch.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match='valid'):
        silog_loss(x, x, torch.zeros_like(x, dtype=torch.bool))
    with pytest.raises(ValueError, match='every image'):
        scale_invariant_loss(x, x, torch.zeros_like(x, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'\(B,1,h,w\)'):
        silog_loss(x[0], x, x.bool())


def test_config_rejects_unknown_keys_and_applies_overrides(tmp_path):
    with pytest.raises(ValueError, match='unknown config key.*model.*colour'):
        config_from_dict({'model': {'colour': 'red'}})
    path = tmp_path / 'c.yaml'
    path.write_text('model:\n  variant: v\n  image_size: [64, 96]\noptim:\n  lr: 0.001\n')
    cfg = load_config(str(path), ['model.variant=av', 'epochs=2'])
    assert cfg.model.variant == 'av' and cfg.model.image_size == (64, 96)
    assert cfg.optim.lr == 0.001 and cfg.epochs == 2
    assert cfg.optim.pct_start == 0.7 and cfg.optim.final_div_factor == 10000.0
    with pytest.raises(ValueError, match='multiples of 32'):
        config_from_dict({'model': {'image_size': [60, 64]}})


def _ssi_case(seed=3):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(3, 1, 16, 20, generator=g) * 9 + 0.5
    valid = torch.rand(3, 1, 16, 20, generator=g) > 0.25
    pred = torch.rand(3, 1, 8, 10, generator=g) + 0.1
    return pred, gt, valid


def test_ssi_loss_is_invariant_to_scale_and_shift_of_the_prediction():
    pred, gt, valid = _ssi_case()
    base = float(ssi_loss(pred, gt, valid))
    assert base > 0.01
    # a different scale and shift per image, negative scale included
    s = torch.tensor([0.05, 7.0, -3.0]).view(3, 1, 1, 1)
    t = torch.tensor([2.0, -2.0, 0.3]).view(3, 1, 1, 1)
    assert float(ssi_loss(s * pred + t, gt, valid)) == pytest.approx(base, rel=1e-4)
    # but not to a non-affine change: an exact disparity squared is penalised
    good = 2.0 / gt + 1.0
    assert float(ssi_loss(good, gt, valid)) < 1e-6 < 1e-2 < float(ssi_loss(good ** 2, gt, valid))


def test_ssi_loss_is_zero_at_an_affine_disparity_and_not_at_depth():
    _, gt, valid = _ssi_case(4)
    s = torch.tensor([0.2, 3.0, 11.0]).view(3, 1, 1, 1)
    t = torch.tensor([1.0, -0.05, 0.0]).view(3, 1, 1, 1)
    assert float(ssi_loss(s / gt + t, gt, valid)) < 1e-6
    assert float(ssi_loss(s / gt + t, gt, valid, grad_weight=0.0)) < 1e-9
    # depth (not disparity) is not an affine function of disparity: a real loss remains
    assert float(ssi_loss(gt, gt, valid)) > 1e-3
    with pytest.raises(ValueError, match='two valid pixels'):
        ssi_loss(gt, gt, torch.zeros_like(valid))


def test_ssi_loss_matches_the_closed_form_on_one_image():
    """Data term: least-squares aligned MSE / 2 (MiDaS's batch reduction), computed by hand."""
    pred, gt, valid = _ssi_case(5)
    up = torch.nn.functional.interpolate(pred, size=gt.shape[-2:], mode='bilinear',
                                         align_corners=True)
    total, count = 0.0, 0
    for i in range(3):
        m = valid[i, 0].numpy()
        x, y = up[i, 0].numpy()[m].astype(np.float64), 1.0 / gt[i, 0].numpy()[m]
        a = np.stack([x, np.ones_like(x)], 1)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        total += float(np.sum((a @ coef - y) ** 2))
        count += int(m.sum())
    got = float(ssi_loss(pred, gt, valid, grad_weight=0.0))
    assert got == pytest.approx(total / (2 * count), rel=1e-3)


def test_relative_output_option_is_checked():
    assert config_from_dict({'model': {'variant': 'relative',
                                       'relative_output': 'affine_disparity'}}
                            ).model.relative_output == 'affine_disparity'
    with pytest.raises(ValueError, match='relative_output'):
        config_from_dict({'model': {'relative_output': 'disparity'}})
