"""Depth metrics as the paper, ZoeDepth and Monodepth2 compute them, and the paper's AIDE_k.

Per image: the prediction is resized to the ground-truth resolution (bilinear,
align_corners=True as ZoeDepth's ``compute_metrics``), NaN/inf predictions are replaced and the
prediction is clamped to [min_depth, max_depth] (ZoeDepth), and the valid pixels are
``gt > 0 and gt <= max_depth``. Dataset figures are the mean of the per-image figures.
"""

from typing import Dict, Iterable, Optional, Tuple

from avs_net_ros.core.errors import AvsInputError, EmptyMaskError
from avs_net_ros.core.resize import resize_bilinear

import numpy as np


METRIC_NAMES = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'delta1', 'delta2', 'delta3')
#: True where larger is better.
HIGHER_IS_BETTER = {name: name.startswith('delta') for name in METRIC_NAMES}


def _at_gt_resolution(pred: np.ndarray, gt: np.ndarray, max_depth: float,
                      min_depth: float) -> np.ndarray:
    pred = np.asarray(pred)
    if gt.ndim != 2 or pred.ndim != 2:
        raise AvsInputError(f'depth maps must be 2-D (H, W); got prediction {pred.shape} and '
                            f'ground truth {gt.shape}')
    if pred.shape != gt.shape:
        pred = resize_bilinear(np.nan_to_num(pred.astype(np.float64), nan=min_depth,
                                             posinf=max_depth, neginf=min_depth),
                               gt.shape, align_corners=True)
    return pred


def _clamped(values: np.ndarray, max_depth: float, min_depth: float) -> np.ndarray:
    v = np.nan_to_num(values.astype(np.float64), nan=min_depth, posinf=max_depth,
                      neginf=min_depth)
    return np.clip(v, min_depth, max_depth)


def _valid_gt(gt: np.ndarray, max_depth: float) -> np.ndarray:
    with np.errstate(invalid='ignore'):
        return np.isfinite(gt) & (gt > 0) & (gt <= max_depth)


def prepare_prediction(pred: np.ndarray, gt: np.ndarray, *, max_depth: float,
                       min_depth: float = 1e-3) -> Tuple[np.ndarray, np.ndarray]:
    """Return (prediction at gt resolution, clamped; valid-pixel mask) for one image."""
    gt = np.asarray(gt)
    pred = _at_gt_resolution(pred, gt, max_depth, min_depth)
    return _clamped(pred, max_depth, min_depth), _valid_gt(gt, max_depth)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, *, max_depth: float,
                  min_depth: float = 1e-3, mask: Optional[np.ndarray] = None
                  ) -> Dict[str, float]:
    """Compute METRIC_NAMES for one image; ``mask`` further restricts the valid pixels.

    Raises:
        EmptyMaskError: the image has no valid ground-truth pixel.

    """
    gt = np.asarray(gt)
    pred = _at_gt_resolution(pred, gt, max_depth, min_depth)
    valid = _valid_gt(gt, max_depth)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if not valid.any():
        raise EmptyMaskError(f'no valid ground-truth pixel (0 < gt <= {max_depth} m)')
    # Only the valid pixels are converted to float64 and clamped: most of the cost at
    # ground-truth resolution is in full-image passes.
    p = _clamped(pred[valid], max_depth, min_depth)
    g = gt[valid].astype(np.float64)
    diff = g - p
    log_ratio = np.log(g / p)  # one log serves rmse_log, log10 and the deltas
    abs_log = np.abs(log_ratio)
    return {
        'abs_rel': float(np.mean(np.abs(diff) / g)),
        'sq_rel': float(np.mean(diff * diff / g)),
        'rmse': float(np.sqrt(np.mean(diff * diff))),
        'rmse_log': float(np.sqrt(np.mean(log_ratio * log_ratio))),
        'log10': float(np.mean(abs_log) / np.log(10.0)),
        # max(g/p, p/g) < t  <=>  |ln(g/p)| < ln t
        'delta1': float(np.mean(abs_log < np.log(1.25))),
        'delta2': float(np.mean(abs_log < 2 * np.log(1.25))),
        'delta3': float(np.mean(abs_log < 3 * np.log(1.25))),
    }


class MetricAverager:
    """Mean of per-image metric dicts (the dataset figure)."""

    def __init__(self) -> None:
        """Start with no image."""
        self._sums: Dict[str, float] = {}
        self.count = 0

    def add(self, metrics: Dict[str, float]) -> None:
        """Add one image's metrics."""
        for k, v in metrics.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self.count += 1

    def mean(self) -> Dict[str, float]:
        """Return the mean of each metric over the images added."""
        if self.count == 0:
            raise EmptyMaskError('no image was scored')
        return {k: v / self.count for k, v in self._sums.items()}


def aide_per_band(pred_ov: np.ndarray, pred_av: np.ndarray, gt: np.ndarray, *,
                  max_depth: float, min_depth: float = 1e-3,
                  band_width: float = 1.0) -> Dict[int, float]:
    """Per-image absolute-error improvement of AV over visual-only, per depth band.

    For band k (``k*w < gt < (k+1)*w``, the paper's Eq. 1-4): the mean over the band's valid
    pixels of ``|M_OV - gt| - |M_AV - gt|``. Positive means the audio-visual prediction is
    closer. Bands without pixels in this image are absent from the result.
    """
    gt = np.asarray(gt)
    valid = _valid_gt(gt, max_depth)
    p_ov = _clamped(_at_gt_resolution(pred_ov, gt, max_depth, min_depth)[valid], max_depth,
                    min_depth)
    p_av = _clamped(_at_gt_resolution(pred_av, gt, max_depth, min_depth)[valid], max_depth,
                    min_depth)
    g_valid = gt[valid].astype(np.float64)
    gain = np.abs(p_ov - g_valid) - np.abs(p_av - g_valid)
    band = np.floor(g_valid / band_width).astype(np.int64)
    inside = g_valid > band * band_width  # strict lower edge, as in the paper
    band, gain = band[inside], gain[inside]
    counts = np.bincount(band)
    sums = np.bincount(band, weights=gain)
    return {int(k): float(sums[k] / counts[k]) for k in np.flatnonzero(counts)}


class AideAccumulator:
    """AIDE_k over a dataset: mean over the images that have pixels in band k."""

    def __init__(self) -> None:
        """Start with no image."""
        self._sums: Dict[int, float] = {}
        self._counts: Dict[int, int] = {}

    def add(self, per_band: Dict[int, float]) -> None:
        """Add one image's ``aide_per_band`` result."""
        for k, v in per_band.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1

    def result(self) -> Dict[int, Tuple[float, int]]:
        """Return {band k: (AIDE_k, number of images)} sorted by k."""
        return {k: (self._sums[k] / self._counts[k], self._counts[k])
                for k in sorted(self._sums)}


def summarize(metrics: Iterable[Dict[str, float]]) -> Dict[str, float]:
    """Mean of an iterable of per-image metric dicts."""
    avg = MetricAverager()
    for m in metrics:
        avg.add(m)
    return avg.mean()
