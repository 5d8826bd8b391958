"""Score depth maps against ground truth: the paper's Table 1 / Table 2 rows and AIDE_k.

All figures come from ``avs_net_ros.core.metrics`` (one implementation): per-image metrics at
ground-truth resolution on the valid pixels (0 < gt <= max_depth), averaged over images.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from avs_net_ros.core.errors import EmptyMaskError
from avs_net_ros.core.metrics import (aide_per_band, AideAccumulator, depth_metrics,
                                      MetricAverager)
import numpy as np

#: Table 2 rows: raw relative output, scaled by the visual-only M_p, scaled by the AV M_p.
ROW_RAW, ROW_BASELINE, ROW_PROPOSED = 'w/o', 'Baseline', 'Proposed'
#: Table 2's upper bound: the relative output fitted to the ground truth itself, by the same
#: method as Baseline and Proposed (median ratio, or scale-and-shift for affine disparity).
ROW_ORACLE = 'GT oracle'
#: Table 2's rows in order.
TABLE2_ROWS = (ROW_RAW, ROW_BASELINE, ROW_PROPOSED, ROW_ORACLE)
#: Table 1 rows: the first-stage pseudo-dense maps.
ROW_MP_V, ROW_MP_AV = 'M_p (V)', 'M_p (AV)'


@dataclass
class Table:
    """Rows of averaged metrics, filled one image at a time."""

    rows: Dict[str, MetricAverager] = field(default_factory=dict)
    skipped: Dict[str, int] = field(default_factory=dict)

    def add(self, row: str, pred: np.ndarray, gt: np.ndarray, *, max_depth: float,
            min_depth: float, mask: Optional[np.ndarray] = None) -> Optional[Dict[str, float]]:
        """Score one prediction into ``row``; return its metrics (None if gt has no pixel)."""
        try:
            m = depth_metrics(pred, gt, max_depth=max_depth, min_depth=min_depth, mask=mask)
        except EmptyMaskError:
            m = None
        self.add_metrics(row, m)
        return m

    def add_metrics(self, row: str, m: Optional[Dict[str, float]]) -> None:
        """Add one image's computed metrics to ``row`` (None: the image had no valid pixel)."""
        avg = self.rows.setdefault(row, MetricAverager())
        if m is None:
            self.skipped[row] = self.skipped.get(row, 0) + 1
        else:
            avg.add(m)

    def result(self) -> Dict[str, Dict[str, Any]]:
        """Return {row: {metric: mean, ..., 'frames': n}} for rows with scored images."""
        out = {}
        for row, avg in self.rows.items():
            if avg.count:
                out[row] = {**avg.mean(), 'frames': avg.count}
        return out


class Aide:
    """AIDE_k of one (visual-only, audio-visual) pair of predictions over a dataset."""

    def __init__(self) -> None:
        """Start empty."""
        self.acc = AideAccumulator()

    def add(self, pred_v: np.ndarray, pred_av: np.ndarray, gt: np.ndarray, *,
            max_depth: float, min_depth: float) -> Dict[int, float]:
        """Add one image; return its per-band improvements."""
        per = aide_per_band(pred_v, pred_av, gt, max_depth=max_depth, min_depth=min_depth)
        self.acc.add(per)
        return per

    def result(self) -> List[Dict[str, float]]:
        """Return [{'band_m': k, 'lower_m', 'upper_m', 'aide_m', 'images'}] sorted by band."""
        return [{'band': k, 'lower_m': float(k), 'upper_m': float(k + 1), 'aide_m': v,
                 'images': n} for k, (v, n) in self.acc.result().items()]


class RecordedScorer:
    """Score recorded predictions (e.g. a replay's ``depth/metric``) against ground truth."""

    def __init__(self, max_depth: float, min_depth: float = 1e-3) -> None:
        """Score on pixels with min_depth < gt <= max_depth."""
        self.max_depth = max_depth
        self.min_depth = min_depth
        self.table = Table()
        self.per_frame: List[Dict[str, Any]] = []

    def add(self, stamp_ns: int, predictions: Dict[str, np.ndarray], gt: np.ndarray) -> None:
        """Score each role's prediction of one frame."""
        rec: Dict[str, Any] = {'stamp_ns': int(stamp_ns)}
        for role, pred in sorted(predictions.items()):
            m = self.table.add(role, pred, gt, max_depth=self.max_depth,
                               min_depth=self.min_depth)
            rec[role] = m
        self.per_frame.append(rec)

    def result(self) -> Dict[str, Dict[str, Any]]:
        """Return {role: averaged metrics}."""
        return self.table.result()
