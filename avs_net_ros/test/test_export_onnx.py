"""ONNX export of AV, V and relative models: contract metadata, parity, and the runtime."""

from avs_net_ros.core.contract import (EchoContract, KIND_AV, KIND_RELATIVE, KIND_V,
                                       read_onnx_contract)
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.spectrogram import EchoFeatureConfig, StftConfig
import numpy as np
import onnx
import pytest
from test_model_avs import tiny_model_config
import torch
from torch import nn
from training.export import export_onnx, ExportError, make_contract, parity
from training.models.avs_net import build_model

SR = 16000
# A short echo window (12 m at 340 m/s = 1129 samples at 16 kHz) keeps the test fast.
ECHO = EchoContract(EchoFeatureConfig(sample_rate=SR, window_samples=1129,
                                      stft=StftConfig(n_fft=128, win_length=32, hop_length=8),
                                      spec_size=(64, 64)),
                    echo_max_depth=12.0, speed_of_sound=340.0, lead_in_samples=10)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp('export')
    out = {}
    for variant in ('av', 'v', 'relative'):
        torch.manual_seed(0)
        model = build_model(tiny_model_config(variant)).eval()
        path = str(d / f'{variant}.onnx')
        contract = make_contract(model.config, ECHO if variant == 'av' else None)
        diff = export_onnx(model, contract, path, verbose=False)
        out[variant] = (path, model, contract, diff)
    return out


@pytest.mark.parametrize('variant,kind', [('av', KIND_AV), ('v', KIND_V),
                                          ('relative', KIND_RELATIVE)])
def test_export_follows_contract_and_matches_torch(exported, variant, kind):
    path, model, contract, diff = exported[variant]
    read = read_onnx_contract(path)
    assert read.kind == kind and read.image_size == (64, 64)
    assert read == contract
    if kind == KIND_AV:
        assert read.echo.features == ECHO.features and read.echo.lead_in_samples == 10
    abs_diff, rel_diff = parity(path, model, contract, seeds=(5, 6, 7))
    assert rel_diff <= 1e-3 and diff <= 1e-3 * 20
    proto = onnx.load(path)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)


def test_batch_axis_is_dynamic(exported):
    import onnxruntime as ort
    path, model, contract, _ = exported['av']
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    x = np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32)
    s = np.random.default_rng(1).random((3, 2, 64, 64), dtype=np.float32)
    got = sess.run(None, {'image': x, 'echo_spectrogram': s})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(s))['depth'].numpy()
    assert got.shape == (3, 1, 64, 64)
    assert np.max(np.abs(got - ref)) <= 1e-3 * np.max(np.abs(ref))


def test_runtime_pipeline_runs_exported_files_from_metadata(exported):
    from avs_net_ros.runtime.pipeline import MetricDepthPipeline
    av_path, av_model, _, _ = exported['av']
    rel_path, rel_model, _, _ = exported['relative']
    pipe = MetricDepthPipeline(av_path, rel_path, intra_op_threads=2)
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    echo = rng.standard_normal((2, 2000)).astype(np.float32) * 0.1
    res = pipe.infer(rgb, echo, SR)
    assert res.metric.shape == res.pseudo_dense.shape == res.relative.shape == (48, 80)
    assert np.all(np.isfinite(res.pseudo_dense))
    assert 0.1 - 1e-4 <= np.nanmin(res.pseudo_dense) and np.nanmax(res.pseudo_dense) <= 12.0
    assert np.isclose(np.nanmedian(res.metric), np.nanmedian(res.pseudo_dense), rtol=0.05)
    # The runtime fed the model what the metadata says: an echo at another rate is refused.
    with pytest.raises(AvsInputError, match='sample rate'):
        pipe.infer(rgb, echo, 44100)


def test_parity_failure_fails_the_export(tmp_path):
    class Drifting(nn.Module):
        """Scales its output by a fresh Python float per call: tracing freezes one value."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = build_model(tiny_model_config('relative'))

        def forward(self, image):
            return {'relative': self.inner(image)['relative'] * (2.0 + float(torch.rand(())))}

    contract = make_contract(tiny_model_config('relative'))
    with pytest.raises(ExportError, match='differs from PyTorch'):
        export_onnx(Drifting(), contract, str(tmp_path / 'bad.onnx'), verbose=False)


def test_av_contract_needs_echo_settings():
    with pytest.raises(ValueError, match='EchoContract'):
        make_contract(tiny_model_config('av'))


@pytest.mark.slow
def test_dynamo_exporter_parity(tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_model_config('av')).eval()
    contract = make_contract(model.config, ECHO)
    path = str(tmp_path / 'av_dynamo.onnx')
    diff = export_onnx(model, contract, path, opset=18, dynamo=True, verbose=False)
    assert read_onnx_contract(path).kind == KIND_AV
    assert parity(path, model, contract)[1] <= 1e-3 and diff < 1e-2


def test_fp16_export_keeps_contract_io_and_head_tail(exported, tmp_path):
    # Half precision for GPUs: fp16 weights, float32 inputs/output (the contract's), the
    # log-binomial tail in float32; ONNX Runtime runs it on CPU too, close to PyTorch.
    from avs_net_ros.runtime.pipeline import MetricDepthPipeline
    from training.export import convert_fp16, HEAD_TAIL, PRECISION_KEY

    path, model, contract, _ = exported['av']
    out = str(tmp_path / 'av_fp16.onnx')
    convert_fp16(path, out)
    proto = onnx.load(out)
    assert read_onnx_contract(out).to_metadata() == contract.to_metadata()
    assert 'fp16' in {p.key: p.value for p in proto.metadata_props}[PRECISION_KEY]
    halves = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) > 20
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
               for v in list(proto.graph.input) + list(proto.graph.output))
    # The tail's weights are float32 constants or computed inside the (float32) tail.
    floats = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    producers = {o: n for n in proto.graph.node for o in n.output}
    tail = [n for n in proto.graph.node if n.name.startswith(HEAD_TAIL)
            and n.op_type in ('Conv', 'MatMul')]
    assert len(tail) >= 3 and all(
        n.input[1] in floats or producers[n.input[1]].name.startswith(HEAD_TAIL) for n in tail)
    _, rel = parity(out, model, contract)
    assert rel < 2e-2
    pipe = MetricDepthPipeline(out, providers=['cpu'])
    rng = np.random.default_rng(0)
    echo = rng.standard_normal((2, contract.echo.features.window_samples)).astype(np.float32)
    depth = pipe.infer(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), echo, SR).metric
    assert depth.shape == (48, 80) and np.all(np.isfinite(depth))


def test_foreign_export_has_no_metadata_and_fits_only_its_description(tmp_path):
    """--foreign: MiDaS's conventions (normalise outside the graph), checked both ways."""
    import onnxruntime as ort
    from avs_net_ros.core.foreign import ForeignModelSpec
    from training.export import export_foreign

    torch.manual_seed(0)
    model = build_model(tiny_model_config('relative', relative_output='affine_disparity',
                                          mean=(0.485, 0.456, 0.406),
                                          std=(0.229, 0.224, 0.225))).eval()
    spec = ForeignModelSpec('affine_disparity', input_size=(64, 64))
    path = str(tmp_path / 'foreign.onnx')
    assert export_foreign(model, spec, path, verbose=False) < 1e-3
    assert not onnx.load(path).metadata_props
    with pytest.raises(Exception, match='no avs_net_ros metadata|metadata'):
        read_onnx_contract(path)
    image = torch.rand(1, 3, 64, 64)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    got = ort.InferenceSession(path, providers=['CPUExecutionProvider']).run(
        None, {'input': ((image - mean) / std).numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(image)['relative'].numpy(), rtol=1e-4, atol=1e-5)
    for wrong, field in ((ForeignModelSpec('depth', input_size=(64, 64)), 'output'),
                         (ForeignModelSpec('affine_disparity', input_size=(32, 32)),
                          'input_size'),
                         (ForeignModelSpec('affine_disparity', input_size=(64, 64),
                                           mean=(0.5,) * 3), 'mean/std')):
        with pytest.raises(ExportError, match=field):
            export_foreign(model, wrong, str(tmp_path / 'x.onnx'), verbose=False)


def test_affine_disparity_model_declares_it_and_is_evaluated_by_scale_and_shift():
    from training.evaluation import scale_relative

    config = tiny_model_config('relative', relative_output='affine_disparity')
    assert make_contract(config).relative_output == 'affine_disparity'
    depth = np.linspace(0.5, 9.0, 48).reshape(6, 8)
    disparity = 3.0 / depth + 0.4
    np.testing.assert_allclose(scale_relative(disparity, depth, 'affine_disparity'), depth,
                               rtol=1e-5)
    # the depth models' median ratio cannot undo the shift
    assert np.max(np.abs(scale_relative(1 / disparity, depth, 'depth') / depth - 1)) > 0.1


def test_same_padding_is_exported_as_constants_and_restored(exported, tmp_path):
    # tf_efficientnet pads 'same' by the input size; the export fixes it to the contract's.
    from timm.layers.conv2d_same import Conv2dSame

    from training.static_padding import static_same_padding

    graph = onnx.load(exported['av'][0]).graph
    ops = [n.op_type for n in graph.node if n.name.startswith('/model/pretrained/')]
    assert 'Pad' not in ops and 'Ceil' not in ops and 'Shape' not in ops
    model = exported['av'][1]
    convs = [m for m in model.modules() if isinstance(m, Conv2dSame)]
    assert convs and not any('forward' in vars(m) for m in convs)
    # Inside the context the outputs are those of the dynamic padding, bit for bit; after it
    # the model pads dynamically again (another input size works).
    torch.manual_seed(3)
    image, echo = torch.rand(1, 3, 64, 64), torch.rand(1, 2, 64, 64)
    with torch.no_grad():
        ref = model(image, echo)['depth']
        with static_same_padding(model, image, echo) as n:
            got = model(image, echo)['depth']
        assert n == len(convs)
        assert torch.equal(ref, got)
        assert model(torch.rand(1, 3, 96, 128), echo)['depth'].shape[-2:] == (96, 128)
