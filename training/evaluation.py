"""Running models over a dataset and scoring them with ``avs_net_ros.core.metrics``.

Every number comes from the core (one implementation for training, the robot and reports):
predictions are resized to the ground-truth resolution and masked (0 < gt <= max_depth) by
``depth_metrics``; relative maps are put on a metric scale by ``fit_scale``: the median ratio
for depth-up-to-scale models (the paper), scale-and-shift in disparity for affine-invariant
disparity models (``core.scale.default_scale_method``, what the runtime's 'auto' picks).
"""

from typing import Dict, Iterable, Mapping, Optional

from avs_net_ros.core.errors import EmptyMaskError
from avs_net_ros.core.metrics import (aide_per_band, AideAccumulator, depth_metrics,
                                      MetricAverager)
from avs_net_ros.core.resize import resize_nearest
from avs_net_ros.core.scale import default_scale_method, fit_scale, output_relative_kind

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


def unwrap(model: nn.Module) -> nn.Module:
    """Return the module inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, 'module', model)


def forward_batch(model: nn.Module, batch: Mapping[str, torch.Tensor],
                  device: torch.device) -> Dict[str, torch.Tensor]:
    """Run a model on a dataset batch, passing the echo only to models that take it."""
    image = batch['image'].to(device, non_blocking=True)
    if unwrap(model).takes_echo:
        return model(image, batch['echo_spec'].to(device, non_blocking=True))
    return model(image)


@torch.no_grad()
def predict(model: nn.Module, batch: Mapping[str, torch.Tensor],
            device: torch.device) -> np.ndarray:
    """Return (B, H, W) float32: metric depth for AVS-Net, relative depth for relative models."""
    out = forward_batch(model, batch, device)
    key = 'depth' if 'depth' in out else 'relative'
    return out[key][:, 0].float().cpu().numpy()


def gt_maps(batch: Mapping[str, torch.Tensor]) -> np.ndarray:
    """Return (B, Hd, Wd) float64 ground truth with invalid pixels set to 0."""
    depth = batch['depth'][:, 0].double().numpy()
    return np.where(batch['valid'][:, 0].numpy(), depth, 0.0)


def scale_relative(relative: np.ndarray, reference: np.ndarray,
                   output: str = 'depth') -> np.ndarray:
    """Put a relative map that outputs ``output`` on the scale of ``reference``.

    ``output`` is a relative model's ``relative_output``: 'depth' is fitted by the median
    ratio (paper), 'affine_disparity' by scale-and-shift in disparity.
    """
    fit = fit_scale(relative, reference, default_scale_method(output),
                    relative_kind=output_relative_kind(output))
    return fit.apply(relative)


def _score(avg: MetricAverager, pred: np.ndarray, gt: np.ndarray, max_depth: float) -> bool:
    try:
        avg.add(depth_metrics(pred, gt, max_depth=max_depth))
        return True
    except EmptyMaskError:
        return False


@torch.no_grad()
def evaluate(models: Mapping[str, nn.Module], loader: Iterable, max_depth: float,
             device: torch.device, relative: Optional[nn.Module] = None,
             aide_pair: Optional[tuple] = None, keep: int = 0, progress: bool = True) -> dict:
    """Score metric models and, if given, a relative model scaled by each metric model.

    Returns {'metrics': {row: {metric: mean}}, 'aide': {k: (AIDE_k, n)} (when ``aide_pair`` =
    (visual-only name, audio-visual name)), 'samples': the first ``keep`` images and maps,
    'skipped': images without a valid pixel}. Rows are the model names, plus
    ``'<relative> x <name>'`` for the scaled relative model and ``'<relative> x GT'`` (the
    same fit against the ground truth, the usual upper bound).
    """
    output = getattr(unwrap(relative), 'relative_output', 'depth') if relative else 'depth'
    for m in list(models.values()) + ([relative] if relative is not None else []):
        m.eval()
    avgs: Dict[str, MetricAverager] = {}
    aide = AideAccumulator()
    samples = []
    skipped = 0
    for batch in tqdm(loader, desc='evaluate', disable=not progress, leave=False):
        gt = gt_maps(batch)
        preds = {name: predict(m, batch, device) for name, m in models.items()}
        rel = predict(relative, batch, device) if relative is not None else None
        for i in range(gt.shape[0]):
            rows = {name: p[i] for name, p in preds.items()}
            if rel is not None:
                for name, p in preds.items():
                    rows[f'relative x {name}'] = scale_relative(rel[i], p[i], output)
                gt_small = _gt_like(gt[i], rel[i].shape)
                try:
                    rows['relative x GT'] = scale_relative(rel[i], gt_small, output)
                except EmptyMaskError:  # no valid ground truth at the relative map's grid
                    pass
            ok = [_score(avgs.setdefault(k, MetricAverager()), v, gt[i], max_depth)
                  for k, v in rows.items()]
            skipped += not any(ok)
            if aide_pair is not None and any(ok):
                ov, av = aide_pair
                aide.add(aide_per_band(preds[ov][i], preds[av][i], gt[i], max_depth=max_depth))
            if len(samples) < keep:
                samples.append({'image': batch['image'][i].permute(1, 2, 0).numpy(),
                                'gt': gt[i], **rows})
    return {'metrics': {k: a.mean() for k, a in avgs.items() if a.count},
            'aide': aide.result() if aide_pair is not None else {},
            'samples': samples, 'skipped': skipped}


def _gt_like(gt: np.ndarray, shape: tuple) -> np.ndarray:
    """Nearest-neighbour ground truth at a prediction's size (keeps invalid pixels at 0)."""
    return resize_nearest(gt, shape)
