"""Putting relative depth on a metric scale, and filtering that scale over time.

The paper's correction (AVS-Net, arXiv 2412.01637) is ``M = R * median(M_p) / median(R)`` on
the pixels valid in both maps, with R inverted first when the relative model predicts
disparity. Two alternatives are offered for comparison: the least-squares scale, and a
scale-and-shift fit in disparity space for affine-invariant models (MiDaS-style outputs, where
a median ratio alone cannot remove the unknown shift).
"""

from dataclasses import dataclass
import math
from typing import Optional

from avs_net_ros.core.errors import AvsInputError, EmptyMaskError

import numpy as np


SCALE_METHODS = ('median', 'least_squares', 'scale_shift')
RELATIVE_KINDS = ('depth', 'disparity')
#: What a relative model may output, and what each means for scaling:
#: 'depth' and 'disparity' are right up to a scale (median); 'affine_disparity' is disparity
#: up to a scale and a shift (MiDaS, Depth Anything: scale-and-shift); 'metric_depth' is a
#: zero-shot metric model (ZoeDepth, ...) used as relative depth (median).
RELATIVE_OUTPUTS = ('depth', 'disparity', 'affine_disparity', 'metric_depth')
#: ``scale_method`` value that picks ``default_scale_method`` of the relative output.
AUTO_SCALE = 'auto'


def output_relative_kind(output: str) -> str:
    """Return 'depth' or 'disparity': how a RELATIVE_OUTPUTS value is turned into depth."""
    if output not in RELATIVE_OUTPUTS:
        raise AvsInputError(f'unknown relative output {output!r}; choose one of '
                            f'{RELATIVE_OUTPUTS}')
    return 'disparity' if output.endswith('disparity') else 'depth'


def default_scale_method(output: str) -> str:
    """Return the scale method suited to a relative output (see RELATIVE_OUTPUTS)."""
    output_relative_kind(output)  # checks the name
    return 'scale_shift' if output == 'affine_disparity' else 'median'


def disparity_to_depth(disparity: np.ndarray, min_disparity: float = 1e-6) -> np.ndarray:
    """Invert a disparity map; pixels with disparity <= ``min_disparity`` become NaN."""
    d = np.asarray(disparity, dtype=np.float32)
    out = np.full(d.shape, np.nan, dtype=np.float32)
    ok = np.isfinite(d) & (d > min_disparity)
    np.divide(1.0, d, out=out, where=ok)
    return out


def valid_depth_mask(depth: np.ndarray, min_depth: float = 0.0,
                     max_depth: float = math.inf) -> np.ndarray:
    """Return pixels that are finite, > ``min_depth`` and <= ``max_depth``."""
    d = np.asarray(depth)
    with np.errstate(invalid='ignore'):
        return np.isfinite(d) & (d > min_depth) & (d <= max_depth)


@dataclass(frozen=True)
class ScaleFit:
    """A fitted map from relative output to metric depth.

    Attributes:
        method: One of SCALE_METHODS.
        relative_kind: 'depth' or 'disparity', what the relative model outputs.
        scale: Multiplier (on depth for 'median'/'least_squares', on disparity for
            'scale_shift').
        shift: Added disparity (1/m) for 'scale_shift'; 0 otherwise.
        num_pixels: Pixels the fit used.

    """

    method: str
    relative_kind: str
    scale: float
    shift: float = 0.0
    num_pixels: int = 0

    def apply(self, relative: np.ndarray) -> np.ndarray:
        """Return metric depth (float32, NaN where the relative output gives none)."""
        r = np.asarray(relative, dtype=np.float32)
        if self.method == 'scale_shift':
            disp = r if self.relative_kind == 'disparity' else _depth_to_disparity(r)
            return disparity_to_depth(self.scale * disp + self.shift)
        depth = r if self.relative_kind == 'depth' else disparity_to_depth(r)
        out = depth * np.float32(self.scale)
        out[~valid_depth_mask(out)] = np.nan
        return out


def _depth_to_disparity(depth: np.ndarray) -> np.ndarray:
    return disparity_to_depth(depth)  # 1/x is its own inverse; non-positive -> NaN


def _check_pair(relative: np.ndarray, reference: np.ndarray,
                mask: Optional[np.ndarray]) -> np.ndarray:
    if relative.shape != reference.shape:
        raise AvsInputError(f'relative map {relative.shape} and metric reference '
                            f'{reference.shape} must have the same shape; resize first')
    if mask is None:
        return np.ones(relative.shape, dtype=bool)
    m = np.asarray(mask)
    if m.shape != relative.shape or m.dtype != bool:
        raise AvsInputError(f'mask must be a boolean array of shape {relative.shape}, got '
                            f'{m.dtype} {m.shape}')
    return m


def fit_scale(relative: np.ndarray, reference: np.ndarray, method: str = 'median', *,
              relative_kind: str = 'depth', mask: Optional[np.ndarray] = None) -> ScaleFit:
    """Fit the map from ``relative`` to the metric ``reference`` on valid pixels.

    Valid pixels are those inside ``mask`` (if given) where both maps are finite and positive.

    Raises:
        EmptyMaskError: no valid pixel (for 'scale_shift', fewer than 2).
        AvsInputError: unknown method or kind, or mismatched shapes.

    """
    if method not in SCALE_METHODS:
        raise AvsInputError(f'unknown scale method {method!r}; choose one of {SCALE_METHODS}')
    if relative_kind not in RELATIVE_KINDS:
        raise AvsInputError(f'unknown relative kind {relative_kind!r}; choose one of '
                            f'{RELATIVE_KINDS}')
    rel = np.asarray(relative, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    mask = _check_pair(rel, ref, mask)
    if method == 'scale_shift':
        x = rel if relative_kind == 'disparity' else 1.0 / np.where(rel > 0, rel, np.nan)
        valid = mask & valid_depth_mask(ref) & np.isfinite(x)
        if valid.sum() < 2:
            raise EmptyMaskError(f'scale-and-shift fit needs at least 2 valid pixels, got '
                                 f'{int(valid.sum())}')
        a = np.stack([x[valid], np.ones(int(valid.sum()))], axis=1)
        (s, b), *_ = np.linalg.lstsq(a, 1.0 / ref[valid], rcond=None)
        return ScaleFit(method, relative_kind, float(s), float(b), int(valid.sum()))
    depth = rel if relative_kind == 'depth' else 1.0 / np.where(rel > 0, rel, np.nan)
    valid = mask & valid_depth_mask(ref) & valid_depth_mask(depth)
    n = int(valid.sum())
    if n == 0:
        raise EmptyMaskError('no pixel is valid in both the relative map and the metric '
                             'reference; cannot fit a scale')
    r, m = depth[valid], ref[valid]
    if method == 'median':
        s = float(np.median(m) / np.median(r))
    else:
        s = float(np.dot(r, m) / np.dot(r, r))
    return ScaleFit(method, relative_kind, s, 0.0, n)


class ScaleFilter:
    """Smooths per-echo scale estimates so metric depth can be published at camera rate.

    Behaviour, all in log-scale (a scale of 2 and of 0.5 are equally far from 1):

    - The first accepted estimate, or the first after a gap longer than ``max_age``, is taken
      as is (stale state is never blended with new data).
    - Later estimates are blended with an exponential moving average of time constant
      ``time_constant`` seconds, so the weight of a new estimate grows with the time since the
      last one.
    - An estimate more than ``max_jump`` times away from the filtered scale is an outlier and
      is rejected. If ``outlier_patience`` consecutive outliers agree with each other (within
      ``max_jump`` of their median), the scene has changed: the filter restarts at their
      median.
    - Non-finite or non-positive estimates are rejected.
    - ``value(t)`` is None before the first estimate and once the last accepted one is older
      than ``max_age``, so callers know to fall back.
    """

    def __init__(self, time_constant: float = 0.5, max_jump: float = 1.5,
                 outlier_patience: int = 3, max_age: float = 2.0) -> None:
        """Create an empty filter; see the class docstring for the parameters."""
        if time_constant < 0 or max_jump <= 1 or outlier_patience < 1 or max_age <= 0:
            raise AvsInputError('ScaleFilter needs time_constant >= 0, max_jump > 1, '
                                'outlier_patience >= 1, max_age > 0')
        self.time_constant = time_constant
        self.max_jump = max_jump
        self.outlier_patience = outlier_patience
        self.max_age = max_age
        self.reset()

    def reset(self) -> None:
        """Forget all estimates."""
        self._log_scale: Optional[float] = None
        self._stamp: Optional[float] = None
        self._outliers: list = []
        self.last_rejection: Optional[str] = None

    def update(self, scale: float, stamp: float) -> bool:
        """Offer a new estimate taken at ``stamp`` seconds; return whether it was accepted."""
        if not (math.isfinite(scale) and scale > 0):
            self.last_rejection = f'scale {scale} is not a positive finite number'
            return False
        log_s = math.log(scale)
        if self._log_scale is None or self._stale(stamp):
            self._restart(log_s, stamp)
            return True
        if abs(log_s - self._log_scale) > math.log(self.max_jump):
            self._outliers.append(log_s)
            self._outliers = self._outliers[-self.outlier_patience:]
            med = float(np.median(self._outliers))
            if (len(self._outliers) == self.outlier_patience
                    and all(abs(o - med) <= math.log(self.max_jump) for o in self._outliers)):
                self._restart(med, stamp)
                return True
            self.last_rejection = (f'scale {scale:.4g} is more than {self.max_jump}x away from '
                                   f'the filtered {math.exp(self._log_scale):.4g}')
            return False
        self._outliers = []
        dt = max(0.0, stamp - self._stamp)
        alpha = 1.0 if self.time_constant == 0 else 1.0 - math.exp(-dt / self.time_constant)
        self._log_scale += alpha * (log_s - self._log_scale)
        self._stamp = max(self._stamp, stamp)
        return True

    def value(self, stamp: float) -> Optional[float]:
        """Return the filtered scale at ``stamp``, or None when empty or older than ``max_age``."""
        if self._log_scale is None or self._stale(stamp):
            return None
        return math.exp(self._log_scale)

    def age(self, stamp: float) -> Optional[float]:
        """Seconds since the last accepted estimate, or None when empty."""
        return None if self._stamp is None else stamp - self._stamp

    def _stale(self, stamp: float) -> bool:
        return self._stamp is not None and stamp - self._stamp > self.max_age

    def _restart(self, log_s: float, stamp: float) -> None:
        self._log_scale = log_s
        self._stamp = stamp
        self._outliers = []
        self.last_rejection = None
