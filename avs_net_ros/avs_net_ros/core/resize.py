"""Separable bilinear resizing in numpy with the exact weights of torch's interpolate.

Three variants are needed and each must match its torch counterpart, because a model trained
with one of them must be fed identically on the robot:

- ``antialias=True, align_corners=False``: torchvision ``Resize`` on tensors (BatVision's
  spectrogram and image resize); a triangle filter widened by the scale factor when shrinking.
- ``align_corners=True``: ZoeDepth's resize of predictions to ground-truth size for metrics.
- ``align_corners=False``: plain ``F.interpolate(mode='bilinear')``.

Resizing is two sparse matrix products (rows, then columns): each output pixel reads only the
few input pixels under its filter, so shrinking a 1280x720 camera image or enlarging a model
output to it costs a few milliseconds, and the weights are cached per size.
"""

from functools import lru_cache
from typing import Tuple

import numpy as np
from scipy import sparse


@lru_cache(maxsize=64)
def _weights(in_size: int, out_size: int, align_corners: bool, antialias: bool) -> np.ndarray:
    """Return the (out_size, in_size) interpolation matrix for one axis."""
    w = np.zeros((out_size, in_size), dtype=np.float64)
    if in_size == out_size:
        np.fill_diagonal(w, 1.0)
        return w
    if align_corners:
        if out_size == 1:
            w[0, 0] = 1.0
            return w
        src = np.arange(out_size) * ((in_size - 1) / (out_size - 1))
        return _linear(w, src, in_size)
    scale = in_size / out_size
    if antialias:
        return _antialias(w, scale, in_size)
    # PyTorch's half-pixel source index, clamped at 0 below (area_pixel_compute_source_index).
    src = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0.0)
    return _linear(w, src, in_size)


def _linear(w: np.ndarray, src: np.ndarray, in_size: int) -> np.ndarray:
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    frac = src - i0
    rows = np.arange(len(src))
    np.add.at(w, (rows, i0), 1.0 - frac)
    np.add.at(w, (rows, i1), frac)
    return w


def _antialias(w: np.ndarray, scale: float, in_size: int) -> np.ndarray:
    # PIL-style separable filter as in ATen's _upsample_bilinear2d_aa.
    support = max(scale, 1.0)
    inv = 1.0 / support
    for i in range(w.shape[0]):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        j = np.arange(lo, hi)
        k = np.clip(1.0 - np.abs((j - center + 0.5) * inv), 0.0, None)
        total = k.sum()
        if total > 0:
            w[i, lo:hi] = k / total
    return w


def resize_bilinear(x: np.ndarray, size: Tuple[int, int], *, align_corners: bool = False,
                    antialias: bool = False) -> np.ndarray:
    """Resize the last two axes of ``x`` to ``size`` = (height, width).

    Float inputs keep their dtype; other dtypes are returned as float32. NaN pixels spread to
    their neighbours, as they do in torch, so mask invalid pixels before resizing.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f'resize_bilinear needs at least 2 dimensions, got shape {x.shape}')
    out_h, out_w = int(size[0]), int(size[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f'resize_bilinear: output size must be positive, got {size}')
    in_h, in_w = x.shape[-2:]
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    if (in_h, in_w) == (out_h, out_w):
        return x.astype(dtype, copy=False)
    wy = _sparse_weights(in_h, out_h, align_corners, antialias, dtype.str)
    wx = _sparse_weights(in_w, out_w, align_corners, antialias, dtype.str)
    lead = x.shape[:-2]
    b = int(np.prod(lead)) if lead else 1
    # Rows: (in_h, b*in_w) -> (out_h, b*in_w); columns: (in_w, out_h*b) -> (out_w, out_h*b).
    rows = np.moveaxis(x.astype(dtype, copy=False).reshape(b, in_h, in_w), 0, 1)
    y = wy @ rows.reshape(in_h, b * in_w)
    z = wx @ y.reshape(out_h * b, in_w).T
    out = np.moveaxis(z.T.reshape(out_h, b, out_w), 1, 0)
    return np.ascontiguousarray(out.reshape(lead + (out_h, out_w)))


def resize_nearest(x: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resample the last two axes of ``x`` to ``size`` by nearest neighbour (top-left rule).

    For masks and ground truth: every output pixel is one input pixel, so invalid values (0,
    NaN) stay invalid instead of blending into their neighbours.
    """
    x = np.asarray(x)
    h, w = x.shape[-2:]
    out_h, out_w = int(size[0]), int(size[1])
    if (h, w) == (out_h, out_w):
        return x
    rows = (np.arange(out_h) * h / out_h).astype(int)
    cols = (np.arange(out_w) * w / out_w).astype(int)
    return x[..., rows, :][..., cols]


@lru_cache(maxsize=64)
def _sparse_weights(in_size: int, out_size: int, align_corners: bool, antialias: bool,
                    dtype: str) -> sparse.csr_matrix:
    return sparse.csr_matrix(_weights(in_size, out_size, align_corners, antialias)
                             .astype(np.dtype(dtype)))
