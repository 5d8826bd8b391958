"""The depth node's per-frame logic on real ONNX Runtime sessions (no DDS needed)."""

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.scale import ScaleFit
from avs_net_ros.runtime.depth_engine import (DepthEngine, SOURCE_ECHO, SOURCE_FILTERED,
                                              SOURCE_LAST_SCALE, SOURCE_VISUAL, SOURCE_VISUAL_ONLY)
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
import numpy as np
import pytest
from ros_fixtures import half_dark_frame, make_echo, make_frame

SR = 44100


def _pipe(model_set, avs='av', relative='masked'):
    return MetricDepthPipeline(model_set[avs], model_set[relative] if relative else None,
                               providers=['cpu'])


def _nan_equal(a, b):
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)


def test_echo_frame_equals_pipeline_and_frames_between_use_its_scale(model_set):
    pipe = _pipe(model_set)
    eng = DepthEngine(pipe, _pipe(model_set, 'v', None), echo_timeout=1.0)
    rgb, echo = half_dark_frame(1), make_echo(1)
    out = eng.on_echo(rgb, echo, SR, 10.0)
    ref = pipe.infer(rgb, echo, SR)
    assert out.source == SOURCE_ECHO
    _nan_equal(out.metric, ref.metric)
    _nan_equal(out.pseudo_dense, ref.pseudo_dense)
    assert out.scale == ref.scale and np.isnan(out.metric[:, :30]).all()
    rgb2 = half_dark_frame(2)
    between = eng.on_frame(rgb2, 10.2)
    assert between.source == SOURCE_FILTERED and between.scale == pytest.approx(ref.scale)
    _nan_equal(between.metric, ScaleFit('median', 'depth', ref.scale).apply(
        pipe.relative_depth(rgb2)))
    # a second echo is blended in log space with weight 1 - exp(-dt / tau)
    out2 = eng.on_echo(rgb2, make_echo(2, gain=0.15), SR, 10.5)
    assert 1.05 < out2.scale / ref.scale < 1.5  # not an outlier for max_jump 1.5
    w = 1 - np.exp(-0.5 / 0.5)
    want = np.exp(np.log(ref.scale) + w * (np.log(out2.scale) - np.log(ref.scale)))
    assert eng.on_frame(rgb, 10.6).scale == pytest.approx(want, rel=1e-9)


def test_visual_fallback_before_the_first_echo_and_after_timeout(model_set):
    pipe = _pipe(model_set)
    visual = _pipe(model_set, 'v', 'masked')
    eng = DepthEngine(pipe, _pipe(model_set, 'v', None), echo_timeout=0.5)
    rgb = half_dark_frame(3)
    out = eng.on_frame(rgb, 1.0)
    assert out.source == SOURCE_VISUAL and eng.echo_stale(1.0)
    ref = visual.infer(rgb)  # the paper's V baseline: scale from the visual-only model
    _nan_equal(out.metric, ref.metric)
    assert out.scale == pytest.approx(ref.scale)
    eng.on_echo(rgb, make_echo(3), SR, 2.0)
    assert eng.on_frame(rgb, 2.4).source == SOURCE_FILTERED
    assert eng.on_frame(rgb, 2.6).source == SOURCE_VISUAL
    assert 'fallback' in eng.status(2.6) and eng.status(2.6)['echo_age_s'] == '0.600'


def test_last_scale_and_none_fallbacks(model_set):
    pipe = _pipe(model_set)
    eng = DepthEngine(pipe, fallback='last_scale', echo_timeout=0.5)
    rgb = half_dark_frame(4)
    assert eng.on_frame(rgb, 0.0).metric is None  # no scale ever seen
    s = eng.on_echo(rgb, make_echo(4), SR, 1.0).scale
    late = eng.on_frame(rgb, 9.0)
    assert late.source == SOURCE_LAST_SCALE and late.scale == pytest.approx(s)
    none = DepthEngine(pipe, fallback='none', echo_timeout=0.5)
    assert none.on_frame(rgb, 0.0).metric is None
    none.on_echo(rgb, make_echo(4), SR, 1.0)
    assert none.on_frame(rgb, 1.2).metric is not None
    assert none.on_frame(rgb, 1.6).metric is None


def test_without_relative_model_metric_is_pseudo_dense_on_echo_frames_only(model_set):
    pipe = _pipe(model_set, relative=None)
    eng = DepthEngine(pipe, _pipe(model_set, 'v', None))
    rgb = make_frame(5)
    out = eng.on_echo(rgb, make_echo(5), SR, 1.0)
    np.testing.assert_array_equal(out.metric, pipe.pseudo_dense(rgb, make_echo(5), SR))
    assert eng.on_frame(rgb, 1.1).metric is None  # nothing to scale between echoes
    stale = eng.on_frame(rgb, 5.0)
    assert stale.source == SOURCE_VISUAL
    np.testing.assert_array_equal(stale.metric, _pipe(model_set, 'v', None).pseudo_dense(rgb))


def test_visual_only_main_model_ignores_echoes(model_set):
    eng = DepthEngine(_pipe(model_set, 'v'), fallback='none')
    out = eng.on_frame(half_dark_frame(6), 0.0)
    assert not eng.uses_echo and out.source == SOURCE_VISUAL_ONLY and out.metric is not None


def test_bad_inputs_and_configurations_are_named(model_set):
    pipe = _pipe(model_set)
    eng = DepthEngine(pipe, _pipe(model_set, 'v', None))
    bad = make_echo(7)
    bad[1, 10] = np.nan
    with pytest.raises(AvsInputError, match='NaN'):
        eng.on_echo(make_frame(7), bad, SR, 1.0)
    assert eng.echo_stale(1.0)  # a rejected echo does not count
    with pytest.raises(AvsInputError, match='sample rate is 22050 Hz'):
        eng.on_echo(make_frame(7), make_echo(7), 22050, 1.0)
    with pytest.raises(AvsInputError, match='needs a visual-only AVS-Net'):
        DepthEngine(pipe, None, 'visual_model')
    with pytest.raises(AvsInputError, match='must be a visual-only'):
        DepthEngine(pipe, _pipe(model_set, 'av', None))
    with pytest.raises(AvsInputError, match="'last_scale' needs a relative"):
        DepthEngine(_pipe(model_set, relative=None), fallback='last_scale')
    with pytest.raises(AvsInputError, match='fallback must be one of'):
        DepthEngine(pipe, fallback='guess')
