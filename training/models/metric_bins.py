"""ZoeDepth's metric-bins head (isl-org/ZoeDepth, zoedepth/models/layers), reimplemented.

Data flow, for decoder maps at strides 32 (bottleneck), 16, 8, 4, 2 and the 32-channel
``out_conv`` at full resolution (H, W):

1. ``conv2`` (1x1) on the bottleneck -> x_d0.
2. Seed bin regressor on x_d0 -> n_bins centres (B, n_bins, H/32, W/32).
3. Seed projector on x_d0, projectors on r4..r1 -> 128-d bin embeddings.
4. Four attractor layers (16, 8, 4, 1 attractors at strides 16, 8, 4, 2) move the centres
   towards predicted attractor points: c += mean_i dx_i / (1 + alpha dx_i^gamma) ("inv");
   alpha 300, gamma 2 by default, the values ZoeDepth's layers actually run with (they call
   the attractor function without the configured alpha).
5. Conditional log-binomial over the bins from concat(out_conv, relative) conditioned on the
   last embedding; temperature in [min_temp, max_temp].
6. depth = sum_k p_k c_k at (H, W).

Steps 5 and 6 are evaluated at the out_conv resolution, which is the network input's, as in
ZoeDepth (isl-org/ZoeDepth, zoedepth/models/base_models/midas.py, ``attach_hooks``: the
``out_conv`` hook is child 3 of MiDaS's ``scratch.output_conv``, the ReLU after its x2
upsample, so stride 1). The forward pass computes them in a form that gives the same numbers
up to float rounding but is far cheaper, in ONNX Runtime above all (``MetricBinsHead.forward``
lists the rewrites); ``forward_reference`` is ZoeDepth's literal form, kept for the tests
that compare the two.

Two bin parameterisations, as in ZoeDepth: ``'softplus'`` (ZoeD_N: unbounded positive centres)
and ``'normed'`` (ZoeD_K: widths normalised to [min_depth, max_depth], attractors in
normalised space, centres sorted (skipped where proved a no-op, ``keeps_order``) and
clipped). The default is ``'normed'``: the exported contract states a [min_depth, max_depth]
range and this variant guarantees it.
ZoeDepth's ignored ``memory_efficient`` flag is not reproduced (the broadcast form is used).
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

BIN_TYPES = ('normed', 'softplus')


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    factor = _integer_factor(x.shape[-2:], size) if torch.onnx.is_in_onnx_export() else None
    if factor is not None:
        # The same resize (align_corners places samples by the sizes alone), exported with
        # constant scales instead of sizes read from the input's shape at run time: ONNX
        # Runtime then keeps the neighbouring convolutions in its blocked layout.
        return F.interpolate(x, scale_factor=float(factor), mode='bilinear', align_corners=True)
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=True)


def _integer_factor(have: Sequence[int], size: Sequence[int]) -> Optional[int]:
    """Return the factor k when ``size`` is ``have`` times one integer k > 1, else None."""
    h, w = (int(v) for v in have)
    H, W = (int(v) for v in size)
    if H % h == 0 and W % w == 0 and H // h == W // w > 1:
        return H // h
    return None


class _ResizeBinsLast(torch.autograd.Function):
    """``_resize`` of a (B, h, w, K) tensor to (B, H, W, K), exported as one ONNX Resize.

    ONNX Runtime resizes an NHWC tensor (scales 1 on batch and channels) about 4x faster
    than it resizes the NCHW tensor and transposes the result (measured: 6 vs 22 ms for
    64 x 128 x 128 -> 256 x 256, identical values). The TorchScript exporter would write
    Transpose, Resize, Transpose, which ONNX Runtime does not fuse, so the Resize is
    written directly. Used only while exporting (``resize_bins_last``).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return _resize(x.permute(0, 3, 1, 2), (height, width)).permute(0, 2, 3, 1)

    @staticmethod
    def symbolic(g, x, height: int, width: int):
        def const(values, dtype=torch.int64):
            return g.op('Constant', value_t=torch.tensor(values, dtype=dtype))
        absent = g.op('prim::Constant')
        absent.setType(torch._C.OptionalType.ofTensor())
        have = x.type().sizes() if x.type().sizes() else None
        factor = _integer_factor(have[1:3], (height, width)) if have else None
        if factor is not None:  # constant scales: no shape arithmetic at run time
            return g.op('Resize', x, absent, const([1.0, factor, factor, 1.0], torch.float32),
                        mode_s='linear', coordinate_transformation_mode_s='align_corners')
        shape = g.op('Shape', x)
        batch = g.op('Slice', shape, const([0]), const([1]))
        bins = g.op('Slice', shape, const([3]), const([4]))
        sizes = g.op('Concat', batch, const([height, width]), bins, axis_i=0)
        # roi and scales are left out (empty input names), not given as empty constants,
        # which a float16 conversion would turn into casts of unknown size.
        return g.op('Resize', x, absent, absent, sizes, mode_s='linear',
                    coordinate_transformation_mode_s='align_corners')


def resize_bins_last(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Return ``_resize(x, size)`` (x is (B, K, h, w)) permuted to (B, H, W, K)."""
    if torch.onnx.is_in_onnx_export():
        return _ResizeBinsLast.apply(x.permute(0, 2, 3, 1), int(size[0]), int(size[1]))
    return _resize(x, size).permute(0, 2, 3, 1)


def _power(x: torch.Tensor, gamma: int) -> torch.Tensor:
    # x * x is what pow(x, 2) computes, exactly, and ONNX Runtime runs Mul faster than Pow.
    # Only in the export: in training, x * x would add the two gradient halves in another
    # order than pow's 2x and so change trained weights by rounding.
    if gamma == 2 and torch.onnx.is_in_onnx_export():
        return x * x
    return x.pow(gamma)


def _softplus(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    # ONNX Runtime's Softplus kernel evaluates x + log(exp(-x) + 1) for x > 0 and
    # log(exp(x) + 1) otherwise, one element at a time; the export writes that formula as
    # element-wise operators, which it runs faster (1.5 to 0.4 ms at 256x256, most of it Log).
    if torch.onnx.is_in_onnx_export():
        return torch.relu(x) + torch.log(torch.exp(-x.abs()) + 1.0)
    return module(x)


def inv_attractor(dx: torch.Tensor, alpha: float = 300.0, gamma: int = 2) -> torch.Tensor:
    """Return dx / (1 + alpha * dx^gamma) (ZoeDepth's "inv" attractor)."""
    return dx / (1 + alpha * _power(dx, gamma))


def exp_attractor(dx: torch.Tensor, alpha: float = 300.0, gamma: int = 2) -> torch.Tensor:
    """Return exp(-alpha * |dx|^gamma) * dx (ZoeDepth's "exp" attractor)."""
    return torch.exp(-alpha * _power(dx.abs(), gamma)) * dx


def _mlp(cin: int, hidden: int, cout: int, final: nn.Module) -> nn.Sequential:
    """conv1x1 -> ReLU -> conv1x1 -> final (ZoeDepth keeps these under ``_net``)."""
    return nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, cout, 1), final)


class SeedBinRegressor(nn.Module):
    """Seed bin centres from the bottleneck; returns (b_prev, metric centres)."""

    def __init__(self, in_features: int, n_bins: int, min_depth: float, max_depth: float,
                 normed: bool, mlp_dim: int = 256) -> None:
        super().__init__()
        self.normed = normed
        self.min_depth, self.max_depth = min_depth, max_depth
        self._net = _mlp(in_features, mlp_dim, n_bins,
                         nn.ReLU(inplace=True) if normed else nn.Softplus())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        b = self._net(x)
        if not self.normed:
            return b, b
        widths = b + 1e-3
        widths = widths / widths.sum(dim=1, keepdim=True)
        widths = (self.max_depth - self.min_depth) * widths
        widths = F.pad(widths, (0, 0, 0, 0, 1, 0), mode='constant', value=self.min_depth)
        edges = torch.cumsum(widths, dim=1)
        centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
        # The attractors of the normed variant work on normalised centres.
        return (centres - self.min_depth) / (self.max_depth - self.min_depth), centres


class Projector(nn.Module):
    """Bin embedding: conv1x1 -> ReLU -> conv1x1, no final activation."""

    def __init__(self, in_features: int, out_features: int, mlp_dim: int = 128) -> None:
        super().__init__()
        self._net = _mlp(in_features, mlp_dim, out_features, nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._net(x)


def keeps_order(kind: str, gamma: int, alpha: float) -> bool:
    """Whether an attractor update keeps ascending bin centres ascending (the sort is a no-op).

    The update is c_j -> g(c_j) = c_j + mean_i f(a_i - c_j), the same function g for every
    bin j of a pixel. With the mean and gamma = 2, g is non-decreasing: g'(c) = 1 -
    mean_i f'(a_i - c), and f' <= 1 everywhere for both kernels when alpha >= 0 ("inv":
    f'(x) = (1 - alpha x^2) / (1 + alpha x^2)^2; "exp": f'(x) = exp(-alpha x^2)
    (1 - 2 alpha x^2)). The seed centres are ascending (midpoints of a cumulative sum of
    positive widths), a bilinear resize is a positive combination of the same neighbours
    for every bin, and the metric mapping and clamp are increasing, so by induction every
    stage's centres are ascending and ZoeDepth's sort changes nothing; in float arithmetic
    two centres closer than the rounding error may swap, so skipping the sort changes the
    output by rounding at most (``test_model_avs``: sorted and unsorted centres agree on
    random and extreme inputs). With 'sum' (g' can be negative), another gamma or a negative
    alpha (f' exceeds 1 or has a pole) nothing is proved and the sort stays.
    """
    return kind == 'mean' and int(gamma) == 2 and float(alpha) >= 0.0


class AttractorLayer(nn.Module):
    """One attractor stage; returns (b_prev for the next stage, metric centres)."""

    def __init__(self, in_features: int, n_attractors: int, min_depth: float,
                 max_depth: float, normed: bool, alpha: float = 300.0, gamma: int = 2,
                 kind: str = 'mean', attractor_type: str = 'inv', mlp_dim: int = 128) -> None:
        super().__init__()
        if kind not in ('mean', 'sum') or attractor_type not in ('inv', 'exp'):
            raise ValueError(f'attractor kind must be mean|sum and type inv|exp, got {kind!r}, '
                             f'{attractor_type!r}')
        self.n_attractors, self.normed = n_attractors, normed
        self.min_depth, self.max_depth = min_depth, max_depth
        self.alpha, self.gamma = float(alpha), int(gamma)
        self.kind = kind
        self.dist = inv_attractor if attractor_type == 'inv' else exp_attractor
        self.keeps_order = keeps_order(kind, self.gamma, self.alpha)
        out = 2 * n_attractors if normed else n_attractors
        self._net = _mlp(in_features, mlp_dim, out,
                         nn.ReLU(inplace=True) if normed else nn.Softplus())

    def forward(self, x: torch.Tensor, b_prev: torch.Tensor, prev_embedding: torch.Tensor,
                sort: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Move the centres; ``sort`` sorts them even where ``keeps_order`` proves it a no-op."""
        x = x + _resize(prev_embedding, x.shape[-2:])
        a = self._net(x)
        if self.normed:
            n, _, h, w = a.shape
            # ZoeDepth computes a pair normalisation and then keeps the raw first channel.
            a = (a + 1e-3).view(n, self.n_attractors, 2, h, w)[:, :, 0]
        b = _resize(b_prev, x.shape[-2:])
        delta = self.dist(a.unsqueeze(2) - b.unsqueeze(1), self.alpha, self.gamma)
        if self.n_attractors == 1 and torch.onnx.is_in_onnx_export():
            delta = delta[:, 0]  # mean and sum of one: no reduction pass over (B, K, H, W)
        else:
            delta = delta.mean(dim=1) if self.kind == 'mean' else delta.sum(dim=1)
        b = b + delta
        if not self.normed:
            return b, b
        centres = (self.max_depth - self.min_depth) * b + self.min_depth
        if sort or not self.keeps_order:
            centres, _ = torch.sort(centres, dim=1)
        return b, torch.clamp(centres, self.min_depth, self.max_depth)


def _log_binom(n: torch.Tensor, k: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    n = n + eps
    k = k + eps
    return n * torch.log(n) - k * torch.log(k) - (n - k) * torch.log(n - k + eps)


class LogBinomial(nn.Module):
    """Softmax over k of log Binomial(K-1, p)(k) / t, ZoeDepth's Stirling form."""

    def __init__(self, n_classes: int = 256) -> None:
        super().__init__()
        self.K = n_classes
        self.register_buffer('k_idx', torch.arange(0, n_classes).view(1, -1, 1, 1))
        self.register_buffer('K_minus_1', torch.tensor([n_classes - 1]).view(1, -1, 1, 1))

    def forward(self, p: torch.Tensor, t: torch.Tensor, values: Optional[torch.Tensor] = None,
                eps: float = 1e-4) -> torch.Tensor:
        """Return (B, K, H, W) probabilities for p (B, H, W) and t (B, 1, H, W).

        With ``values`` (B, H, W, K), bins last, return their expectation sum_k prob_k
        values_k, (B, 1, H, W), instead (``_expectation``); p and t are then (B, H, W).
        """
        if values is not None:
            return self._expectation(p, t, values, eps)
        p = p.unsqueeze(1)
        one_minus_p = torch.clamp(1.0 - p, min=eps, max=1.0)
        p = torch.clamp(p, min=eps, max=1.0)
        y = (_log_binom(self.K_minus_1, self.k_idx) + self.k_idx * torch.log(p)
             + (self.K - 1 - self.k_idx) * torch.log(one_minus_p))
        return torch.softmax(y / t, dim=1)

    def _expectation(self, p: torch.Tensor, t: torch.Tensor, values: torch.Tensor,
                     eps: float) -> torch.Tensor:
        """Return sum_k prob_k values_k for p, t (B, H, W) and values (B, H, W, K).

        The same number as ZoeDepth's ``(probabilities * values).sum`` over the bins up to
        float rounding, computed with the bin axis last: the logits are one matrix product of
        the per-pixel coefficients (1/t, logit(p)/t) with the per-bin constants (log C(K-1,
        k), k); the term (K-1) log(1-p) / t, equal for every bin, cancels
        in the softmax and is left out; the softmax is max-shifted exponentials whose weighted
        and plain sums are divided once per pixel, so no (B, K, H, W) probability tensor is
        made. ONNX Runtime runs its Softmax over a non-last axis through transposes, the
        largest cost of the head before.
        """
        k = self.k_idx.to(p.dtype)
        log_binom = _log_binom(self.K_minus_1.to(p.dtype), k)
        const = torch.cat([log_binom, k], dim=2).view(self.K, 2).t()  # (2, K)
        one_minus_p = torch.clamp(1.0 - p, min=eps, max=1.0)
        p = torch.clamp(p, min=eps, max=1.0)
        inv_t = 1.0 / t
        coeff = torch.stack([inv_t, (torch.log(p) - torch.log(one_minus_p)) * inv_t], dim=-1)
        logits = coeff @ const  # (B, H, W, K)
        if torch.onnx.is_in_onnx_export():
            # One Softmax operator instead of max, shift, exp, sum and divide: rounding
            # differs (normalised before the weighted sum), and ONNX Runtime runs it faster.
            return (torch.softmax(logits, dim=-1) * values).sum(dim=-1).unsqueeze(1)
        e = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
        num = (e * values).sum(dim=-1)
        return (num / e.sum(dim=-1)).unsqueeze(1)


class ConditionalLogBinomial(nn.Module):
    """Per-pixel (p, temperature) from concat(features, condition) -> bin probabilities."""

    def __init__(self, in_features: int, condition_dim: int, n_classes: int,
                 bottleneck_factor: int = 2, p_eps: float = 1e-4, max_temp: float = 50.0,
                 min_temp: float = 1e-7) -> None:
        super().__init__()
        self.p_eps, self.max_temp, self.min_temp = p_eps, max_temp, min_temp
        self.in_features = in_features
        self.log_binomial_transform = LogBinomial(n_classes)
        bottleneck = (in_features + condition_dim) // bottleneck_factor
        self.mlp = nn.Sequential(nn.Conv2d(in_features + condition_dim, bottleneck, 1),
                                 nn.GELU(), nn.Conv2d(bottleneck, 4, 1), nn.Softplus())

    def _p_t(self, pt: torch.Tensor, dim: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (p, t) from the MLP's four channels along ``dim``, 1 or -1.

        The channel axis (1) is kept, size one; the last axis (-1) is dropped: ONNX Runtime
        runs element-wise operators on (B, H, W, 1) tensors about 90 times slower than on the
        same values shaped (B, H, W).
        """
        c = [(pt.narrow(1, i, 1) if dim == 1 else pt[..., i]) + self.p_eps for i in range(4)]
        t = c[2] / (c[2] + c[3])
        return c[0] / (c[0] + c[1]), (self.max_temp - self.min_temp) * t + self.min_temp

    def forward(self, x: torch.Tensor, cond: torch.Tensor,
                values: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return (B, K, H, W) probabilities; ``cond`` at the resolution of ``x`` (ZoeDepth).

        With ``values`` (B, H, W, K), bins last, return sum_k prob_k values_k, (B, 1, H, W),
        computed cheaply (``_expected_value``); ``cond`` may then have a lower resolution.
        """
        if values is not None:
            return self._expected_value(x, cond, values)
        p, t = self._p_t(self.mlp(torch.cat((x, cond), dim=1)))
        return self.log_binomial_transform(p[:, 0], t)

    def _expected_value(self, x: torch.Tensor, cond: torch.Tensor,
                        values: torch.Tensor) -> torch.Tensor:
        """Return sum_k forward(x, resize(cond))_k values_k.

        ``cond`` is resized bilinearly (align_corners) to the size of ``x`` as ZoeDepth does,
        but after the first 1x1 convolution instead of before it: the convolution is linear and
        the resize weights sum to one, so W [x; up(cond)] + b = W_x x + up(W_cond cond + b).
        The resize then carries the bottleneck's channels (80 for ZoeDepth's widths) instead of
        the condition's (128), and no full-resolution concatenation of the condition is made.
        At full resolution the MLP runs with channels last, its 1x1 convolutions as matrix
        products, so the resize, the per-pixel (p, t) and the log-binomial share one layout
        (ONNX Runtime resizes channels-last tensors several times faster).
        """
        first, second = self.mlp[0], self.mlp[2]
        n = self.in_features
        h = x.permute(0, 2, 3, 1) @ first.weight[:, :n, 0, 0].t()  # (B, H, W, bottleneck)
        c = F.conv2d(cond, first.weight[:, n:], first.bias)
        h = h + (c.permute(0, 2, 3, 1) if c.shape[-2:] == x.shape[-2:]
                 else resize_bins_last(c, x.shape[-2:]))
        pt = _softplus(self.mlp[1](h) @ second.weight[:, :, 0, 0].t() + second.bias, self.mlp[3])
        p, t = self._p_t(pt, dim=-1)
        return self.log_binomial_transform(p, t, values)


class MetricBinsHead(nn.Module):
    """ZoeDepth head: decoder maps -> metric depth (B, 1, H, W) at the out_conv resolution."""

    def __init__(self, channels: Sequence[int], out_conv_channels: int = 32,
                 n_bins: int = 64, bin_embedding_dim: int = 128,
                 n_attractors: Sequence[int] = (16, 8, 4, 1), attractor_alpha: float = 300.0,
                 attractor_gamma: int = 2, attractor_kind: str = 'mean',
                 attractor_type: str = 'inv', min_temp: float = 0.0212,
                 max_temp: float = 50.0, min_depth: float = 1e-3, max_depth: float = 10.0,
                 bin_centers_type: str = 'normed') -> None:
        super().__init__()
        if bin_centers_type not in BIN_TYPES:
            raise ValueError(f'bin_centers_type must be one of {BIN_TYPES}, got '
                             f'{bin_centers_type!r}')
        if not 0 < min_depth < max_depth:
            raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
        if len(channels) != 1 + len(n_attractors):
            raise ValueError(f'{len(channels)} decoder widths for {len(n_attractors)} '
                             f'attractor levels; need one bottleneck + one per level')
        normed = bin_centers_type == 'normed'
        btl, blocks = channels[0], channels[1:]
        self.min_depth, self.max_depth = min_depth, max_depth
        self.conv2 = nn.Conv2d(btl, btl, 1)
        self.seed_bin_regressor = SeedBinRegressor(btl, n_bins, min_depth, max_depth, normed)
        self.seed_projector = Projector(btl, bin_embedding_dim)
        self.projectors = nn.ModuleList(Projector(c, bin_embedding_dim) for c in blocks)
        self.attractors = nn.ModuleList(
            AttractorLayer(bin_embedding_dim, n, min_depth, max_depth, normed,
                           attractor_alpha, attractor_gamma, attractor_kind, attractor_type)
            for n in n_attractors)
        self.conditional_log_binomial = ConditionalLogBinomial(
            out_conv_channels + 1, bin_embedding_dim, n_bins, min_temp=min_temp,
            max_temp=max_temp)

    def bins(self, bottleneck: torch.Tensor, blocks: List[torch.Tensor],
             sort: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (last bin embedding, metric bin centres), both at the last block's grid.

        ``sort``: sort the centres of every normed stage, as ZoeDepth does, even where
        ``keeps_order`` proves it changes nothing.
        """
        x = self.conv2(bottleneck)
        b_prev, _ = self.seed_bin_regressor(x)
        prev_embedding = self.seed_projector(x)
        for projector, attractor, block in zip(self.projectors, self.attractors, blocks):
            embedding = projector(block)
            b_prev, centres = attractor(embedding, b_prev, prev_embedding, sort)
            prev_embedding = embedding
        return embedding, centres

    def forward(self, bottleneck: torch.Tensor, blocks: List[torch.Tensor],
                out_conv: torch.Tensor, relative: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'depth': (B, 1, H, W), 'bin_centers': (B, n_bins, H, W)}.

        ZoeDepth's computation (``forward_reference``) in a form that is cheaper at the
        (H, W) output resolution, equal up to float rounding: the relative map is resized
        only when its size differs from out_conv's (a same-size align_corners resize is the
        identity); the bin embedding is resized after the conditional MLP's first 1x1
        convolution; the log-binomial and the expectation over bins run with the bin axis last
        (``LogBinomial._expectation``), the centres resized straight into that layout
        (``resize_bins_last``); the attractors skip the sort of centres that are
        provably ascending (``keeps_order``). In the export only (training keeps its rounding):
        a one-attractor stage skips its mean over one, gamma 2 is a product instead of a
        power, the softmax over bins is one Softmax operator, and the conditional MLP's
        Softplus is written out in the formula ONNX Runtime's kernel uses.
        """
        embedding, centres = self.bins(bottleneck, blocks)
        size = out_conv.shape[-2:]
        if relative.shape[-2:] != size:
            relative = _resize(relative, size)
        centres = resize_bins_last(centres, size)
        depth = self.conditional_log_binomial(torch.cat([out_conv, relative], dim=1), embedding,
                                              centres)
        return {'depth': depth, 'bin_centers': centres.permute(0, 3, 1, 2)}

    def forward_reference(self, bottleneck: torch.Tensor, blocks: List[torch.Tensor],
                          out_conv: torch.Tensor,
                          relative: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``forward`` in ZoeDepth's literal form (zoedepth_v1.py), for comparisons."""
        embedding, centres = self.bins(bottleneck, blocks, sort=True)
        size = out_conv.shape[-2:]
        last = torch.cat([out_conv, _resize(relative, size)], dim=1)
        probs = self.conditional_log_binomial(last, _resize(embedding, size))
        centres = _resize(centres, size)
        return {'depth': torch.sum(probs * centres, dim=1, keepdim=True),
                'bin_centers': centres}
