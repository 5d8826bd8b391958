"""What the depth_inference node computes per frame and per echo, without ROS.

Echo frames run the whole pipeline (AVS-Net with the echo, relative model, scale fit) and feed
the fitted scale to a ``ScaleFilter``. Frames between echoes reuse the filtered scale on a new
relative map, so metric depth follows the camera rate. When no usable echo came for longer than
``echo_timeout`` (by frame stamps, so it also holds in bag replay), the engine falls back:

- ``visual_model``: the visual-only AVS-Net (kind avs_v) replaces the echo: its depth map sets
  the scale of the relative map (the paper's V baseline, exactly
  ``MetricDepthPipeline(visual_model, relative_model).infer(rgb)``), or is the output itself
  when no relative model is configured;
- ``last_scale``: the last filtered scale keeps being applied (needs a relative model);
- ``none``: nothing is published until echoes return.

Timestamps are seconds (float); every map is (H, W) float32 at the camera resolution with NaN
for invalid pixels. ``on_echo`` and ``on_frame`` may run on two threads at once (the node runs
echo frames and camera frames on workers of their own): the models run outside the engine's
lock, only the scale state is read and written under it.
"""

from dataclasses import dataclass
import threading
from typing import Dict, Optional

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.scale import ScaleFilter, ScaleFit
from avs_net_ros.runtime.pipeline import MetricDepthPipeline

import numpy as np

FALLBACKS = ('visual_model', 'last_scale', 'none')

SOURCE_ECHO = 'echo'
SOURCE_FILTERED = 'filtered_scale'
SOURCE_VISUAL = 'fallback_visual_model'
SOURCE_LAST_SCALE = 'fallback_last_scale'
SOURCE_VISUAL_ONLY = 'visual_only_model'


@dataclass(frozen=True)
class DepthOutput:
    """Maps to publish for one frame; ``metric`` None means nothing to publish.

    Attributes:
        metric: Metric depth (m) or None.
        pseudo_dense: AVS-Net's audio-visual M_p, only on echo frames.
        relative: The relative model's depth, when it was run.
        scale: The scale applied to ``relative`` (NaN when none).
        source: How ``metric`` was made (one of the SOURCE_* names, or '' when None).

    """

    metric: Optional[np.ndarray]
    pseudo_dense: Optional[np.ndarray] = None
    relative: Optional[np.ndarray] = None
    scale: float = float('nan')
    source: str = ''


class DepthEngine:
    """Echo and frame handling of the depth_inference node (see the module docstring)."""

    def __init__(self, pipeline: MetricDepthPipeline,
                 visual: Optional[MetricDepthPipeline] = None, fallback: str = 'visual_model',
                 echo_timeout: float = 1.0, time_constant: float = 0.5, max_jump: float = 1.5,
                 outlier_patience: int = 3) -> None:
        """Wrap ``pipeline`` (AV or V AVS-Net, optional relative model).

        Raises:
            AvsInputError: an unknown fallback, a fallback that cannot work with these
                models, or a ``visual`` pipeline that is not visual-only.

        """
        if fallback not in FALLBACKS:
            raise AvsInputError(f'fallback must be one of {FALLBACKS}, got {fallback!r}')
        if fallback == 'visual_model' and pipeline.takes_echo and visual is None:
            raise AvsInputError("fallback 'visual_model' needs a visual-only AVS-Net model "
                                "(parameter visual_model); or set fallback to 'last_scale' "
                                "or 'none'")
        if fallback == 'last_scale' and pipeline.relative is None:
            raise AvsInputError("fallback 'last_scale' needs a relative-depth model to scale")
        if visual is not None and visual.takes_echo:
            raise AvsInputError(f'the fallback model {visual.avs.path} takes echoes; it must '
                                'be a visual-only (avs_v) model')
        self.pipeline = pipeline
        if visual is not None and pipeline.relative is not None:
            # the V baseline scales the same relative map: share that session, not load twice
            visual = MetricDepthPipeline(visual.avs, pipeline.relative,
                                         scale_method=pipeline.scale_method,
                                         relative_output=pipeline.relative_kind)
        self.visual = visual
        self.fallback = fallback
        self.echo_timeout = float(echo_timeout)
        self.filter = ScaleFilter(time_constant, max_jump, outlier_patience, echo_timeout)
        self._lock = threading.Lock()  # the scale state below; never held while a model runs
        self._last_echo: Optional[float] = None
        self._last_scale: Optional[float] = None
        self._last_shift = 0.0
        self.last_source = ''

    @property
    def uses_echo(self) -> bool:
        """Whether the main AVS-Net takes echoes (AV); a V model ignores them."""
        return self.pipeline.takes_echo

    def on_echo(self, rgb: np.ndarray, echo: np.ndarray, sample_rate: Optional[int],
                stamp: float) -> DepthOutput:
        """Run the full pipeline on a frame and its echo; equals ``pipeline.infer``.

        Raises:
            AvsInputError: the image or echo is unusable (the filter is left untouched).

        """
        res = self.pipeline.infer(rgb, echo, sample_rate)
        with self._lock:
            self._last_echo = stamp if self._last_echo is None else max(self._last_echo, stamp)
            if res.fit is not None:
                self.filter.update(res.fit.scale, stamp)
                self._last_shift = res.fit.shift
                self._last_scale = self.filter.value(stamp)
            self.last_source = SOURCE_ECHO
        return DepthOutput(res.metric, res.pseudo_dense, res.relative, res.scale, SOURCE_ECHO)

    def on_frame(self, rgb: np.ndarray, stamp: float) -> DepthOutput:
        """Return the metric depth of a frame without an echo (filtered scale or fallback)."""
        p = self.pipeline
        if not p.takes_echo:
            res = p.infer(rgb)
            return self._out(DepthOutput(res.metric, None, res.relative, res.scale,
                                         SOURCE_VISUAL_ONLY))
        with self._lock:
            stale = self.echo_stale(stamp)
            scale = None if stale else self.filter.value(stamp)
            last_scale, shift = self._last_scale, self._last_shift
        if not stale:
            if p.relative is None or scale is None:
                return self._out(DepthOutput(None))  # AV without relative: echo frames only
            rel = p.relative_depth(rgb)
            return self._out(DepthOutput(self._scaled(rel, scale, shift), None, rel, scale,
                                         SOURCE_FILTERED))
        if self.fallback == 'visual_model':
            res = self.visual.infer(rgb)
            return self._out(DepthOutput(res.metric, None, res.relative, res.scale,
                                         SOURCE_VISUAL))
        if self.fallback == 'last_scale' and last_scale is not None:
            rel = p.relative_depth(rgb)
            return self._out(DepthOutput(self._scaled(rel, last_scale, shift), None, rel,
                                         last_scale, SOURCE_LAST_SCALE))
        return self._out(DepthOutput(None))

    def echo_stale(self, stamp: float) -> bool:
        """Whether the last usable echo is older than ``echo_timeout`` at ``stamp`` (or none)."""
        return self._last_echo is None or stamp - self._last_echo > self.echo_timeout

    def echo_age(self, stamp: float) -> Optional[float]:
        """Seconds from the last usable echo to ``stamp``, or None before the first."""
        return None if self._last_echo is None else stamp - self._last_echo

    def status(self, stamp: float) -> Dict[str, str]:
        """Key values for diagnostics at ``stamp``."""
        with self._lock:
            scale = self.filter.value(stamp)
            age = self.echo_age(stamp)
            last_scale, source = self._last_scale, self.last_source
        return {
            'echo_age_s': 'none yet' if age is None else f'{age:.3f}',
            'filtered_scale': 'none' if scale is None else f'{scale:.6g}',
            'last_scale': 'none' if last_scale is None else f'{last_scale:.6g}',
            'fallback': self.fallback,
            'last_source': source or 'none',
        }

    def _scaled(self, rel: np.ndarray, scale: float, shift: float) -> np.ndarray:
        return ScaleFit(self.pipeline.scale_method, 'depth', scale, shift).apply(rel)

    def _out(self, out: DepthOutput) -> DepthOutput:
        with self._lock:
            self.last_source = out.source
        return out
