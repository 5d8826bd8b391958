"""The metric-depth pipeline: image + echo -> pseudo-dense depth, relative depth, scale, metric.

Every preprocessing setting comes from the models' contract metadata (image size, echo
window, STFT, spectrogram size), so the robot feeds a model exactly as it was trained.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from avs_net_ros.core.contract import (ECHO_INPUT, IMAGE_INPUT, KIND_AV, KIND_RELATIVE,
                                       KIND_V)
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.resize import resize_bilinear
from avs_net_ros.core.scale import (disparity_to_depth, fit_scale, SCALE_METHODS, ScaleFit,
                                    valid_depth_mask)
from avs_net_ros.core.spectrogram import echo_spectrogram
from avs_net_ros.runtime.session import DEFAULT_PROVIDERS, OnnxModel

import numpy as np


@dataclass(frozen=True)
class DepthResult:
    """One pipeline output; maps are (H, W) float32 at the camera resolution, NaN = invalid.

    Attributes:
        metric: The published metric depth (m): relative depth times ``scale``, or the
            pseudo-dense depth itself when no relative model is configured.
        pseudo_dense: AVS-Net's pseudo-dense metric depth M_p (m).
        relative: The relative model's output as depth (inverted if it predicts disparity), or
            None without a relative model.
        scale: The fitted scale (for 'scale_shift', the disparity scale).
        fit: The full scale fit (method, shift, pixels used), or None without a relative model.

    """

    metric: np.ndarray
    pseudo_dense: np.ndarray
    relative: Optional[np.ndarray]
    scale: float
    fit: Optional[ScaleFit]


def image_to_tensor(rgb: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Turn an (H, W, 3) RGB image (uint8, or float in [0, 1]) into a (1, 3, h, w) input.

    Resized as torchvision's tensor Resize does (bilinear, antialiased), which is what the
    training datasets use.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise AvsInputError(f'image must be (height, width, 3) RGB, got shape {img.shape}')
    if img.dtype == np.uint8:
        x = img.astype(np.float32) / 255.0
    elif np.issubdtype(img.dtype, np.floating):
        x = img.astype(np.float32, copy=False)
        if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
            raise AvsInputError('float image must be finite and in [0, 1]')
    else:
        raise AvsInputError(f'image dtype must be uint8 or float in [0, 1], got {img.dtype}')
    chw = np.ascontiguousarray(x.transpose(2, 0, 1))
    return resize_bilinear(chw, size, antialias=True)[None].astype(np.float32)


class MetricDepthPipeline:
    """AVS-Net (AV or V) plus an optional relative-depth model, run with ONNX Runtime."""

    def __init__(self, avs_model: str, relative_model: Optional[str] = None,
                 providers: Sequence[str] = DEFAULT_PROVIDERS, scale_method: str = 'median',
                 intra_op_threads: int = 0, relative_output: Optional[str] = None) -> None:
        """Load the models; ``relative_output`` overrides a relative model's metadata.

        Raises:
            FileNotFoundError: a model path does not exist.
            ModelContractError: a model is not ONNX, breaks the contract, or has the wrong
                kind.

        """
        self.avs = OnnxModel(avs_model, providers, intra_op_threads, (KIND_AV, KIND_V))
        self.relative = None
        self.relative_output = None
        if relative_model:
            self.relative = OnnxModel(relative_model, providers, intra_op_threads,
                                      (KIND_RELATIVE,))
            self.relative_output = relative_output or self.relative.contract.relative_output
            if self.relative_output not in ('depth', 'disparity'):
                raise AvsInputError(f"relative_output must be 'depth' or 'disparity', got "
                                    f'{self.relative_output!r}')
        if scale_method not in SCALE_METHODS:
            raise AvsInputError(f'unknown scale method {scale_method!r}; choose one of '
                                f'{SCALE_METHODS}')
        self.scale_method = scale_method

    @property
    def takes_echo(self) -> bool:
        """Whether the AVS-Net model is audio-visual (needs an echo)."""
        return self.avs.contract.kind == KIND_AV

    @property
    def active_providers(self) -> dict:
        """Execution providers in use, per model."""
        out = {'avs': self.avs.active_providers}
        if self.relative is not None:
            out['relative'] = self.relative.active_providers
        return out

    def pseudo_dense(self, rgb: np.ndarray, echo: Optional[np.ndarray] = None,
                     sample_rate: Optional[int] = None) -> np.ndarray:
        """Return M_p (H, W) in metres at the image's resolution.

        Raises:
            AvsInputError: a bad image, or an echo that is missing (AV model), of the wrong
                sample rate, shape or length, or holding NaN/silent channels.

        """
        c = self.avs.contract
        feeds = {IMAGE_INPUT: image_to_tensor(rgb, c.image_size)}
        if c.kind == KIND_AV:
            if echo is None:
                raise AvsInputError('the audio-visual model needs an echo, none was given')
            spec = echo_spectrogram(echo, c.echo.features, sample_rate)
            feeds[ECHO_INPUT] = spec[None] if spec.ndim == 3 else spec
        out = self.avs.run(feeds)[0, 0]
        return self._to_camera(out, rgb.shape[:2])

    def relative_depth(self, rgb: np.ndarray) -> np.ndarray:
        """Return the relative model's output as depth (H, W) at the image's resolution."""
        if self.relative is None:
            raise AvsInputError('no relative-depth model is configured')
        feeds = {IMAGE_INPUT: image_to_tensor(rgb, self.relative.contract.image_size)}
        out = self._to_camera(self.relative.run(feeds)[0, 0], rgb.shape[:2])
        return out if self.relative_output == 'depth' else disparity_to_depth(out)

    def fit(self, relative: np.ndarray, pseudo_dense: np.ndarray) -> ScaleFit:
        """Fit the scale from relative depth to the pseudo-dense metric depth."""
        lo, hi = self.avs.contract.min_depth, self.avs.contract.max_depth
        mask = valid_depth_mask(pseudo_dense, lo, hi)
        return fit_scale(relative, pseudo_dense, self.scale_method, mask=mask)

    def infer(self, rgb: np.ndarray, echo: Optional[np.ndarray] = None,
              sample_rate: Optional[int] = None) -> DepthResult:
        """Run the whole pipeline on one camera frame and the echo that belongs to it."""
        m_p = self.pseudo_dense(rgb, echo, sample_rate)
        if self.relative is None:
            return DepthResult(m_p, m_p, None, 1.0, None)
        rel = self.relative_depth(rgb)
        fit = self.fit(rel, m_p)
        return DepthResult(fit.apply(rel), m_p, rel, fit.scale, fit)

    def _to_camera(self, depth: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
        out = resize_bilinear(depth.astype(np.float32), hw)
        out[~np.isfinite(out)] = np.nan
        return out
