"""Losses: ZoeDepth's SILog, and the relative models' scale- or scale-and-shift-invariant ones.

SILog trains metric depth; relative models learn depth up to a scale with a per-image
scale-invariant loss, or disparity up to a scale and a shift with MiDaS's
scale-and-shift-invariant loss. All upsample the prediction to the ground-truth size
(bilinear, align_corners=True, as ZoeDepth) and use valid pixels only; all run in float32
with autocast off.
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


def align_scale_shift(pred: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
    """Return ``s * pred + t`` with (s, t) per image minimising sum(mask (s pred + t - target)^2).

    MiDaS's ``compute_scale_and_shift`` (the 2x2 normal equations per image), solved in the
    centred form s = cov(pred, target) / var(pred), t = mean(target) - s mean(pred), which
    stays accurate when the prediction carries a large shift. Images whose prediction is
    constant over the mask keep s = 0 (t = the target's mean).
    """
    n = mask.sum((1, 2, 3), keepdim=True).clamp_min(1)
    mp = (mask * pred).sum((1, 2, 3), keepdim=True) / n
    mt = (mask * target).sum((1, 2, 3), keepdim=True) / n
    dp = (pred - mp) * mask
    var = (dp * dp).sum((1, 2, 3), keepdim=True)
    cov = (dp * (target - mt)).sum((1, 2, 3), keepdim=True)
    ok = var > 1e-24
    s = torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), torch.zeros_like(var))
    return s * (pred - mp) + mt


def _gradient_matching(diff: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    gx = (diff[..., 1:] - diff[..., :-1]).abs() * (mask[..., 1:] * mask[..., :-1])
    gy = (diff[..., 1:, :] - diff[..., :-1, :]).abs() * (mask[..., 1:, :] * mask[..., :-1, :])
    return gx.sum() + gy.sum()


def ssi_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
             grad_weight: float = 0.5, scales: int = 4) -> torch.Tensor:
    """Return MiDaS's scale-and-shift-invariant loss on disparity (Ranftl et al., L_ssi).

    ``pred`` is a disparity known up to a scale and a shift per image; the target is the
    ground truth's disparity 1 / gt on valid pixels. Each prediction is aligned to it by least
    squares (``align_scale_shift``), then the loss is the mean squared residual over the
    batch's valid pixels divided by 2, plus ``grad_weight`` times the multi-scale gradient
    matching term over ``scales`` scales (steps 1, 2, 4, 8), each normalised by its valid
    pixel count, as MiDaS's ``ScaleAndShiftInvariantLoss`` (batch-based reduction, alpha 0.5).
    Invariant to any scale and shift of ``pred``, and zero when ``pred`` is an exact affine
    function of 1 / gt.

    Raises:
        ValueError: bad shapes, or an image with fewer than two valid pixels.

    """
    _check(pred, gt, valid)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        # float64: the fit divides by the prediction's variance, small for a shifted map
        pred = _to_gt(pred.float(), gt).double()
        m = valid.double()
        if bool((m.flatten(1).sum(1) < 2).any()):
            raise ValueError('scale-and-shift-invariant loss needs two valid pixels in every '
                             'image')
        target = torch.where(valid.bool(), 1.0 / gt.double().clamp_min(1e-6),
                             torch.zeros_like(pred))
        aligned = align_scale_shift(pred, target, m)
        diff = (aligned - target) * m
        loss = (diff * diff).sum() / (2 * m.sum())
        if grad_weight > 0:
            grad = 0.0
            for k in range(scales):
                step = 2 ** k
                mk = m[..., ::step, ::step]
                grad = grad + (_gradient_matching(diff[..., ::step, ::step], mk)
                               / mk.sum().clamp_min(1))
            loss = loss + grad_weight * grad
        return loss.float()
