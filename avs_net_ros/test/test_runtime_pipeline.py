"""The ONNX Runtime pipeline, run on real sessions of small contract-following models."""

from avs_net_ros.core.errors import AvsInputError, ModelContractError
from avs_net_ros.core.resize import resize_bilinear
from avs_net_ros.core.spectrogram import echo_spectrogram
from avs_net_ros.runtime.pipeline import image_to_tensor, MetricDepthPipeline
from avs_net_ros.runtime.session import OnnxModel, select_providers
import numpy as np
import onnxruntime as ort
import pytest


@pytest.fixture(scope='module')
def frame():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    echo = (rng.standard_normal((2, 2000)) * 0.1).astype(np.float32)
    return rgb, echo


def test_provider_selection_keeps_order_and_reports_missing():
    usable, missing = select_providers(['tensorrt', 'cuda', 'cpu'])
    available = ort.get_available_providers()
    assert usable[-1] == 'CPUExecutionProvider'
    assert all(p in available for p in usable)
    assert set(missing) == {'TensorrtExecutionProvider', 'CUDAExecutionProvider'} - set(
        available)
    assert select_providers(['cuda'])[0][-1] == 'CPUExecutionProvider'


def test_pipeline_uses_only_model_metadata(model_set, frame):
    rgb, echo = frame
    pipe = MetricDepthPipeline(model_set['av'], model_set['relative'], providers=['cpu'])
    assert pipe.takes_echo and pipe.active_providers['avs'] == ['CPUExecutionProvider']
    res = pipe.infer(rgb, echo, sample_rate=44100)
    for m in (res.metric, res.pseudo_dense, res.relative):
        assert m.shape == (48, 64) and m.dtype == np.float32
    # recompute by hand from the contract: features, sessions, resize, median scale
    av = OnnxModel(model_set['av'], ['cpu'])
    spec = echo_spectrogram(echo, av.contract.echo.features, 44100)
    assert spec.shape == (2, 16, 16)
    m_p = av.run({'image': image_to_tensor(rgb, (32, 32)), 'echo_spectrogram': spec[None]})
    m_p = resize_bilinear(m_p[0, 0], (48, 64))
    np.testing.assert_allclose(res.pseudo_dense, m_p, rtol=1e-6)
    # the scale is fitted on the relative model's grid (24x40), M_p resampled to it
    rel_low = OnnxModel(model_set['relative'], ['cpu']).run(
        {'image': image_to_tensor(rgb, (24, 40))})[0, 0]
    m_p_low = av.run({'image': image_to_tensor(rgb, (32, 32)),
                      'echo_spectrogram': spec[None]})[0, 0]
    scale = np.median(resize_bilinear(m_p_low, (24, 40))) / np.median(rel_low)
    assert res.scale == pytest.approx(scale, rel=1e-6)
    np.testing.assert_allclose(res.metric, res.relative * scale, rtol=1e-5)
    # ... and agrees with the median ratio at camera resolution to well under a percent
    camera_scale = np.median(res.pseudo_dense) / np.median(res.relative)
    assert res.scale == pytest.approx(camera_scale, rel=1e-2)
    assert set(res.timings) == {'avs', 'relative', 'scale', 'upsample'}


def test_echo_changes_av_output_but_not_v(model_set, frame):
    rgb, echo = frame
    av = MetricDepthPipeline(model_set['av'], providers=['cpu'])
    v = MetricDepthPipeline(model_set['v'], providers=['cpu'])
    a1 = av.pseudo_dense(rgb, echo, 44100)
    a2 = av.pseudo_dense(rgb, echo * 3.0, 44100)
    assert not np.allclose(a1, a2)
    np.testing.assert_array_equal(v.pseudo_dense(rgb), v.pseudo_dense(rgb, echo * 3.0))
    res = v.infer(rgb)  # no relative model: metric is M_p itself
    assert res.scale == 1.0 and res.relative is None


def test_disparity_models_are_inverted(model_set, frame):
    rgb, echo = frame
    disp = MetricDepthPipeline(model_set['av'], model_set['relative_disparity'],
                               providers=['cpu'])
    depth = MetricDepthPipeline(model_set['av'], model_set['relative'], providers=['cpu'])
    np.testing.assert_allclose(disp.relative_depth(rgb), 1.0 / depth.relative_depth(rgb),
                               rtol=1e-5)
    override = MetricDepthPipeline(model_set['av'], model_set['relative'], providers=['cpu'],
                                   relative_output='disparity')
    np.testing.assert_allclose(override.relative_depth(rgb), disp.relative_depth(rgb),
                               rtol=1e-5)


@pytest.mark.parametrize('method', ['least_squares', 'scale_shift'])
def test_other_scale_methods(model_set, frame, method):
    rgb, echo = frame
    pipe = MetricDepthPipeline(model_set['av'], model_set['relative'], providers=['cpu'],
                               scale_method=method)
    res = pipe.infer(rgb, echo, 44100)
    assert res.fit.method == method and np.isfinite(res.metric).any()


def test_bad_inputs_get_clear_errors(model_set, frame):
    rgb, echo = frame
    pipe = MetricDepthPipeline(model_set['av'], model_set['relative'], providers=['cpu'])
    cases = [
        ((rgb, None, 44100), 'needs an echo'),
        ((rgb, echo, 48000), '48000 Hz'),
        ((rgb, np.zeros_like(echo), 44100), 'all-zero'),
        ((rgb, echo * np.nan, 44100), 'NaN'),
        ((rgb, echo[:1], 44100), '1 channels'),
        ((rgb, echo[:, :100], 44100), '100 samples'),
        ((rgb[..., 0], echo, 44100), 'RGB'),
        ((rgb.astype(np.int16), echo, 44100), 'dtype'),
        ((rgb / 255.0 * 2.0, echo, 44100), r'\[0, 1\]'),
    ]
    for args, message in cases:
        with pytest.raises(AvsInputError, match=message):
            pipe.infer(*args)
    assert np.isfinite(pipe.infer(rgb, echo, 44100).metric).any()  # still works afterwards


def test_bad_model_files(model_set, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        MetricDepthPipeline(str(tmp_path / 'missing.onnx'))
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(open(model_set['av'], 'rb').read()[:200])
    with pytest.raises(ModelContractError, match='corrupt.onnx'):
        MetricDepthPipeline(str(corrupt))
    with pytest.raises(ModelContractError, match="'relative' model"):
        MetricDepthPipeline(model_set['relative'])
    with pytest.raises(ModelContractError, match="'avs_av' model"):
        MetricDepthPipeline(model_set['v'], model_set['av'])
    with pytest.raises(AvsInputError, match='unknown scale method'):
        MetricDepthPipeline(model_set['v'], scale_method='mode')


def test_model_outputs_combine_to_infer_and_sessions_can_be_shared(model_set, frame):
    """run_avs/run_relative + combine is infer, also with camera maps given and shared models."""
    rgb, echo = frame
    pipe = MetricDepthPipeline(model_set['av'], model_set['relative_disparity'],
                               providers=['cpu'])
    ref = pipe.infer(rgb, echo, 44100)
    m_p, rel = pipe.run_avs(rgb, echo, 44100), pipe.run_relative(rgb)
    assert m_p.shape == (32, 32) and rel.shape == (24, 40)
    hw = rgb.shape[:2]
    for given in ({}, {'pseudo_dense': pipe.to_camera(m_p, hw),
                       'relative': pipe.relative_to_camera(rel, hw)}):
        out = pipe.combine(m_p, rel, hw, **given)
        for a, b in ((out.metric, ref.metric), (out.pseudo_dense, ref.pseudo_dense),
                     (out.relative, ref.relative)):
            np.testing.assert_array_equal(a, b)
        assert out.scale == ref.scale
    # a V pipeline on the same loaded relative session: no second load, same relative map
    v = MetricDepthPipeline(OnnxModel(model_set['v'], ['cpu']), pipe.relative)
    assert v.relative is pipe.relative and v.relative_output == 'disparity'
    np.testing.assert_array_equal(v.infer(rgb).relative, ref.relative)
    with pytest.raises(AvsInputError, match='relative model, expected one of'):
        MetricDepthPipeline(pipe.relative)


def test_io_binding_gives_the_same_output(model_set, frame):
    # The GPU path (I/O binding) is the default on CUDA/TensorRT; here it is forced on the CPU
    # provider, where ONNX Runtime supports it too, and must not change the result.
    rgb, echo = frame
    plain = OnnxModel(model_set['av'], ['cpu'])
    bound = OnnxModel(model_set['av'], ['cpu'], io_binding=True)
    assert not plain.io_binding and bound.io_binding
    spec = echo_spectrogram(echo, plain.contract.echo.features, 44100)
    feeds = {'image': image_to_tensor(rgb, (32, 32)), 'echo_spectrogram': spec[None]}
    np.testing.assert_array_equal(bound.run(feeds), plain.run(feeds))


def test_gpu_provider_options_are_checked_and_fall_back_to_cpu(model_set, frame, tmp_path):
    from avs_net_ros.runtime.session import gpu_provider_options

    opts = gpu_provider_options(trt_fp16=True, trt_engine_cache_dir=str(tmp_path / 'trt'))
    trt = opts['TensorrtExecutionProvider']
    assert trt['trt_fp16_enable'] == 'True' and trt['trt_engine_cache_enable'] == 'True'
    assert trt['trt_engine_cache_path'] == str(tmp_path / 'trt')
    assert int(trt['trt_max_workspace_size']) == 2 * 2 ** 30
    assert opts['CUDAExecutionProvider']['cudnn_conv_algo_search'] == 'EXHAUSTIVE'
    with pytest.raises(ValueError, match='cudnn_conv_algo_search'):
        gpu_provider_options(cudnn_conv_algo_search='fast')
    with pytest.raises(ValueError, match='device_id'):
        gpu_provider_options(device_id=-1)
    rgb, echo = frame
    pipe = MetricDepthPipeline(model_set['av'], model_set['relative'],
                               ['tensorrt', 'cuda', 'cpu'], provider_options=opts)
    cpu = MetricDepthPipeline(model_set['av'], model_set['relative'], ['cpu'])
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        assert pipe.active_providers['avs'] == ['CPUExecutionProvider']
    np.testing.assert_allclose(pipe.infer(rgb, echo, 44100).metric,
                               cpu.infer(rgb, echo, 44100).metric, rtol=1e-3)
