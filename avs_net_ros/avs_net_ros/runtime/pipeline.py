"""The metric-depth pipeline: image + echo -> pseudo-dense depth, relative depth, scale, metric.

Every preprocessing setting comes from the models' contract metadata (image size, echo
window, STFT, spectrogram size), so the robot feeds a model exactly as it was trained. A
third-party relative model without metadata (MiDaS, Depth Anything, ZoeDepth) is fed as its
description says (``relative_spec``, ``core.foreign.ForeignModelSpec``).
"""

from dataclasses import dataclass, field
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

from avs_net_ros.core.contract import (ECHO_INPUT, IMAGE_INPUT, KIND_AV, KIND_RELATIVE,
                                       KIND_V)
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.foreign import ForeignModelSpec
from avs_net_ros.core.resize import resize_bilinear, resize_nearest
from avs_net_ros.core.scale import (AUTO_SCALE, default_scale_method, disparity_to_depth,
                                    fit_scale, output_relative_kind, RELATIVE_OUTPUTS,
                                    SCALE_METHODS, ScaleFit, valid_depth_mask)
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
        timings: Seconds spent per stage ('avs', 'relative', 'scale', 'upsample'), for
            diagnostics and benchmarks.

    """

    metric: np.ndarray
    pseudo_dense: np.ndarray
    relative: Optional[np.ndarray]
    scale: float
    fit: Optional[ScaleFit]
    timings: Dict[str, float] = field(default_factory=dict)


def image_to_tensor(rgb: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Turn an (H, W, 3) RGB image (uint8, or float in [0, 1]) into a (1, 3, h, w) input.

    Resized as torchvision's tensor Resize does (bilinear, antialiased), which is what the
    training datasets use.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise AvsInputError(f'image must be (height, width, 3) RGB, got shape {img.shape}')
    if img.dtype == np.uint8:
        x = img
    elif np.issubdtype(img.dtype, np.floating):
        x = img.astype(np.float32, copy=False)
        if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
            raise AvsInputError('float image must be finite and in [0, 1]')
    else:
        raise AvsInputError(f'image dtype must be uint8 or float in [0, 1], got {img.dtype}')
    out = resize_bilinear(x.transpose(2, 0, 1), size, antialias=True)[None]
    return out / np.float32(255.0) if img.dtype == np.uint8 else out  # resize is linear


def _image(rgb: np.ndarray, size: Tuple[int, int], cache: Optional[dict]) -> np.ndarray:
    if cache is None:
        return image_to_tensor(rgb, size)
    if size not in cache:
        cache[size] = image_to_tensor(rgb, size)
    return cache[size]


def _load(model: Union[str, OnnxModel], providers: Sequence[str], intra_op_threads: int,
          kinds: Tuple[str, ...],
          provider_options: Optional[Mapping[str, Mapping[str, str]]] = None,
          foreign: Optional[ForeignModelSpec] = None, spinning: bool = True) -> OnnxModel:
    if isinstance(model, OnnxModel):
        if model.contract.kind not in kinds:
            raise AvsInputError(f'{model.path} is a {model.contract.kind} model, expected one '
                                f'of {kinds}')
        if (foreign is not None and model.spec is not None
                and foreign.preprocessing() != model.spec.preprocessing()):
            raise AvsInputError(f'{model.path} was loaded with another third-party model '
                                'description than the one given')
        return model
    return OnnxModel(model, providers, intra_op_threads, kinds, provider_options,
                     foreign=foreign, spinning=spinning)


def single_map(out: np.ndarray, path: str) -> np.ndarray:
    """Return the one (H, W) map of a model output shaped (1, 1, H, W), (1, H, W) or (H, W)."""
    if out.ndim < 2 or int(np.prod(out.shape[:-2])) != 1:
        raise AvsInputError(f'{path} returned shape {list(out.shape)}, not one depth map')
    return out.reshape(out.shape[-2:]).astype(np.float32, copy=False)


class MetricDepthPipeline:
    """AVS-Net (AV or V) plus an optional relative-depth model, run with ONNX Runtime.

    ``infer`` is the whole pipeline. Its two halves are public for callers that combine one
    model's output with several others (the offline evaluation runs each model once per frame
    and pairs the relative map with both the AV and the V M_p): ``run_avs`` and
    ``run_relative`` give the model-resolution outputs, ``combine`` does the rest.
    """

    def __init__(self, avs_model: Union[str, OnnxModel],
                 relative_model: Union[str, OnnxModel, None] = None,
                 providers: Sequence[str] = DEFAULT_PROVIDERS, scale_method: str = AUTO_SCALE,
                 intra_op_threads: int = 0, relative_output: Optional[str] = None,
                 provider_options: Optional[Mapping[str, Mapping[str, str]]] = None,
                 relative_spec: Optional[ForeignModelSpec] = None,
                 intra_op_spinning: bool = False) -> None:
        """Load the models (paths), or share already loaded ``OnnxModel`` sessions.

        ``relative_output`` (one of core.scale.RELATIVE_OUTPUTS) overrides a relative model's
        metadata; for a relative model without metadata (a third-party file) it is the least
        description needed, ``relative_spec`` the full one (size, normalisation, tensor
        names). ``scale_method`` 'auto' picks the method that suits the relative output
        (``core.scale.default_scale_method``: scale_shift for affine-invariant disparity,
        median otherwise). ``provider_options`` go to the sessions of models given as paths
        (``session.gpu_provider_options``), and ``intra_op_spinning`` (``OnnxModel``'s
        ``spinning``) to their sessions. It is off by default: the models run one after the
        other, and the idle threads of one session spinning for work took the cores from the
        next (``benchmarks.bench_pipeline --compare-spinning``; README, Latency).

        Raises:
            FileNotFoundError: a model path does not exist.
            ModelContractError: a model is not ONNX, breaks the contract (a relative model
                without metadata and without an output kind: the message says what to give),
                does not fit its description, or has the wrong kind.
            AvsInputError: a loaded model of the wrong kind, or a bad option.

        """
        if relative_output and relative_output not in RELATIVE_OUTPUTS:
            raise AvsInputError(f'relative_output must be one of {RELATIVE_OUTPUTS}, got '
                                f'{relative_output!r}')
        if relative_spec is not None and relative_output and (
                relative_spec.output != relative_output):
            raise AvsInputError(f'relative_output {relative_output!r} contradicts the '
                                f"description's output {relative_spec.output!r}")
        self.avs = _load(avs_model, providers, intra_op_threads, (KIND_AV, KIND_V),
                         provider_options, spinning=intra_op_spinning)
        self.relative = None
        #: What the relative model outputs (one of RELATIVE_OUTPUTS), and as 'depth' or
        #: 'disparity' how its output becomes depth.
        self.relative_kind: Optional[str] = None
        self.relative_output: Optional[str] = None
        if relative_model:
            if relative_spec is None and relative_output and not isinstance(relative_model,
                                                                            OnnxModel):
                relative_spec = ForeignModelSpec(relative_output)  # enough for a foreign file
            self.relative = _load(relative_model, providers, intra_op_threads,
                                  (KIND_RELATIVE,), provider_options, relative_spec,
                                  intra_op_spinning)
            self.relative_kind = relative_output or (
                relative_spec.output if relative_spec is not None
                else self.relative.contract.relative_output)
            self.relative_output = output_relative_kind(self.relative_kind)
        if scale_method == AUTO_SCALE:
            scale_method = (default_scale_method(self.relative_kind) if self.relative_kind
                            else 'median')
        if scale_method not in SCALE_METHODS:
            raise AvsInputError(f'unknown scale method {scale_method!r}; choose one of '
                                f'{(AUTO_SCALE,) + SCALE_METHODS}')
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

    def warm_up(self) -> None:
        """Run every session once on neutral inputs of the declared shapes.

        ONNX Runtime allocates and tunes on the first run, which can take several times a
        normal frame's time; doing it at start-up keeps that stall off the first camera frames.
        """
        c = self.avs.contract
        feeds = {IMAGE_INPUT: np.full((1, 3) + c.image_size, 0.5, np.float32)}
        if c.kind == KIND_AV:
            f = c.echo.features
            feeds[ECHO_INPUT] = np.zeros((1, f.channels) + f.spec_size, np.float32)
        self.avs.run(feeds)
        if self.relative is not None:
            size = self.relative.contract.image_size
            self.run_relative(np.full(size + (3,), 0.5, np.float32))

    def pseudo_dense(self, rgb: np.ndarray, echo: Optional[np.ndarray] = None,
                     sample_rate: Optional[int] = None) -> np.ndarray:
        """Return M_p (H, W) in metres at the image's resolution.

        Raises:
            AvsInputError: a bad image, or an echo that is missing (AV model), of the wrong
                sample rate, shape or length, or holding NaN/silent channels.

        """
        return self.to_camera(self.run_avs(rgb, echo, sample_rate), rgb.shape[:2])

    def relative_depth(self, rgb: np.ndarray) -> np.ndarray:
        """Return the relative model's output as depth (H, W) at the image's resolution."""
        return self.relative_to_camera(self.run_relative(rgb), rgb.shape[:2])

    def fit(self, relative: np.ndarray, pseudo_dense: np.ndarray) -> ScaleFit:
        """Fit the scale from relative depth to the pseudo-dense metric depth.

        The maps may differ in size: M_p is resampled to the relative map's grid. Pixels where
        M_p lies outside the model's [min_depth, max_depth] are left out.
        """
        if pseudo_dense.shape != relative.shape:
            pseudo_dense = resize_bilinear(pseudo_dense, relative.shape)
        lo, hi = self.avs.contract.min_depth, self.avs.contract.max_depth
        mask = valid_depth_mask(pseudo_dense, lo, hi)
        return fit_scale(relative, pseudo_dense, self.scale_method, mask=mask)

    def fit_ground_truth(self, rel_raw: np.ndarray, ground_truth: np.ndarray,
                         max_depth: float, min_depth: float = 0.0) -> ScaleFit:
        """Fit the relative output to the ground truth: ``fit``'s oracle, GT in place of M_p.

        Same scale method and grid as ``fit`` (the relative model's output resolution, where
        the ground truth is resampled by nearest neighbour, so invalid pixels stay out); only
        pixels with ``min_depth`` < gt <= ``max_depth`` count. The paper's upper bound for
        scaling a relative model: the median ratio against the ground truth for depth, the
        scale-and-shift fit for affine-invariant disparity.

        Raises:
            EmptyMaskError: too few valid ground-truth pixels on that grid.

        """
        rel = self._as_depth(rel_raw)
        gt = resize_nearest(np.asarray(ground_truth, dtype=np.float32), rel.shape)
        return fit_scale(rel, gt, self.scale_method,
                         mask=valid_depth_mask(gt, min_depth, max_depth))

    def infer(self, rgb: np.ndarray, echo: Optional[np.ndarray] = None,
              sample_rate: Optional[int] = None) -> DepthResult:
        """Run the whole pipeline on one camera frame and the echo that belongs to it.

        The scale is fitted at the relative model's output resolution (a median is
        insensitive to the grid, and this is far cheaper than at camera resolution); the maps
        are then brought to the camera resolution and the fit applied there.
        """
        t0 = time.perf_counter()
        images: Dict[Tuple[int, int], np.ndarray] = {}  # models sharing a size: resize once
        m_p = self.run_avs(rgb, echo, sample_rate, images)
        t1 = time.perf_counter()
        rel_raw = None if self.relative is None else self.run_relative(rgb, images)
        t2 = time.perf_counter()
        out = self.combine(m_p, rel_raw, rgb.shape[:2])
        out.timings.update(avs=t1 - t0)
        if self.relative is not None:
            out.timings.update(relative=t2 - t1)
        return out

    def run_avs(self, rgb: np.ndarray, echo: Optional[np.ndarray] = None,
                sample_rate: Optional[int] = None,
                images: Optional[Dict[Tuple[int, int], np.ndarray]] = None) -> np.ndarray:
        """Return AVS-Net's M_p (metres) at the model's output resolution.

        ``images`` caches the resized input per model input size, to share between models.

        Raises:
            AvsInputError: as ``pseudo_dense``.

        """
        c = self.avs.contract
        feeds = {IMAGE_INPUT: _image(rgb, c.image_size, images)}
        if c.kind == KIND_AV:
            if echo is None:
                raise AvsInputError('the audio-visual model needs an echo, none was given')
            spec = echo_spectrogram(echo, c.echo.features, sample_rate)
            feeds[ECHO_INPUT] = spec[None] if spec.ndim == 3 else spec
        return self.avs.run(feeds)[0, 0]

    def run_relative(self, rgb: np.ndarray,
                     images: Optional[Dict[Tuple[int, int], np.ndarray]] = None) -> np.ndarray:
        """Return the relative model's raw output (``relative_output``) at its resolution."""
        if self.relative is None:
            raise AvsInputError('no relative-depth model is configured')
        model = self.relative
        image = _image(rgb, self.relative_input_size(rgb.shape[:2]), images)
        if model.foreign is not None:
            image = model.foreign.preprocess(image)
        return single_map(model.run({model.image_input: image}), model.path)

    def relative_input_size(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """Return the (height, width) the relative model is fed for a camera image ``hw``."""
        if self.relative.foreign is not None:
            return self.relative.foreign.input_size(hw)
        return self.relative.contract.image_size

    def relative_to_camera(self, rel_raw: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
        """Bring ``run_relative``'s output to ``hw`` as depth (resized, then inverted)."""
        return self._as_depth(self.to_camera(rel_raw, hw))

    def combine(self, m_p: np.ndarray, rel_raw: Optional[np.ndarray], hw: Tuple[int, int],
                pseudo_dense: Optional[np.ndarray] = None,
                relative: Optional[np.ndarray] = None) -> DepthResult:
        """Finish ``infer`` from model-resolution outputs (``run_avs``, ``run_relative``).

        ``pseudo_dense`` and ``relative`` may pass the maps already brought to ``hw``
        (``to_camera(m_p, hw)``, ``relative_to_camera(rel_raw, hw)``) so callers that pair one
        map with several others do not resize it again; the result is the same.
        """
        t0 = time.perf_counter()
        fit = None if rel_raw is None else self.fit(self._as_depth(rel_raw), m_p)
        t1 = time.perf_counter()
        if pseudo_dense is None:
            pseudo_dense = self.to_camera(m_p, hw)
        if fit is None:
            return DepthResult(pseudo_dense, pseudo_dense, None, 1.0, None,
                               {'upsample': time.perf_counter() - t1})
        if relative is None:
            relative = self.relative_to_camera(rel_raw, hw)
        return DepthResult(fit.apply(relative), pseudo_dense, relative, fit.scale, fit,
                           {'scale': t1 - t0, 'upsample': time.perf_counter() - t1})

    def to_camera(self, depth: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
        """Resize a model-resolution map to ``hw`` (bilinear); non-finite values become NaN."""
        out = resize_bilinear(depth.astype(np.float32), hw)
        out[~np.isfinite(out)] = np.nan
        return out

    def _as_depth(self, raw: np.ndarray) -> np.ndarray:
        return raw if self.relative_output == 'depth' else disparity_to_depth(raw)
