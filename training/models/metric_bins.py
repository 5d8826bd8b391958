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

Two bin parameterisations, as in ZoeDepth: ``'softplus'`` (ZoeD_N: unbounded positive centres)
and ``'normed'`` (ZoeD_K: widths normalised to [min_depth, max_depth], attractors in
normalised space, centres sorted and clipped). The default is ``'normed'``: the exported
contract states a [min_depth, max_depth] range and this variant guarantees it.
ZoeDepth's ignored ``memory_efficient`` flag is not reproduced (the broadcast form is used).
"""

from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

BIN_TYPES = ('normed', 'softplus')


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=True)


def inv_attractor(dx: torch.Tensor, alpha: float = 300.0, gamma: int = 2) -> torch.Tensor:
    """Return dx / (1 + alpha * dx^gamma) (ZoeDepth's "inv" attractor)."""
    return dx / (1 + alpha * dx.pow(gamma))


def exp_attractor(dx: torch.Tensor, alpha: float = 300.0, gamma: int = 2) -> torch.Tensor:
    """Return exp(-alpha * |dx|^gamma) * dx (ZoeDepth's "exp" attractor)."""
    return torch.exp(-alpha * dx.abs().pow(gamma)) * dx


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
        out = 2 * n_attractors if normed else n_attractors
        self._net = _mlp(in_features, mlp_dim, out,
                         nn.ReLU(inplace=True) if normed else nn.Softplus())

    def forward(self, x: torch.Tensor, b_prev: torch.Tensor,
                prev_embedding: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x + _resize(prev_embedding, x.shape[-2:])
        a = self._net(x)
        if self.normed:
            n, _, h, w = a.shape
            # ZoeDepth computes a pair normalisation and then keeps the raw first channel.
            a = (a + 1e-3).view(n, self.n_attractors, 2, h, w)[:, :, 0]
        b = _resize(b_prev, x.shape[-2:])
        delta = self.dist(a.unsqueeze(2) - b.unsqueeze(1), self.alpha, self.gamma)
        delta = delta.mean(dim=1) if self.kind == 'mean' else delta.sum(dim=1)
        b = b + delta
        if not self.normed:
            return b, b
        centres = (self.max_depth - self.min_depth) * b + self.min_depth
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

    def forward(self, p: torch.Tensor, t: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        p = p.unsqueeze(1)
        one_minus_p = torch.clamp(1.0 - p, min=eps, max=1.0)
        p = torch.clamp(p, min=eps, max=1.0)
        y = (_log_binom(self.K_minus_1, self.k_idx) + self.k_idx * torch.log(p)
             + (self.K - 1 - self.k_idx) * torch.log(one_minus_p))
        return torch.softmax(y / t, dim=1)


class ConditionalLogBinomial(nn.Module):
    """Per-pixel (p, temperature) from concat(features, condition) -> bin probabilities."""

    def __init__(self, in_features: int, condition_dim: int, n_classes: int,
                 bottleneck_factor: int = 2, p_eps: float = 1e-4, max_temp: float = 50.0,
                 min_temp: float = 1e-7) -> None:
        super().__init__()
        self.p_eps, self.max_temp, self.min_temp = p_eps, max_temp, min_temp
        self.log_binomial_transform = LogBinomial(n_classes)
        bottleneck = (in_features + condition_dim) // bottleneck_factor
        self.mlp = nn.Sequential(nn.Conv2d(in_features + condition_dim, bottleneck, 1),
                                 nn.GELU(), nn.Conv2d(bottleneck, 4, 1), nn.Softplus())

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        pt = self.mlp(torch.cat((x, cond), dim=1))
        p, t = pt[:, :2] + self.p_eps, pt[:, 2:] + self.p_eps
        p = p[:, 0] / (p[:, 0] + p[:, 1])
        t = (t[:, 0] / (t[:, 0] + t[:, 1])).unsqueeze(1)
        t = (self.max_temp - self.min_temp) * t + self.min_temp
        return self.log_binomial_transform(p, t)


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

    def forward(self, bottleneck: torch.Tensor, blocks: List[torch.Tensor],
                out_conv: torch.Tensor, relative: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'depth': (B, 1, H, W), 'bin_centers': (B, n_bins, H, W)}."""
        x = self.conv2(bottleneck)
        b_prev, _ = self.seed_bin_regressor(x)
        prev_embedding = self.seed_projector(x)
        for projector, attractor, block in zip(self.projectors, self.attractors, blocks):
            embedding = projector(block)
            b_prev, centres = attractor(embedding, b_prev, prev_embedding)
            prev_embedding = embedding
        size = out_conv.shape[-2:]
        last = torch.cat([out_conv, _resize(relative, size)], dim=1)
        probs = self.conditional_log_binomial(last, _resize(embedding, size))
        centres = _resize(centres, size)
        return {'depth': torch.sum(probs * centres, dim=1, keepdim=True),
                'bin_centers': centres}
