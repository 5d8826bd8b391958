"""Echo encoder: the binaural STFT magnitude (B, 2, Hs, Ws) -> tokens on the image bottleneck.

As in Pano-Echo's ``SpecEnc`` (``echo_literature.md`` section 3.2): a ResNet-18 trained from
scratch with a 2-channel first convolution, its last stage pooled adaptively to the image
bottleneck grid (interpolated when the spectrogram grid is the smaller one). Added here: a
1x1 conv from the ResNet width (512) to the bottleneck width, so the echo tokens can be
summed with the image tokens whatever the image backbone. Any timm backbone with
``features_only`` support can replace the ResNet (``backbone``).
"""

from typing import Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from training.models.midas import create_backbone


class EchoEncoder(nn.Module):
    """Spectrogram (B, C, Hs, Ws) -> (B, out_channels, h, w) for a requested grid (h, w)."""

    def __init__(self, out_channels: int, in_channels: int = 2, backbone: str = 'resnet18',
                 pretrained_path: Optional[str] = None, scale_head: bool = False,
                 init_log_scale: float = 1.0) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained_path, in_chans=in_channels,
                                        out_indices=(-1,))
        width = self.backbone.feature_info.channels()[-1]
        self.project = nn.Sequential(nn.Conv2d(width, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        # Optional global echo log-scale (auxiliary scale loss) from the pooled last stage.
        self.log_scale = nn.Linear(width, 1) if scale_head else None
        if self.log_scale is not None:
            nn.init.zeros_(self.log_scale.weight)
            nn.init.constant_(self.log_scale.bias, init_log_scale)

    def forward(self, spec: torch.Tensor,
                grid: Sequence[int]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Return (tokens (B, out_channels, h, w), log_scale (B,) or None)."""
        feats = self.backbone(spec)[-1]
        log_scale = (self.log_scale(feats.mean(dim=(2, 3)))[:, 0]
                     if self.log_scale is not None else None)
        x = self.project(feats)
        size = tuple(int(g) for g in grid)
        have = tuple(x.shape[-2:])
        if have == size:
            return x, log_scale
        if all(h >= s and h % s == 0 for h, s in zip(have, size)):
            return F.adaptive_avg_pool2d(x, size), log_scale  # Pano-Echo's pooling
        # A spectrogram smaller than the image gives fewer echo cells than image tokens.
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False), log_scale


class TimeOfFlightEncoder(nn.Module):
    """Spectrogram (B, C, F, T) -> echo tokens on a requested grid, plus a global echo log-scale.

    Built for what the echo carries about scale: *when* energy comes back. The time axis of
    the spectrogram is range (bin t is ``t / T`` of the echo window's round trip), so the
    encoder works along it:

    1. log magnitude minus its per-echo maximum (the direct path): invariant to speaker and
       microphone gain, and the decades of decay become a linear range;
    2. frequency rows of both ears become channels, a range coordinate channel (0 at the
       window start, 1 at its end) is appended, so position in time is explicit, not
       something padding has to reveal;
    3. dilated temporal convolutions along range (receptive field 2.5 m-ish at 32x64);
    4. attention pooling over range (softmax weights per head), which can express the
       energy-weighted arrival time the diagnosis found most informative, and the features at
       it;
    5. a vector -> ``log_scale`` (log of the geometric-mean depth, trained by the auxiliary
       scale loss) and -> tokens, the same on every cell of the image bottleneck grid.
    """

    def __init__(self, out_channels: int, in_channels: int = 2, freq_bins: int = 32,
                 width: int = 64, heads: int = 4, dilations: Sequence[int] = (1, 2, 4, 8),
                 init_log_scale: float = 1.0) -> None:
        super().__init__()
        self.in_channels, self.freq_bins = in_channels, freq_bins
        layers, cin = [], in_channels * freq_bins + 1
        for d in dilations:
            layers += [nn.Conv1d(cin, width, 5, padding=2 * d, dilation=d, bias=False),
                       nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            cin = width
        self.temporal = nn.Sequential(*layers)
        self.attend = nn.Conv1d(width + 1, heads, 1)
        pooled = heads * (width + 1)
        self.vector = nn.Sequential(nn.Linear(pooled, 2 * width), nn.ReLU(inplace=True))
        self.log_scale = nn.Linear(2 * width, 1)
        nn.init.zeros_(self.log_scale.weight)
        nn.init.constant_(self.log_scale.bias, init_log_scale)
        self.project = nn.Sequential(nn.Linear(2 * width, out_channels), nn.ReLU(inplace=True))

    def features(self, spec: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (vector (B, 2*width), log_scale (B,))."""
        b, c, f, t = spec.shape
        if c != self.in_channels or f % self.freq_bins:
            raise ValueError(f'time-of-flight encoder needs ({self.in_channels}, k * '
                             f'{self.freq_bins}, T) spectrograms, got {tuple(spec.shape[1:])}')
        if f != self.freq_bins:
            spec = F.avg_pool2d(spec, (f // self.freq_bins, 1))
            f = self.freq_bins
        x = torch.log(spec.float().clamp_min(1e-6))
        x = x - x.flatten(1).amax(dim=1).view(b, 1, 1, 1)
        coord = torch.linspace(0.0, 1.0, t, device=spec.device, dtype=x.dtype)
        coord = coord.view(1, 1, t).expand(b, 1, t)
        h = self.temporal(torch.cat([x.reshape(b, c * f, t), coord], dim=1))
        h = torch.cat([h, coord], dim=1)                               # (B, width+1, T)
        w = torch.softmax(self.attend(h), dim=-1)                       # (B, heads, T)
        pooled = torch.einsum('bkt,bct->bkc', w, h).reshape(b, -1)
        v = self.vector(pooled)
        return v, self.log_scale(v)[:, 0]

    def forward(self, spec: torch.Tensor,
                grid: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (tokens (B, out_channels, h, w), log_scale (B,))."""
        v, log_scale = self.features(spec)
        tokens = self.project(v)[:, :, None, None]
        size = tuple(int(g) for g in grid)
        return tokens.expand(-1, -1, *size).contiguous(), log_scale
