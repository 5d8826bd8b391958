"""MiDaS-style image encoder-decoder on a timm backbone (MiDaS v2.1 small layout).

Layout (as isl-org/MiDaS v2.1 small builds it), for an input of H x W (multiples of 32):

- encoder: a timm ``features_only`` backbone giving four maps at strides 4, 8, 16, 32
  (tf_efficientnet_lite3: 32, 48, 136, 384 channels). Backbones whose maps are all at one
  stride (ViT, BEiT) are resampled to those strides by a DPT-style reassembly; NHWC outputs
  (Swin) are permuted.
- scratch: 3x3 convs (no bias) to ``features * (1, 2, 4, 8)`` channels (``expand``).
- decoder: four fusion blocks (two residual conv units, x2 bilinear upsample with
  align_corners=True, 1x1 conv halving the width) give r4..r1 at strides 16, 8, 4, 2 with
  ``features * (4, 2, 1, 1)`` channels.
- head: conv3x3 -> x2 upsample -> conv3x3 -> ReLU (the 32-channel ``out_conv`` tap ZoeDepth
  conditions on) -> conv1x1 to one channel -> output activation (ReLU in MiDaS; softplus for
  the relative-depth model, whose output must be a positive depth; sigmoid for the
  self-supervised disparity).

The network splits into ``encode`` (image -> scratch maps; the last is the bottleneck the
echo is fused into) and ``decode`` (scratch maps -> relative map, out_conv, r4..r1).
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import timm
import torch
from torch import nn
import torch.nn.functional as F

OUT_CONV_CHANNELS = 32  # ZoeDepth's N_MIDAS_OUT
TARGET_REDUCTIONS = (4, 8, 16, 32)
#: Output activations: ReLU (MiDaS), softplus (a positive depth), sigmoid (a disparity in
#: [0, 1] that the self-supervised model maps to [1/max_depth, 1/min_depth]).
_ACTIVATIONS = {'relu': nn.ReLU, 'softplus': nn.Softplus, 'sigmoid': nn.Sigmoid}


@dataclass
class DecoderFeatures:
    """What the decoder hands to the metric head.

    Attributes:
        relative: (B, 1, H, W) MiDaS output (inverse-depth-like for ReLU, depth for softplus).
        out_conv: (B, 32, H, W) activation before the last 1x1 conv.
        blocks: [r4, r3, r2, r1] at strides 16, 8, 4, 2.

    """

    relative: torch.Tensor
    out_conv: torch.Tensor
    blocks: List[torch.Tensor]


def create_backbone(name: str, pretrained_path: Optional[str] = None,
                    in_chans: int = 3, out_indices: Sequence[int] = (1, 2, 3, 4),
                    **kwargs) -> nn.Module:
    """Create a timm ``features_only`` backbone; weights only from a local file.

    Raises:
        FileNotFoundError: ``pretrained_path`` is given but does not exist.

    """
    if pretrained_path:
        import os
        if not os.path.isfile(pretrained_path):
            raise FileNotFoundError(f'backbone weights not found: {pretrained_path}')
        kwargs['pretrained_cfg_overlay'] = {'file': pretrained_path}
    return timm.create_model(name, pretrained=bool(pretrained_path), features_only=True,
                             out_indices=tuple(out_indices), in_chans=in_chans, **kwargs)


class _Reassemble(nn.Module):
    """Bring one backbone map to its target stride (identity when it is already there)."""

    def __init__(self, channels: int, reduction: int, target: int) -> None:
        super().__init__()
        if reduction == target:
            self.op = nn.Identity()
        elif reduction > target:
            f = reduction // target
            self.op = nn.ConvTranspose2d(channels, channels, f, stride=f)
        else:
            f = target // reduction
            self.op = nn.Conv2d(channels, channels, 3, stride=f, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _ResidualConvUnit(nn.Module):
    def __init__(self, features: int, activation: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.activation(x))
        out = self.conv2(self.activation(out))
        return out + x


class FeatureFusionBlock(nn.Module):
    """MiDaS ``FeatureFusionBlock_custom`` (deconv False, bn False, align_corners True).

    MiDaS gives the deepest block (no skip input) a first residual unit it never uses; here
    only blocks with a skip have one.
    """

    def __init__(self, features: int, activation: nn.Module, expand: bool,
                 has_skip: bool = True) -> None:
        super().__init__()
        out_features = features // 2 if expand else features
        if has_skip:
            self.resConfUnit1 = _ResidualConvUnit(features, activation)
        self.resConfUnit2 = _ResidualConvUnit(features, activation)
        self.out_conv = nn.Conv2d(features, out_features, 1, bias=True)

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2.0, mode='bilinear', align_corners=True)
        return self.out_conv(x)


class MidasNet(nn.Module):
    """MiDaS-small encoder-decoder; input is a normalised image (B, 3, H, W)."""

    def __init__(self, backbone: str = 'tf_efficientnet_lite3', features: int = 64,
                 pretrained_path: Optional[str] = None, output_activation: str = 'relu',
                 backbone_kwargs: Optional[dict] = None) -> None:
        super().__init__()
        if output_activation not in _ACTIVATIONS:
            raise ValueError(f'output_activation must be one of {tuple(_ACTIVATIONS)}, got '
                             f'{output_activation!r}')
        self.pretrained = create_backbone(backbone, pretrained_path, **(backbone_kwargs or {}))
        info = self.pretrained.feature_info
        channels = info.channels()
        reductions = info.reduction()
        if len(channels) != 4:
            raise ValueError(f'backbone {backbone} gives {len(channels)} feature maps, '
                             f'4 are needed')
        self.reassemble = nn.ModuleList(
            _Reassemble(c, r, t) for c, r, t in zip(channels, reductions, TARGET_REDUCTIONS))
        self._channels = list(channels)
        widths = [features, features * 2, features * 4, features * 8]
        self.scratch = nn.Module()
        for i, (c, w) in enumerate(zip(channels, widths), start=1):
            setattr(self.scratch, f'layer{i}_rn', nn.Conv2d(c, w, 3, padding=1, bias=False))
        act = nn.ReLU(False)
        self.scratch.refinenet4 = FeatureFusionBlock(widths[3], act, expand=True, has_skip=False)
        self.scratch.refinenet3 = FeatureFusionBlock(widths[2], act, expand=True)
        self.scratch.refinenet2 = FeatureFusionBlock(widths[1], act, expand=True)
        self.scratch.refinenet1 = FeatureFusionBlock(widths[0], act, expand=False)
        self.scratch.output_conv = nn.Sequential(
            nn.Conv2d(features, OUT_CONV_CHANNELS, 3, padding=1),
            nn.Upsample(scale_factor=2.0, mode='bilinear', align_corners=False),
            nn.Conv2d(OUT_CONV_CHANNELS, OUT_CONV_CHANNELS, 3, padding=1),
            nn.ReLU(False))
        self.scratch.output_depth = nn.Sequential(
            nn.Conv2d(OUT_CONV_CHANNELS, 1, 1),
            _ACTIVATIONS[output_activation]())
        #: Widths of [bottleneck, r4, r3, r2, r1] (ZoeDepth's MIDAS_SETTINGS order).
        self.output_channels = [widths[3], widths[2], widths[1], widths[0], widths[0]]

    def encode(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Return the scratch maps [l1_rn, l2_rn, l3_rn, l4_rn] at strides 4..32."""
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f'image size must be a multiple of 32, got {h}x{w}')
        feats = self.pretrained(x)
        out = []
        for i, (f, c) in enumerate(zip(feats, self._channels), start=1):
            if f.shape[1] != c and f.shape[-1] == c:
                f = f.permute(0, 3, 1, 2)  # NHWC backbones (Swin)
            f = self.reassemble[i - 1](f)
            out.append(getattr(self.scratch, f'layer{i}_rn')(f))
        return out

    def decode(self, layers: Sequence[torch.Tensor]) -> DecoderFeatures:
        """Run the fusion decoder and the output head on the scratch maps."""
        l1, l2, l3, l4 = layers
        r4 = self.scratch.refinenet4(l4)
        r3 = self.scratch.refinenet3(r4, l3)
        r2 = self.scratch.refinenet2(r3, l2)
        r1 = self.scratch.refinenet1(r2, l1)
        out_conv = self.scratch.output_conv(r1)
        relative = self.scratch.output_depth(out_conv)
        return DecoderFeatures(relative, out_conv, [r4, r3, r2, r1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (B, 1, H, W) relative map."""
        return self.decode(self.encode(x)).relative


def backbone_mean_std(backbone: nn.Module) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Return the normalisation the backbone's weights expect (timm's pretrained_cfg)."""
    cfg = getattr(backbone, 'pretrained_cfg', None) or {}
    return tuple(cfg.get('mean', (0.5, 0.5, 0.5))), tuple(cfg.get('std', (0.5, 0.5, 0.5)))
