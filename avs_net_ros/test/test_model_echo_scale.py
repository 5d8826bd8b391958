"""The echo scale path: the auxiliary scale loss, the anchoring, and the time-of-flight encoder."""

import math

import pytest
from test_model_avs import MAX_DEPTH, MIN_DEPTH, tiny_model_config
import torch
from training.losses import echo_scale_loss, log_mean_depth
from training.models.avs_net import anchor_scale, build_model
from training.models.echo_encoder import TimeOfFlightEncoder


def test_echo_scale_loss_is_the_log_distance_to_the_geometric_mean():
    """Zero at ln(geometric mean of valid gt); |ln 2| when the scale is off by two."""
    gt = torch.tensor([1.0, 4.0, 0.0, 2.0]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    gt[1] *= 3.0
    valid = gt > 0
    target = log_mean_depth(gt, valid)
    assert target[0].item() == pytest.approx(math.log(2.0))   # (1 * 4 * 2) ** (1 / 3)
    assert target[1].item() == pytest.approx(math.log(6.0))
    assert echo_scale_loss(target, gt, valid).item() == pytest.approx(0.0, abs=1e-6)
    off = target + torch.tensor([math.log(2.0), -math.log(2.0)])
    assert echo_scale_loss(off, gt, valid).item() == pytest.approx(math.log(2.0), rel=1e-5)
    with pytest.raises(ValueError, match='valid pixel in every image'):
        echo_scale_loss(target, gt, torch.zeros_like(valid))


def test_anchoring_sets_the_geometric_mean_and_keeps_the_structure():
    """After anchoring exp(mean ln depth) = exp(log_scale); ratios between pixels are kept."""
    depth = torch.rand(3, 1, 8, 8) * 2 + 0.5
    log_scale = torch.log(torch.tensor([1.0, 3.0, 7.0]))
    out = anchor_scale(depth, log_scale, MIN_DEPTH, 100.0)   # nothing clamped here
    gm = torch.exp(torch.log(out).mean(dim=(1, 2, 3)))
    assert torch.allclose(gm, torch.tensor([1.0, 3.0, 7.0]), rtol=1e-5)
    assert torch.allclose(out / out[:, :, :1, :1], depth / depth[:, :, :1, :1], rtol=1e-5)
    assert float(anchor_scale(depth, torch.full((3,), 10.0), MIN_DEPTH, MAX_DEPTH).max()) \
        == pytest.approx(MAX_DEPTH)


def test_time_of_flight_encoder_ignores_the_recording_gain():
    """Log magnitude minus its maximum: the same echo 20 dB louder gives the same output."""
    torch.manual_seed(0)
    enc = TimeOfFlightEncoder(out_channels=32, freq_bins=16, width=16).eval()
    spec = torch.rand(2, 2, 32, 40) + 1e-3
    tokens, log_scale = enc(spec, (2, 3))
    tokens10, log_scale10 = enc(10.0 * spec, (2, 3))
    assert tokens.shape == (2, 32, 2, 3) and log_scale.shape == (2,)
    assert torch.allclose(log_scale, log_scale10, atol=1e-5)
    assert torch.allclose(tokens, tokens10, atol=1e-5)
    with pytest.raises(ValueError, match='k \\* 16'):
        enc(torch.rand(1, 2, 24, 40), (2, 3))


@pytest.mark.parametrize('encoder,mode', [('resnet', 'aux'), ('tof', 'anchor')])
def test_av_models_with_an_echo_scale_return_it_and_train_it(encoder, mode):
    """The echo log-scale is an output, and the scale loss reaches the echo branch."""
    model = build_model(tiny_model_config('av', echo_encoder=encoder, echo_scale=mode))
    out = model(torch.rand(2, 3, 64, 64), torch.rand(2, 2, 32, 64))
    assert out['echo_log_scale'].shape == (2,)
    assert float(out['depth'].min()) >= MIN_DEPTH and float(out['depth'].max()) <= MAX_DEPTH
    gt = torch.full((2, 1, 64, 64), 5.0)
    echo_scale_loss(out['echo_log_scale'], gt, gt > 0).backward()
    grads = [p.grad for p in model.echo_encoder.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_echo_scale_settings_are_checked_by_name():
    """Unknown modes, and a time-of-flight encoder without its scale head, are refused."""
    with pytest.raises(ValueError, match='echo_scale must be one of'):
        tiny_model_config('av', echo_scale='both')
    with pytest.raises(ValueError, match="echo_encoder must be 'resnet' or 'tof'"):
        tiny_model_config('av', echo_encoder='lstm')
    with pytest.raises(ValueError, match="needs model.echo_scale 'aux' or 'anchor'"):
        build_model(tiny_model_config('av', echo_encoder='tof'))
