"""Echo encoder: the binaural STFT magnitude (B, 2, Hs, Ws) -> tokens on the image bottleneck.

As in Pano-Echo's ``SpecEnc`` (``echo_literature.md`` section 3.2): a ResNet-18 trained from
scratch with a 2-channel first convolution, its last stage pooled adaptively to the image
bottleneck grid (interpolated when the spectrogram grid is the smaller one). Added here: a
1x1 conv from the ResNet width (512) to the bottleneck width, so the echo tokens can be
summed with the image tokens whatever the image backbone. Any timm backbone with
``features_only`` support can replace the ResNet (``backbone``).
"""

from typing import Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from training.models.midas import create_backbone


class EchoEncoder(nn.Module):
    """Spectrogram (B, C, Hs, Ws) -> (B, out_channels, h, w) for a requested grid (h, w)."""

    def __init__(self, out_channels: int, in_channels: int = 2, backbone: str = 'resnet18',
                 pretrained_path: Optional[str] = None) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained_path, in_chans=in_channels,
                                        out_indices=(-1,))
        width = self.backbone.feature_info.channels()[-1]
        self.project = nn.Sequential(nn.Conv2d(width, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, spec: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        x = self.backbone(spec)[-1]
        x = self.project(x)
        size = tuple(int(g) for g in grid)
        have = tuple(x.shape[-2:])
        if have == size:
            return x
        if all(h >= s and h % s == 0 for h, s in zip(have, size)):
            return F.adaptive_avg_pool2d(x, size)  # Pano-Echo's pooling to the token grid
        # A spectrogram smaller than the image gives fewer echo cells than image tokens.
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)
