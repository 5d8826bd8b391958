"""Monodepth2's self-supervised losses: photometric reprojection, auto-masking, smoothness.

Per scale (every disparity map upsampled to the input resolution first): each source frame is
warped into the target with the predicted depth and pose; the per-pixel photometric error
``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1`` (alpha 0.85) is minimised over the sources (the
minimum, not the mean, so a pixel occluded in one source is judged by the other). Auto-masking
adds the error of the *unwarped* sources to that minimum: a pixel whose unwarped source already
matches better (a static camera, an object moving with it) is not optimised. The edge-aware
smoothness of the mean-normalised disparity (weight 1e-3, halved per scale) is added at each
scale's own resolution, and the scales are averaged.

``normalise_depth`` (off in Monodepth2) divides each image's depth by its mean before warping
(Wang et al., "Learning Depth from Monocular Videos using Direct Methods", CVPR 2018). Depth
and translation are only known up to a common scale, so without it nothing holds the
disparity's overall level: trained from scratch, it can drift into a sigmoid end, where the
map is flat and has no gradient. Normalised, the warp does not depend on that level.
"""

from dataclasses import dataclass
from typing import Dict, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from training.selfsup.geometry import disparity_to_depth, warp


def ssim_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return per-pixel ``(1 - SSIM) / 2`` in [0, 1] over 3x3 windows (reflection padded)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = F.pad(x, (1, 1, 1, 1), mode='reflect'), F.pad(y, (1, 1, 1, 1), mode='reflect')
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x ** 2
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y ** 2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2)
    return torch.clamp((1 - num / den) / 2, 0, 1)


def photometric_error(pred: torch.Tensor, target: torch.Tensor,
                      ssim_weight: float = 0.85) -> torch.Tensor:
    """Return (B, 1, H, W) ``ssim_weight * SSIM distance + (1 - ssim_weight) * L1``."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    if ssim_weight == 0:
        return l1
    ssim = ssim_distance(pred, target).mean(1, keepdim=True)
    return ssim_weight * ssim + (1 - ssim_weight) * l1


def smoothness(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness: disparity gradients, down-weighted where the image has edges."""
    dx = (disparity[..., :, :-1] - disparity[..., :, 1:]).abs()
    dy = (disparity[..., :-1, :] - disparity[..., 1:, :]).abs()
    ix = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(1, keepdim=True)
    iy = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


@dataclass
class ReprojectionTerms:
    """What one scale's minimum reprojection selected.

    Attributes:
        loss: (B, 1, H, W) per-pixel error that is optimised.
        automask: (B, 1, H, W) bool, True where a warped source won (the pixel is trained);
            all True without auto-masking.

    """

    loss: torch.Tensor
    automask: torch.Tensor


def min_reprojection(target: torch.Tensor, sources: Sequence[torch.Tensor],
                     warped: Sequence[torch.Tensor], ssim_weight: float = 0.85,
                     automask: bool = True, use_min: bool = True) -> ReprojectionTerms:
    """Per-pixel minimum (or mean) reprojection error with Monodepth2's auto-masking.

    ``sources`` are the unwarped source frames, ``warped`` the same frames synthesised into
    the target view. The identity errors get noise of 1e-5 so that ties (a textureless region)
    are broken at random, as in Monodepth2.
    """
    reproj = torch.cat([photometric_error(w, target, ssim_weight) for w in warped], 1)
    if not use_min:
        reproj = reproj.mean(1, keepdim=True)
    if not automask:
        loss = reproj.min(1, keepdim=True)[0]
        return ReprojectionTerms(loss, torch.ones_like(loss, dtype=torch.bool))
    identity = torch.cat([photometric_error(s, target, ssim_weight) for s in sources], 1)
    identity = identity + 1e-5 * torch.randn_like(identity)
    combined = torch.cat([identity, reproj], 1)
    loss, idx = combined.min(1, keepdim=True)
    return ReprojectionTerms(loss, idx >= identity.shape[1])


class SelfSupervisedLoss(nn.Module):
    """The total loss over scales for a (previous, target, next) triplet batch.

    Args:
        min_depth, max_depth: The disparity range (sigmoid -> 1/max .. 1/min).
        ssim_weight: Weight of the SSIM term in the photometric error (0.85).
        smoothness_weight: Edge-aware smoothness weight (1e-3), divided by 2**scale.
        automask: Auto-mask stationary pixels.
        use_min: Per-pixel minimum over sources (False: their mean, Monodepth2's baseline).
        normalise_depth: Warp with each image's depth divided by its mean (module docstring).

    """

    def __init__(self, min_depth: float, max_depth: float, ssim_weight: float = 0.85,
                 smoothness_weight: float = 1e-3, automask: bool = True,
                 use_min: bool = True, normalise_depth: bool = False) -> None:
        super().__init__()
        self.normalise_depth = normalise_depth
        self.min_depth, self.max_depth = min_depth, max_depth
        self.ssim_weight, self.smoothness_weight = ssim_weight, smoothness_weight
        self.automask, self.use_min = automask, use_min

    def forward(self, target: torch.Tensor, sources: Sequence[torch.Tensor],
                poses: Sequence[torch.Tensor], disparities: Sequence[torch.Tensor],
                k: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'loss', 'photometric', 'smoothness', 'automask'} (automask: kept fraction).

        Args:
            target: (B, 3, H, W) target frame in [0, 1].
            sources: Source frames, each (B, 3, H, W).
            poses: Target-to-source transforms, each (B, 4, 4), in the order of ``sources``.
            disparities: Sigmoid outputs per scale, scale s of size (H / 2**s, W / 2**s).
            k: (B, 3, 3) pixel intrinsics at H x W.

        """
        h, w = target.shape[-2:]
        total = photo_sum = smooth_sum = kept = 0.0
        for scale, sig in enumerate(disparities):
            full = sig if sig.shape[-2:] == (h, w) else F.interpolate(
                sig, (h, w), mode='bilinear', align_corners=False)
            _, depth = disparity_to_depth(full, self.min_depth, self.max_depth)
            if self.normalise_depth:
                depth = depth / depth.mean((1, 2, 3), keepdim=True)
            warped = [warp(s, depth, p, k) for s, p in zip(sources, poses)]
            terms = min_reprojection(target, sources, warped, self.ssim_weight, self.automask,
                                     self.use_min)
            photo = terms.loss.mean()
            norm = sig / (sig.mean((2, 3), keepdim=True) + 1e-7)  # Monodepth2: the sigmoid
            image = target if sig.shape[-2:] == (h, w) else F.interpolate(
                target, sig.shape[-2:], mode='area')
            smooth = smoothness(norm, image)
            total = total + photo + self.smoothness_weight * smooth / 2 ** scale
            photo_sum = photo_sum + photo.detach()
            smooth_sum = smooth_sum + smooth.detach()
            kept = kept + terms.automask.float().mean()
        n = len(disparities)
        return {'loss': total / n, 'photometric': photo_sum / n, 'smoothness': smooth_sum / n,
                'automask': kept / n}
