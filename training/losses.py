"""Losses: ZoeDepth's SILog for metric depth, a per-image scale-invariant loss for relative depth.

Both upsample the prediction to the ground-truth size (bilinear, align_corners=True, as
ZoeDepth) and use valid pixels only; both run in float32 with autocast off.
"""

import torch
import torch.nn.functional as F


def _to_gt(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    if pred.shape[-2:] != gt.shape[-2:]:
        pred = F.interpolate(pred, size=gt.shape[-2:], mode='bilinear', align_corners=True)
    return pred


def _check(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> None:
    if pred.ndim != 4 or gt.ndim != 4 or valid.shape != gt.shape:
        raise ValueError(f'loss needs (B,1,h,w) prediction, (B,1,H,W) depth and mask; got '
                         f'{tuple(pred.shape)}, {tuple(gt.shape)}, {tuple(valid.shape)}')


def silog_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
               beta: float = 0.15) -> torch.Tensor:
    """Return ZoeDepth's SILog: 10 sqrt(var(g) + beta mean(g)^2), g = ln pred - ln gt, whole batch.

    ``var`` is unbiased (torch.var), as in ZoeDepth. Raises ValueError on an empty mask rather
    than returning NaN.
    """
    _check(pred, gt, valid)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred = _to_gt(pred.float(), gt)
        valid = valid.bool()
        if int(valid.sum()) < 2:
            raise ValueError('SILog needs at least two valid ground-truth pixels in the batch')
        g = torch.log(pred[valid] + 1e-7) - torch.log(gt.float()[valid] + 1e-7)
        dg = torch.var(g) + beta * g.mean() ** 2
        return 10 * torch.sqrt(dg)


def scale_invariant_loss(pred: torch.Tensor, gt: torch.Tensor,
                         valid: torch.Tensor) -> torch.Tensor:
    """Per-image scale-invariant log loss: 10 sqrt(mean over images of var_i(ln pred - ln gt)).

    Invariant to a positive scale per image (a shift in log space), so the network learns
    depth up to scale: what a relative model must output for median scaling.
    """
    _check(pred, gt, valid)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred = _to_gt(pred.float(), gt)
        m = valid.float()
        n = m.flatten(1).sum(1)
        if bool((n < 2).any()):
            raise ValueError('scale-invariant loss needs two valid pixels in every image')
        g = (torch.log(pred.clamp_min(1e-7)) - torch.log(gt.float().clamp_min(1e-7))) * m
        mean = g.flatten(1).sum(1) / n
        var = ((g - mean.view(-1, 1, 1, 1)) ** 2 * m).flatten(1).sum(1) / n
        return 10 * torch.sqrt(var.mean() + 1e-12)


def log_mean_depth(gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Return (B,) the mean of ln gt over each image's valid pixels (log geometric mean)."""
    m = valid.float()
    n = m.flatten(1).sum(1)
    if bool((n < 1).any()):
        raise ValueError('echo scale loss needs a valid pixel in every image')
    return (torch.log(gt.float().clamp_min(1e-7)) * m).flatten(1).sum(1) / n


def echo_scale_loss(log_scale: torch.Tensor, gt: torch.Tensor,
                    valid: torch.Tensor) -> torch.Tensor:
    """Auxiliary scale loss: mean |echo log-scale - ln geometric mean of gt| over the batch.

    Trains the echo branch to say how far the scene is, directly, instead of only through the
    depth head's gradients (where a global scale is one weak direction among many).
    """
    with torch.autocast(device_type=log_scale.device.type, enabled=False):
        return (log_scale.float() - log_mean_depth(gt, valid)).abs().mean()
