"""AVS-Net model: shapes, bin ranges, the echo path, and agreement with ZoeDepth's head."""

from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from training.config import ModelConfig
from training.evaluation import forward_batch
from training.models import metric_bins
from training.models.avs_net import AVSNet, build_model, RelativeDepthNet
from training.models.metric_bins import (_resize as nn_resize, AttractorLayer, keeps_order,
                                         LogBinomial, MetricBinsHead)

MIN_DEPTH, MAX_DEPTH = 0.1, 12.0


def tiny_model_config(variant: str = 'av', size=(64, 64), **kw) -> ModelConfig:
    """Return a few-channel AVS-Net config (the real layout, smaller widths; runs in ms)."""
    values = {'variant': variant, 'image_size': size, 'backbone': 'tf_efficientnet_lite0',
              'features': 16, 'echo_backbone': 'resnet10t', 'attention_heads': 4,
              'attention_dropout': 0.0, 'n_bins': 16, 'bin_embedding_dim': 32,
              'min_depth': MIN_DEPTH, 'max_depth': MAX_DEPTH}
    values.update(kw)
    return ModelConfig(**values)


class RandomDepthSet(Dataset):
    """Samples in the dataset dict format with a depth that depends on image and echo."""

    def __init__(self, n: int = 8, size=(64, 64), spec=(32, 32), seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.image = torch.rand(n, 3, *size, generator=g)
        self.echo_spec = torch.rand(n, 2, *spec, generator=g)
        scale = 1.0 + 4.0 * self.echo_spec.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)
        self.depth = (0.5 + self.image.mean(1, keepdim=True)) * scale
        self.valid = torch.ones_like(self.depth, dtype=torch.bool)
        self.valid[:, :, :2] = False
        self.depth[~self.valid] = 0.0

    def __len__(self) -> int:
        return self.image.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {'image': self.image[i], 'echo_spec': self.echo_spec[i], 'depth': self.depth[i],
                'valid': self.valid[i], 'index': i}


@pytest.mark.parametrize('size', [(64, 64), (64, 96), (96, 128)])
@pytest.mark.parametrize('variant', ['av', 'v', 'relative'])
def test_output_shapes(variant, size):
    torch.manual_seed(0)
    model = build_model(tiny_model_config(variant, size)).eval()
    image = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = model(image, torch.rand(2, 2, 32, 40)) if variant == 'av' else model(image)
    if variant == 'relative':
        assert isinstance(model, RelativeDepthNet)
        assert out['relative'].shape == (2, 1, *size)
        assert bool((out['relative'] > 0).all())
    else:
        assert out['depth'].shape == (2, 1, *size)
        assert out['bin_centers'].shape == (2, 16, *size)
        assert out['relative'].shape == (2, 1, *size)


@pytest.mark.parametrize('variant', ['av', 'v'])
def test_bins_inside_range_and_depth_positive(variant):
    torch.manual_seed(1)
    model = build_model(tiny_model_config(variant)).eval()
    image = torch.rand(3, 3, 64, 64) * 3 - 1  # out-of-range pixels push the head hard
    with torch.no_grad():
        out = model(image, torch.rand(3, 2, 32, 32) * 50) if variant == 'av' else model(image)
    centres, depth = out['bin_centers'], out['depth']
    assert float(centres.min()) >= MIN_DEPTH and float(centres.max()) <= MAX_DEPTH
    assert bool(torch.isfinite(depth).all()) and float(depth.min()) > 0
    assert float(depth.min()) >= MIN_DEPTH - 1e-5 and float(depth.max()) <= MAX_DEPTH + 1e-5


def test_softplus_bins_are_positive():
    torch.manual_seed(2)
    model = build_model(tiny_model_config('v', bin_centers_type='softplus')).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert float(out['bin_centers'].min()) > 0 and float(out['depth'].min()) > 0


def test_echo_changes_av_output_but_not_v():
    torch.manual_seed(3)
    av = build_model(tiny_model_config('av')).eval()
    v = build_model(tiny_model_config('v')).eval()
    data = RandomDepthSet(n=2)
    batch = {'image': data.image, 'echo_spec': data.echo_spec}
    other = {'image': data.image, 'echo_spec': torch.rand(2, 2, 32, 32) * 5}
    dev = torch.device('cpu')
    with torch.no_grad():
        av1, av2 = forward_batch(av, batch, dev)['depth'], forward_batch(av, other, dev)['depth']
        v1, v2 = forward_batch(v, batch, dev)['depth'], forward_batch(v, other, dev)['depth']
    assert float((av1 - av2).abs().max()) > 1e-4
    assert torch.equal(v1, v2)
    assert not any('echo' in n or 'fusion' in n for n, _ in v.named_parameters())


def test_bad_inputs_are_named():
    av = AVSNet(tiny_model_config('av')).eval()
    v = AVSNet(tiny_model_config('v')).eval()
    with pytest.raises(ValueError, match='needs echo_spec'):
        av(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match='takes no echo_spec'):
        v(torch.rand(1, 3, 64, 64), torch.rand(1, 2, 32, 32))
    with pytest.raises(ValueError, match='multiple of 32'):
        v(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError, match=r'echo_spec must be \(B, 2'):
        av(torch.rand(1, 3, 64, 64), torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match='variant'):
        ModelConfig(variant='audio')


def test_head_matches_zoedepth_reference_layout():
    # ZoeDepth's ZoeD_N (softplus) head: 707,777 parameters with MiDaS-small widths, 478,145
    # with DPT widths, 48 state_dict keys (counted on isl-org/ZoeDepth's model code).
    small = MetricBinsHead([512, 256, 128, 64, 64], bin_centers_type='softplus')
    dpt = MetricBinsHead([256] * 5, bin_centers_type='softplus')
    assert sum(p.numel() for p in small.parameters()) == 707_777
    assert sum(p.numel() for p in dpt.parameters()) == 478_145
    keys = set(small.state_dict())
    assert len(keys) == 48
    assert {'conv2.weight', 'seed_bin_regressor._net.2.bias', 'attractors.3._net.0.weight',
            'conditional_log_binomial.log_binomial_transform.k_idx',
            'conditional_log_binomial.log_binomial_transform.K_minus_1',
            'conditional_log_binomial.mlp.2.weight'} <= keys


def test_attractors_run_with_the_alpha_zoedepths_layers_use():
    # ZoeDepth's AttractorLayer calls inv_attractor(dx) without its configured alpha (1000), so
    # released heads run alpha 300, gamma 2. The defaults must do the same.
    cfg = ModelConfig()
    assert (cfg.attractor_alpha, cfg.attractor_gamma, cfg.attractor_type) == (300.0, 2, 'inv')
    head = AVSNet(tiny_model_config('v')).head
    assert {(a.alpha, a.gamma) for a in head.attractors} == {(300.0, 2)}
    torch.manual_seed(0)
    layer = AttractorLayer(16, 4, 1e-3, 10.0, True, cfg.attractor_alpha, cfg.attractor_gamma)
    x, emb = torch.randn(1, 16, 4, 4), torch.randn(1, 16, 2, 2)
    b_prev = torch.sort(torch.rand(1, 8, 2, 2), dim=1).values  # ascending, as the seed's
    # ZoeDepth's forward, written out: attractor points from the first of each channel pair,
    # centres moved by mean_i dx_i / (1 + 300 dx_i^2).
    a = layer._net(x + F.interpolate(emb, (4, 4), mode='bilinear', align_corners=True))
    a = (a + 1e-3).view(1, 4, 2, 4, 4)[:, :, 0]
    centres = F.interpolate(b_prev, (4, 4), mode='bilinear', align_corners=True)
    dx = a.unsqueeze(2) - centres.unsqueeze(1)
    expected = centres + (dx / (1 + 300.0 * dx ** 2)).mean(dim=1)
    b, metric = layer(x, b_prev, emb)
    torch.testing.assert_close(b, expected)
    sorted_metric, _ = torch.sort((10.0 - 1e-3) * expected + 1e-3, dim=1)
    torch.testing.assert_close(metric, sorted_metric.clamp(1e-3, 10.0))
    layer.alpha = 1000.0  # ZoeDepth's configured value gives another head
    assert not torch.allclose(layer(x, b_prev, emb)[0], expected)


def test_midas_small_layout():
    # MiDaS v2.1 small (isl-org/MiDaS) = 21.32 M parameters, including refinenet4's unused
    # first residual unit (2 x (512*512*9 + 512) parameters) that this implementation omits.
    model = AVSNet(ModelConfig(variant='v', image_size=(64, 64), min_depth=1e-3,
                               max_depth=10.0, bin_centers_type='softplus'))
    core = sum(p.numel() for p in model.core.parameters())
    assert round((core + 2 * (512 * 512 * 9 + 512)) / 1e6, 2) == 21.32
    assert model.core.output_channels == [512, 256, 128, 64, 64]


def test_log_binomial_is_a_distribution():
    lb = LogBinomial(64)
    p = torch.tensor([[[0.01, 0.5], [0.9, 0.999]]])
    probs = lb(p, torch.full((1, 1, 2, 2), 0.5))
    assert probs.shape == (1, 64, 2, 2)
    assert torch.allclose(probs.sum(1), torch.ones(1, 2, 2), atol=1e-5)
    # The mode moves with p: low p puts mass on low bins.
    assert int(probs[0, :, 0, 0].argmax()) < int(probs[0, :, 1, 1].argmax())


def test_single_stride_vit_backbone_is_reassembled():
    # ViT maps are all at stride 16; the DPT-style reassembly brings them to 4, 8, 16, 32.
    cfg = tiny_model_config('v', backbone='vit_tiny_patch16_224',
                            backbone_kwargs={'img_size': 64, 'out_indices': [2, 5, 8, 11]})
    model = build_model(cfg).eval()
    assert model.core.pretrained.feature_info.reduction() == [16, 16, 16, 16]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert out['depth'].shape == (1, 1, 64, 64)


def _head_inputs(widths, size, n: int = 2, gain: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    bottleneck = torch.randn(n, widths[0], h // 32, w // 32, generator=g) * gain
    blocks = [torch.randn(n, c, h // s, w // s, generator=g) * gain
              for c, s in zip(widths[1:], (16, 8, 4, 2))]
    out_conv = torch.relu(torch.randn(n, 32, h, w, generator=g)) * gain
    relative = torch.relu(torch.randn(n, 1, h, w, generator=g))
    return bottleneck, blocks, out_conv, relative


@pytest.mark.parametrize('bins', ['normed', 'softplus'])
@pytest.mark.parametrize('gain', [1.0, 30.0])
def test_head_forward_equals_zoedepth_literal_form(bins, gain):
    # The fast forward (conv before resize, bins-last log-binomial, no provably idle sort)
    # must give ZoeDepth's numbers up to float rounding, also when large features push p and
    # the temperature to their clamps: its float32 error against ZoeDepth's form in float64
    # is no larger than that of ZoeDepth's form run in float32.
    torch.manual_seed(4)
    widths = [64, 32, 16, 16, 16]
    head = MetricBinsHead(widths, n_bins=24, bin_embedding_dim=32, min_depth=0.1,
                          max_depth=30.0, bin_centers_type=bins).eval()
    args = _head_inputs(widths, (64, 96), gain=gain)
    with torch.no_grad():
        fast, ref = head(*args), head.forward_reference(*args)
        bottleneck, blocks, out_conv, relative = args
        exact = head.double().forward_reference(
            bottleneck.double(), [b.double() for b in blocks], out_conv.double(),
            relative.double())['depth']
    assert torch.allclose(fast['bin_centers'], ref['bin_centers'], rtol=0, atol=1e-5)
    err_fast = float((fast['depth'].double() - exact).abs().max())
    err_ref = float((ref['depth'].double() - exact).abs().max())
    assert err_fast <= 1.5 * err_ref + 1e-6, (err_fast, err_ref)
    assert torch.allclose(fast['depth'], ref['depth'], rtol=1e-4, atol=1e-4)
    assert float(ref['depth'].std()) > 0  # a non-trivial map was compared


def test_log_binomial_expectation_equals_softmax_form():
    lb = LogBinomial(64)
    g = torch.Generator().manual_seed(5)
    p = torch.cat([torch.tensor([0.0, 1e-6, 0.5, 1 - 1e-6, 1.0]), torch.rand(27, generator=g)])
    t = torch.cat([torch.tensor([0.0212, 50.0, 0.0212, 0.0212, 1.0]),
                   0.0212 + 50 * torch.rand(27, generator=g)])
    p, t = p.view(1, 1, 4, 8), t.view(1, 1, 4, 8)
    values = torch.sort(torch.rand(1, 64, 4, 8, generator=g) * 30, dim=1)[0]
    ref = (lb(p[:, 0], t) * values).sum(1, keepdim=True)
    got = lb(p[:, 0], t[:, 0], values.permute(0, 2, 3, 1))
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)
    with mock.patch('torch.onnx.is_in_onnx_export', return_value=True):
        exported = lb(p[:, 0], t[:, 0], values.permute(0, 2, 3, 1))  # the Softmax form
    assert torch.allclose(exported, ref, rtol=1e-5, atol=1e-5)


def test_exported_softplus_is_onnx_runtimes_formula():
    # The export writes Softplus as relu(x) + log(exp(-|x|) + 1), ONNX Runtime's own
    # kernel formula; it must match torch's softplus (log1p, linear above 20) to rounding,
    # with no overflow at the extremes.
    x = torch.cat([torch.tensor([-1e4, -100.0, -20.0, -1e-7, 0.0, 1e-7, 20.0, 21.0, 100.0,
                                 1e4]), torch.linspace(-30, 30, 601)])
    ref = torch.nn.functional.softplus(x)
    with mock.patch('torch.onnx.is_in_onnx_export', return_value=True):
        got = metric_bins._softplus(x, torch.nn.Softplus())
    assert torch.isfinite(got).all()
    assert torch.allclose(got, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('kind', ['inv', 'exp'])
@pytest.mark.parametrize('gain', [1.0, 100.0])
def test_attractor_keeps_ascending_centres_ascending(kind, gain):
    # keeps_order's proof: with 'mean' and gamma 2 the update is monotone, so ascending
    # centres stay ascending and ZoeDepth's sort changes nothing (up to rounding).
    torch.manual_seed(6)
    layer = AttractorLayer(32, 8, 0.1, 30.0, normed=True, attractor_type=kind).eval()
    assert layer.keeps_order
    g = torch.Generator().manual_seed(7)
    widths = torch.rand(2, 48, 4, 6, generator=g) + 1e-3
    b_prev = torch.cumsum(widths / widths.sum(1, keepdim=True), dim=1) - 0.5 * widths / \
        widths.sum(1, keepdim=True)
    x = torch.randn(2, 32, 8, 12, generator=g) * gain
    prev = torch.randn(2, 32, 4, 6, generator=g) * gain
    with torch.no_grad():
        b, centres = layer(x, b_prev, prev)
        _, sorted_centres = layer(x, b_prev, prev, sort=True)
    assert float((b[:, 1:] - b[:, :-1]).min()) >= -1e-6
    assert torch.allclose(centres, sorted_centres, rtol=0, atol=1e-5)
    assert not torch.equal(b, nn_resize(b_prev, b.shape[-2:]))  # the attractors moved them


def test_sort_stays_where_order_is_not_proved():
    assert keeps_order('mean', 2, 1000.0)
    assert not keeps_order('sum', 2, 1000.0)
    assert not keeps_order('mean', 1, 1000.0)
    assert not keeps_order('mean', 2, -1.0)
    layer = AttractorLayer(8, 2, 0.1, 10.0, normed=True, kind='sum')
    assert not layer.keeps_order
