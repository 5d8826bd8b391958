"""INT8 quantization (training.quantize): calibrated on simulated frames, run by the runtime."""

import os

from avs_net_ros.core.contract import ECHO_INPUT, IMAGE_INPUT, read_onnx_contract
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets.generate import generate
from avs_net_ros.eval.sources import batvision_frames
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from avs_net_ros.tools.validate_model import main as validate
import numpy as np
import onnx
import pytest

from training.quantize import (calibration_feeds, HEAD_TAIL, main, nodes_to_quantize,
                               quantize_model, TAIL_LINEAR)


@pytest.fixture(scope='module')
def sim_root(tmp_path_factory):
    """Generate a tiny simulated BV2 root: 4 training frames to calibrate on, 2 to test."""
    root = str(tmp_path_factory.mktemp('sim') / 'SimBV2')
    generate(root, layout='bv2', counts={'train': 4, 'val': 0, 'test': 2}, seed=5,
             size=(64, 36), frames_per_location=4, progress=False)
    return root


def _op_types(path):
    return [n.op_type for n in onnx.load(path).graph.node]


def test_quantized_model_keeps_contract_and_runs_in_the_pipeline(model_set, sim_root, tmp_path,
                                                                 capsys):
    out = str(tmp_path / 'avs_av_int8.onnx')
    assert main(['--model', model_set['av'], '--calib-root', sim_root, '--out', out,
                 '--frames', '4']) == 0
    assert '4 calibration frames' in capsys.readouterr().out
    ops = _op_types(out)
    assert 'QuantizeLinear' in ops and 'DequantizeLinear' in ops
    weights = [t for t in onnx.load(out).graph.initializer
               if t.data_type == onnx.TensorProto.INT8]
    assert weights, 'no int8 weight was written'
    fp32, int8 = read_onnx_contract(model_set['av']), read_onnx_contract(out)
    assert int8.to_metadata() == fp32.to_metadata()
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert 'per-channel' in meta['avs_net.quantization']
    assert validate([out, '--run', '--providers', 'cpu']) == 0

    # The runtime pipeline on a simulated test frame: INT8 close to fp32.
    _, _, frames = batvision_frames(sim_root, 'bv2', 'test', max_depth=fp32.echo.echo_max_depth,
                                    lead_in=fp32.echo.lead_in_samples)
    frame = next(frames)
    sr = fp32.echo.features.sample_rate
    results = [MetricDepthPipeline(m, model_set['relative'], ['cpu']).infer(frame.rgb,
                                                                            frame.echo, sr)
               for m in (model_set['av'], out)]
    a, b = results[0].pseudo_dense, results[1].pseudo_dense
    assert a.shape == b.shape == frame.rgb.shape[:2]
    assert np.all(np.isfinite(b))
    assert float(np.max(np.abs(a - b) / a)) < 0.05
    assert not np.array_equal(a, b)  # the INT8 model really ran
    assert abs(results[1].scale / results[0].scale - 1) < 0.05


def test_calibration_feeds_are_the_runtime_inputs(model_set, sim_root):
    contract = read_onnx_contract(model_set['av'])
    feeds = calibration_feeds(sim_root, contract, 'bv2', 'train', limit=3)
    assert len(feeds) == 3
    f = contract.echo.features
    assert feeds[0][IMAGE_INPUT].shape == (1, 3) + contract.image_size
    assert feeds[0][ECHO_INPUT].shape == (1, f.channels) + f.spec_size
    assert 0 <= feeds[0][IMAGE_INPUT].min() and feeds[0][IMAGE_INPUT].max() <= 1


def test_bad_calibration_input_is_named(model_set, sim_root, tmp_path):
    contract = read_onnx_contract(model_set['av'])
    with pytest.raises(AvsInputError, match='no records'):
        calibration_feeds(sim_root, contract, 'bv2', 'val')
    with pytest.raises(AvsInputError, match='no calibration frames'):
        quantize_model(model_set['av'], str(tmp_path / 'x.onnx'), [])
    assert not os.path.exists(tmp_path / 'x.onnx')


def test_avs_net_head_tail_stays_float(tmp_path):
    # The real network: convolutions and the glue between them become INT8; of the head's
    # tail only the condition's convolution does: the attractor arithmetic, the per-pixel MLP
    # and the log-binomial stay float.
    import torch

    from test_model_avs import tiny_model_config
    from training.export import example_inputs, export_onnx, make_contract
    from training.models.avs_net import build_model

    torch.manual_seed(0)
    cfg = tiny_model_config('v')
    model = build_model(cfg).eval()
    contract = make_contract(cfg)
    fp32 = str(tmp_path / 'v.onnx')
    export_onnx(model, contract, fp32, verbose=False)
    feeds = [{k: v.numpy() for k, v in example_inputs(contract, seed=s).items()}
             for s in range(3)]
    out = str(tmp_path / 'v_int8.onnx')
    quantize_model(fp32, out, feeds)
    graph = onnx.load(out).graph
    producers = {o: n for n in graph.node for o in n.output}

    def dequantized(node):
        return any(i in producers and producers[i].op_type == 'DequantizeLinear'
                   for i in node.input)

    quantized = [n for n in graph.node if n.op_type == 'Conv' and dequantized(n)]
    assert len(quantized) > 10
    # Glue between convolutions: the encoders' residual sums are chosen, the head's sums (the
    # attractors' b + delta) are not, nor anything of the tail after its first layer.
    chosen = set(nodes_to_quantize(onnx.load(fp32).graph))
    adds = [n.name for n in onnx.load(fp32).graph.node if n.op_type == 'Add']
    assert any(n.startswith('/model/pretrained/') and n in chosen for n in adds)
    head_adds = [n for n in adds if n.startswith('/model/head/attractors')]
    assert head_adds and not chosen.intersection(head_adds)
    assert {n for n in chosen if n.startswith(HEAD_TAIL)} == set(TAIL_LINEAR)
    # The tail: only TAIL_LINEAR (the condition's 1x1 convolution) takes int8 weights.
    int8 = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}

    def int8_weight(node):
        return any(i in producers and producers[i].op_type == 'DequantizeLinear'
                   and producers[i].input[0] in int8 for i in node.input)

    tail = [n for n in graph.node if n.name.startswith(HEAD_TAIL)]
    assert sum(n.op_type in ('Conv', 'MatMul') for n in tail) >= 3
    assert sorted(n.name for n in tail if int8_weight(n)) == [HEAD_TAIL + '/Conv']
    assert not any(n.name.startswith(HEAD_TAIL + '/log_binomial_transform') and dequantized(n)
                   for n in graph.node)
    import onnxruntime as ort
    got = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(None, feeds[0])[0]
    assert np.all(np.isfinite(got))
    assert contract.min_depth - 1e-4 <= got.min() and got.max() <= contract.max_depth + 1e-4


def test_a_head_tail_without_its_embedding_convolution_is_named():
    # If the head's export renames the tail's 1x1 convolution, the rule must say so instead of
    # silently leaving it in float.
    from onnx import helper, TensorProto

    node = helper.make_node('Relu', ['x'], ['y'], name=HEAD_TAIL + '/Relu')
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ('x', 'y')]
    graph = helper.make_graph([node], 'g', io[:1], io[1:])
    with pytest.raises(AvsInputError, match='update TAIL_LINEAR'):
        nodes_to_quantize(graph)
    assert nodes_to_quantize(graph, tail_linear=()) == []  # and the tail's Relu stays float
