"""Monodepth2-style networks: a multi-scale disparity network and a pose network.

- ``DisparityNet``: the MiDaS-small encoder-decoder of ``training.models.midas`` (any timm
  backbone, the decoder the supervised relative model uses) with a sigmoid output at the input
  resolution and sigmoid heads on the decoder blocks at strides 2, 4 and 8: Monodepth2's four
  scales. ``forward`` returns the scale-0 disparity (in [1/max_depth, 1/min_depth]) as
  ``relative``, what the exported ONNX graph outputs, and the sigmoid maps of every scale.
- ``PoseNet``: Monodepth2's separate pose network: a timm encoder over two frames stacked on
  the channel axis (6 channels; timm adapts ImageNet weights of the first convolution), its
  deepest map, Monodepth2's pose decoder (1x1 squeeze, two 3x3 convs, 1x1 to 6, spatial mean,
  times ``pose_scale``, 0.01 in Monodepth2), giving an axis-angle and a translation.
- ``SelfSupervisedNet`` holds both, so that one DistributedDataParallel wrapper sees every
  parameter used in one forward call.
"""

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from training.models.avs_net import image_normalisation, midas_core
from training.models.midas import create_backbone
from training.selfsup.config import SelfSupModelConfig
from training.selfsup.geometry import disparity_to_depth


class DisparityNet(nn.Module):
    """Image -> disparity at scales 0..n-1 (scale s at 1/2**s of the input resolution)."""

    def __init__(self, config: SelfSupModelConfig) -> None:
        super().__init__()
        self.config = config
        self.takes_echo = False
        self.core, self.normalize = midas_core(config, 'sigmoid')
        # Decoder blocks r1, r2, r3 sit at strides 2, 4, 8 with F, F, 2F channels.
        widths = (config.features, config.features, 2 * config.features)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, 1, 3, padding=1, padding_mode='reflect'), nn.Sigmoid())
            for c in widths[:config.scales - 1])

    def forward(self, image: torch.Tensor) -> Dict[str, object]:
        """Return {'relative': (B, 1, H, W) disparity, 'sigmoid': [scale 0, 1, ...]}."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f'image must be (B, 3, H, W), got {tuple(image.shape)}')
        dec = self.core.decode(self.core.encode(self.normalize(image)))
        r4, r3, r2, r1 = dec.blocks
        sigmoids = [dec.relative] + [head(x) for head, x in zip(self.heads, (r1, r2, r3))]
        disparity, _ = disparity_to_depth(dec.relative, self.config.min_depth,
                                          self.config.max_depth)
        return {'relative': disparity, 'sigmoid': sigmoids}


class PoseNet(nn.Module):
    """Two frames -> (axis-angle (B, 3), translation (B, 3)) from the first to the second."""

    def __init__(self, config: SelfSupModelConfig) -> None:
        super().__init__()
        self.encoder = create_backbone(config.pose_backbone, config.pose_backbone_weights,
                                       in_chans=6, out_indices=(4,))
        self.normalize = image_normalisation(self.encoder, config.mean, config.std)
        self.scale = config.pose_scale
        c, w = self.encoder.feature_info.channels()[-1], config.pose_features
        self.decoder = nn.Sequential(
            nn.Conv2d(c, w, 1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 6, 1))

    def forward(self, first: torch.Tensor,
                second: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return the motion from ``first`` to ``second`` (both (B, 3, H, W) in [0, 1])."""
        x = torch.cat([self.normalize(first), self.normalize(second)], 1)
        out = self.scale * self.decoder(self.encoder(x)[-1]).mean((2, 3))
        return out[:, :3], out[:, 3:]


class SelfSupervisedNet(nn.Module):
    """The disparity and pose networks of one training run."""

    def __init__(self, config: SelfSupModelConfig) -> None:
        super().__init__()
        self.config = config
        self.depth = DisparityNet(config)
        self.pose = PoseNet(config)

    def forward(self, image: torch.Tensor, image_prev: Optional[torch.Tensor] = None,
                image_next: Optional[torch.Tensor] = None) -> Dict[str, object]:
        """Return the disparity outputs and, per given neighbour, its (axis-angle, translation).

        The pose network always sees the earlier frame first (Monodepth2): 'pose_prev' is the
        motion from the previous frame to the target, 'pose_next' from the target to the next.
        """
        out = self.depth(image)
        if image_prev is not None:
            out['pose_prev'] = self.pose(image_prev, image)
        if image_next is not None:
            out['pose_next'] = self.pose(image, image_next)
        return out
