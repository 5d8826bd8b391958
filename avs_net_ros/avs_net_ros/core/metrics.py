"""Depth metrics as the paper, ZoeDepth and Monodepth2 compute them, and the paper's AIDE_k.

Per image: the prediction is resized to the ground-truth resolution (bilinear,
align_corners=True as ZoeDepth's ``compute_metrics``), NaN/inf predictions are replaced and the
prediction is clamped to [min_depth, max_depth] (ZoeDepth), and the valid pixels are
``gt > 0 and gt <= max_depth``. Dataset figures are the mean of the per-image figures.
"""

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple, Union

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
    """Return float64 values clamped to [min_depth, max_depth], NaN as min_depth (ZoeDepth)."""
    v = values.astype(np.float64)
    np.clip(v, min_depth, max_depth, out=v)  # +-inf are clamped, NaN stays
    nan = np.isnan(v)
    if nan.any():
        v[nan] = min_depth
    return v


def _valid_gt(gt: np.ndarray, max_depth: float) -> np.ndarray:
    with np.errstate(invalid='ignore'):
        valid = (gt > 0) & (gt <= max_depth)  # NaN compares False
        return valid & np.isfinite(gt) if np.isinf(max_depth) else valid


@dataclass(frozen=True)
class GroundTruth:
    """One image's ground truth, prepared once to score several predictions against it.

    Attributes:
        depth: The (H, W) ground-truth depth as given.
        max_depth: The scoring range's upper bound (valid: 0 < gt <= max_depth).
        valid: (H, W) bool, the valid pixels.
        index: Their flat indices (row-major), for ``gather``.
        values: Their depths (float64).
        log_values: Their natural logarithms.
        inv_values: Their reciprocals.

    """

    depth: np.ndarray
    max_depth: float
    valid: np.ndarray
    index: np.ndarray
    values: np.ndarray
    log_values: np.ndarray
    inv_values: np.ndarray

    @classmethod
    def prepare(cls, gt: np.ndarray, max_depth: float) -> 'GroundTruth':
        """Find the valid pixels of ``gt`` and take their values and logarithms."""
        gt = np.asarray(gt)
        valid = _valid_gt(gt, max_depth)
        index = np.flatnonzero(valid)
        values = np.ravel(gt).take(index).astype(np.float64)
        return cls(gt, float(max_depth), valid, index, values, np.log(values), 1.0 / values)

    def gather(self, image: np.ndarray) -> np.ndarray:
        """Return ``image``'s values at the valid pixels (same shape as the ground truth).

        Integer indices, computed once: several times faster than a boolean mask per map.
        """
        return np.ravel(image).take(self.index)


def _ground_truth(gt: Union[np.ndarray, GroundTruth], max_depth: float) -> GroundTruth:
    if isinstance(gt, GroundTruth):
        if gt.max_depth != float(max_depth):
            raise AvsInputError(f'ground truth prepared for max_depth {gt.max_depth}, scored '
                                f'with {max_depth}')
        return gt
    return GroundTruth.prepare(gt, max_depth)


def prepare_prediction(pred: np.ndarray, gt: np.ndarray, *, max_depth: float,
                       min_depth: float = 1e-3) -> Tuple[np.ndarray, np.ndarray]:
    """Return (prediction at gt resolution, clamped; valid-pixel mask) for one image."""
    gt = np.asarray(gt)
    pred = _at_gt_resolution(pred, gt, max_depth, min_depth)
    return _clamped(pred, max_depth, min_depth), _valid_gt(gt, max_depth)


def depth_metrics(pred: np.ndarray, gt: Union[np.ndarray, GroundTruth], *, max_depth: float,
                  min_depth: float = 1e-3, mask: Optional[np.ndarray] = None
                  ) -> Dict[str, float]:
    """Compute METRIC_NAMES for one image; ``mask`` further restricts the valid pixels.

    ``gt`` may be a ``GroundTruth`` prepared once for several predictions of the same image.

    Raises:
        EmptyMaskError: the image has no valid ground-truth pixel.

    """
    g_all = _ground_truth(gt, max_depth)
    pred = _at_gt_resolution(pred, g_all.depth, max_depth, min_depth)
    if mask is not None:
        g_all = GroundTruth(g_all.depth, g_all.max_depth, *_restrict(g_all, mask))
    if g_all.values.size == 0:
        raise EmptyMaskError(f'no valid ground-truth pixel (0 < gt <= {max_depth} m)')
    # Only the valid pixels are gathered (precomputed indices), converted to float64 and
    # clamped: full-image passes would dominate at ground-truth resolution. The arithmetic runs
    # in place on three buffers, and sums over n replace means, products with 1/g divisions.
    p = _clamped(g_all.gather(pred), max_depth, min_depth)
    n = p.size
    log_ratio = np.log(p)  # one log serves rmse_log, log10 and the deltas
    np.subtract(g_all.log_values, log_ratio, out=log_ratio)
    # (no ndarray.dot: BLAS threads would compete with the other frames' worker processes)
    diff = np.subtract(g_all.values, p, out=p)
    tmp = np.abs(diff)
    abs_rel = np.multiply(tmp, g_all.inv_values, out=tmp).sum()
    sq = np.multiply(diff, diff, out=tmp)
    sq_sum = sq.sum()
    sq_rel = np.multiply(sq, g_all.inv_values, out=sq).sum()
    rmse_log = np.multiply(log_ratio, log_ratio, out=diff).sum()
    abs_log = np.abs(log_ratio, out=log_ratio)
    return {
        'abs_rel': float(abs_rel / n),
        'sq_rel': float(sq_rel / n),
        'rmse': float(np.sqrt(sq_sum / n)),
        'rmse_log': float(np.sqrt(rmse_log / n)),
        'log10': float(abs_log.sum() / n / np.log(10.0)),
        # max(g/p, p/g) < t  <=>  |ln(g/p)| < ln t
        'delta1': np.count_nonzero(abs_log < np.log(1.25)) / n,
        'delta2': np.count_nonzero(abs_log < 2 * np.log(1.25)) / n,
        'delta3': np.count_nonzero(abs_log < 3 * np.log(1.25)) / n,
    }


def median_scale_error(pred: np.ndarray, gt: np.ndarray, *, max_depth: float,
                       min_depth: float = 1e-3) -> float:
    """Return ``|ln(median(pred) / median(gt))|`` on valid pixels: how wrong the scale is.

    The figure median scaling passes on to any relative model (0 = right scale, 0.69 = off by
    a factor of two); ``median_log_ratio`` without the absolute value.

    Raises:
        EmptyMaskError: no pixel is valid in both.

    """
    return abs(median_log_ratio(pred, gt, max_depth=max_depth, min_depth=min_depth))


def median_log_ratio(pred: np.ndarray, gt: np.ndarray, *, max_depth: float,
                     min_depth: float = 1e-3) -> float:
    """Return ``ln(median(pred) / median(gt))`` on valid pixels: > 0 too far, < 0 too near.

    Pixels count where the ground truth is valid (0 < gt <= max_depth) and the prediction is
    finite and positive; predictions are clamped to [min_depth, max_depth].

    Raises:
        EmptyMaskError: no pixel is valid in both.

    """
    gt = np.asarray(gt, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim != 2 or gt.ndim != 2:
        raise AvsInputError(f'depth maps must be 2-D (H, W); got prediction {p.shape} and '
                            f'ground truth {gt.shape}')
    if p.shape != gt.shape:  # nearest pixel centres: invalid (NaN) pixels must not blend
        rows = (np.arange(gt.shape[0]) + 0.5) * p.shape[0] // gt.shape[0]
        cols = (np.arange(gt.shape[1]) + 0.5) * p.shape[1] // gt.shape[1]
        p = p[rows.astype(np.int64)[:, None], cols.astype(np.int64)[None, :]]
    with np.errstate(invalid='ignore'):
        both = _valid_gt(gt, max_depth) & np.isfinite(p) & (p > 0)
    if not both.any():
        raise EmptyMaskError('no pixel is valid in both the prediction and the ground truth')
    med = float(np.median(np.clip(p[both], min_depth, max_depth)))
    return float(np.log(med / float(np.median(gt[both]))))


def _restrict(gt: GroundTruth, mask: np.ndarray) -> Tuple[np.ndarray, ...]:
    mask = np.asarray(mask, dtype=bool)
    keep = gt.gather(mask)
    return (gt.valid & mask, gt.index[keep], gt.values[keep], gt.log_values[keep],
            gt.inv_values[keep])


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


def aide_per_band(pred_ov: np.ndarray, pred_av: np.ndarray,
                  gt: Union[np.ndarray, GroundTruth], *,
                  max_depth: float, min_depth: float = 1e-3,
                  band_width: float = 1.0) -> Dict[int, float]:
    """Per-image absolute-error improvement of AV over visual-only, per depth band.

    For band k (``k*w < gt < (k+1)*w``, the paper's Eq. 1-4): the mean over the band's valid
    pixels of ``|M_OV - gt| - |M_AV - gt|``. Positive means the audio-visual prediction is
    closer. Bands without pixels in this image are absent from the result.
    """
    g_all = _ground_truth(gt, max_depth)
    p_ov = _clamped(g_all.gather(_at_gt_resolution(pred_ov, g_all.depth, max_depth,
                                                   min_depth)), max_depth, min_depth)
    p_av = _clamped(g_all.gather(_at_gt_resolution(pred_av, g_all.depth, max_depth,
                                                   min_depth)), max_depth, min_depth)
    g_valid = g_all.values
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
