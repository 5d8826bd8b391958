"""INT8 static quantization of a contract model with ONNX Runtime, calibrated on dataset frames.

    python -m training.quantize --model avs_av.onnx --calib-root /tmp/SimBV2 \
        --out avs_av_int8.onnx [--layout bv2] [--split train] [--frames 16]

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantized operator, which ONNX
Runtime fuses into integer kernels on CPU and TensorRT reads as explicit INT8), weights int8
per output channel, activations uint8 per tensor with ranges from a min/max calibration.
The calibration frames come from a BatVision-layout root (real or simulated,
``avs_generate_dataset``) and are turned into model inputs exactly as the robot does it
(``runtime.pipeline.image_to_tensor``, the core's ``echo_spectrogram``, with the echo window
the model's contract states), so the ranges are those the deployed model will see.

What is quantized: the convolutions and matrix products, where the arithmetic is; the
activations (ReLU), everywhere, as a clamp ONNX Runtime folds into the convolution before
them; and, outside the metric-bins head and the cross-modal attention, the operators between
convolutions (additions, concatenations, resizes, pooling), so that activations stay 8-bit
from one convolution to the next. Left in float, each of those costs a dequantize and a
quantize (measured with ``benchmarks.bench_model_latency``'s operator profile). The head's
other glue stays float: its attractors move bin centres by small differences
(dx / (1 + alpha dx^2)). Its conditional log-binomial stays float except the 1x1 convolution
of the bin embedding at the embedding's resolution (measured: the per-pixel matrix product at
full resolution is as fast in float as quantized plus its dequantization, and a quantized sum
before the GELU stops ONNX Runtime from fusing it). After that first layer the logits are
divided by temperatures down to 0.02 and exponentiated, so an 8-bit step there moves the depth
by whole bins. ``--keep-float`` chooses what stays in float, to measure that;
``--float-tail-linear`` keeps the embedding's convolution in float too, ``--float-glue`` all
operators between convolutions. The contract metadata is copied, an ``avs_net.quantization``
entry records what was done, and the result is checked with ``read_onnx_contract``, so
``avs_validate_model`` and the runtime accept it as they accept the float model.
"""

import argparse
import os
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from avs_net_ros.core.contract import (ECHO_INPUT, IMAGE_INPUT, ModelContract, PREFIX,
                                       read_onnx_contract)
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.spectrogram import echo_spectrogram
from avs_net_ros.runtime.pipeline import image_to_tensor

import numpy as np
import onnx

from training.export import HEAD_TAIL

#: Operator types quantized by default (where the network's arithmetic is).
QUANTIZED_OPS = ('Conv', 'MatMul', 'Gemm')
#: Operators between quantized ones, quantized too outside ``FLOAT_GLUE``.
GLUE_OPS = ('Add', 'Concat', 'Resize', 'MaxPool', 'AveragePool', 'GlobalAveragePool')
#: Activations, quantized wherever their input is (8-bit ReLU is a clamp ONNX Runtime folds
#: into the convolution before it; left in float, each costs a dequantize and a quantize).
ACTIVATIONS = ('Relu', 'Clip')
#: Node-name prefixes whose glue operators stay in float (the head's attractor arithmetic; the
#: attention's residual sums with the positional encoding).
FLOAT_GLUE = ('/model/head/', '/model/fusion/')
#: Node-name prefixes kept in float by default.
KEEP_FLOAT = (HEAD_TAIL,)
#: The bin embedding's 1x1 convolution in the head's conditional log-binomial: quantized
#: although it lies under ``HEAD_TAIL`` (the name ``ConditionalLogBinomial._expected_value``
#: exports it with).
TAIL_LINEAR = (HEAD_TAIL + '/Conv',)


def nodes_to_quantize(graph: onnx.GraphProto, keep_float: Sequence[str] = KEEP_FLOAT,
                      op_types: Sequence[str] = QUANTIZED_OPS,
                      glue_ops: Sequence[str] = GLUE_OPS,
                      float_glue: Sequence[str] = FLOAT_GLUE,
                      tail_linear: Sequence[str] = TAIL_LINEAR) -> List[str]:
    """Return the names of the nodes of ``graph`` to quantize (see the module docstring).

    Raises:
        AvsInputError: a ``tail_linear`` name is not in the graph (the head's export changed).

    """
    names = {n.name for n in graph.node}
    missing = [n for n in tail_linear if n not in names]
    if missing and any(n.name.startswith(HEAD_TAIL) for n in graph.node):
        raise AvsInputError(f'the head tail has no nodes {missing}: update TAIL_LINEAR to the '
                            f'names ConditionalLogBinomial now exports')
    chosen = []
    for n in graph.node:
        if n.name in tail_linear:
            chosen.append(n.name)
        elif any(n.name.startswith(k) for k in keep_float):
            continue
        elif n.op_type in op_types or (n.op_type in ACTIVATIONS and glue_ops) or (
                n.op_type in glue_ops and not any(n.name.startswith(p) for p in float_glue)):
            chosen.append(n.name)
    return chosen


def contract_feeds(contract: ModelContract, rgb: np.ndarray, echo: Optional[np.ndarray],
                   sample_rate: Optional[int]) -> Dict[str, np.ndarray]:
    """Return one frame's model inputs, computed as ``MetricDepthPipeline`` computes them."""
    feeds = {IMAGE_INPUT: image_to_tensor(rgb, contract.image_size)}
    if contract.takes_echo:
        if echo is None:
            raise AvsInputError('an audio-visual model needs echoes to calibrate on')
        spec = echo_spectrogram(echo, contract.echo.features, sample_rate)
        feeds[ECHO_INPUT] = spec[None] if spec.ndim == 3 else spec
    return feeds


def dataset_frames(root: str, contract: ModelContract, layout: str = 'bv2',
                   split: str = 'train') -> Tuple[int, Iterator]:
    """Return (count, frames) of a BatVision-layout split, echoes cut by the contract's window.

    Frames are ``eval.sources.SourceFrame`` (rgb, cut echo, ground truth in m, NaN invalid).

    Raises:
        AvsInputError: the layout's sample rate differs from the contract's.
        DatasetFormatError: the root does not follow the layout.

    """
    from avs_net_ros.eval.sources import batvision_frames

    echo = contract.echo
    info, count, frames = batvision_frames(
        root, layout, split, max_depth=echo.echo_max_depth if echo else None,
        lead_in=echo.lead_in_samples if echo else None)
    if echo is not None:
        if int(info['sample_rate']) != echo.features.sample_rate:
            raise AvsInputError(f'{root}: {info["sample_rate"]} Hz recordings, the model '
                                f'takes {echo.features.sample_rate} Hz')
        if int(info['window_samples']) != echo.features.window_samples:
            raise AvsInputError(f'{root}: {layout} cuts {info["window_samples"]}-sample echo '
                                f'windows, the model takes {echo.features.window_samples}')
    return count, frames


def calibration_feeds(root: str, contract: ModelContract, layout: str = 'bv2',
                      split: str = 'train', limit: int = 16) -> List[Dict[str, np.ndarray]]:
    """Return up to ``limit`` frames of a split as model inputs (see ``dataset_frames``)."""
    count, frames = dataset_frames(root, contract, layout, split)
    sr = contract.echo.features.sample_rate if contract.takes_echo else None
    feeds = []
    for frame in frames:
        if len(feeds) >= limit:
            break
        feeds.append(contract_feeds(contract, frame.rgb, frame.echo, sr))
    if not feeds:
        raise AvsInputError(f'{root}: split {split!r} has no frames to calibrate on')
    return feeds


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over prepared feeds."""

    def __init__(self, feeds: Sequence[Dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._it, None)


def quantize_model(model: str, out: str, feeds: Iterable[Dict[str, np.ndarray]], *,
                   keep_float: Sequence[str] = KEEP_FLOAT,
                   op_types: Sequence[str] = QUANTIZED_OPS,
                   glue_ops: Sequence[str] = GLUE_OPS,
                   tail_linear: Sequence[str] = TAIL_LINEAR) -> ModelContract:
    """Write the INT8 (QDQ, per-channel weights) version of ``model`` to ``out``.

    ``feeds`` are calibration inputs (``calibration_feeds``); which nodes are quantized is
    ``nodes_to_quantize``'s rule (nodes whose names start with one of ``keep_float`` stay in
    float, except ``tail_linear``). Returns the contract read back from ``out``.

    Raises:
        ModelContractError: ``model`` does not follow the contract (checked first).

    """
    from onnxruntime.quantization import (CalibrationMethod, quant_pre_process, QuantFormat,
                                          quantize_static, QuantType)

    contract = read_onnx_contract(model)
    feeds = list(feeds)
    if not feeds:
        raise AvsInputError('no calibration frames given')
    source = onnx.load(model)
    meta = {p.key: p.value for p in source.metadata_props}
    chosen = nodes_to_quantize(source.graph, keep_float, op_types, glue_ops, FLOAT_GLUE,
                               tail_linear)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, 'prepared.onnx')
        # Shape inference and graph optimisation first, as ONNX Runtime recommends, so the
        # quantizer sees Conv + BatchNorm etc. already folded.
        quant_pre_process(model, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, out, _Reader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        op_types_to_quantize=sorted(set(op_types) | set(glue_ops)
                                                    | set(ACTIVATIONS)),
                        nodes_to_quantize=chosen, calibrate_method=CalibrationMethod.MinMax)
    q = onnx.load(out)
    del q.metadata_props[:]
    meta[PREFIX + 'quantization'] = (
        f'int8 static QDQ, per-channel int8 weights, uint8 activations, min/max over '
        f'{len(feeds)} calibration frames; ops {"/".join(op_types)}'
        + (f', {"/".join(ACTIVATIONS)}, and {"/".join(glue_ops)} outside '
           f'{", ".join(FLOAT_GLUE)}' if glue_ops else '')
        + f'; in float: {", ".join(keep_float) or "nothing"}'
        + (f' except {", ".join(n[len(HEAD_TAIL):] for n in tail_linear)}' if tail_linear
           else ''))
    for k, v in meta.items():
        q.metadata_props.add(key=k, value=v)
    onnx.save_model(q, out, save_as_external_data=False)
    read_back = read_onnx_contract(out)
    if read_back.to_metadata() != contract.to_metadata():
        raise AvsInputError(f'{out}: the contract changed during quantization')
    return read_back


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description='INT8 static quantization (QDQ, per-channel '
                                            'weights) of a contract ONNX model.')
    p.add_argument('--model', required=True, help='float ONNX model (training.export)')
    p.add_argument('--calib-root', required=True, help='BatVision-layout root (real or sim)')
    p.add_argument('--out', required=True, help='INT8 ONNX file to write')
    p.add_argument('--layout', default='bv2', choices=('bv2', 'bv1'))
    p.add_argument('--split', default='train', help='split to calibrate on')
    p.add_argument('--frames', type=int, default=16, help='calibration frames')
    p.add_argument('--keep-float', nargs='*', default=list(KEEP_FLOAT), metavar='PREFIX',
                   help='node-name prefixes to keep in float (default: the log-binomial head '
                        "tail, but the bin embedding's convolution); give none to quantize the "
                        "tail's convolutions and matrix products too")
    p.add_argument('--float-tail-linear', action='store_true',
                   help="keep the bin embedding's convolution in the head tail in float too")
    p.add_argument('--float-glue', action='store_true',
                   help='quantize only convolutions and matrix products (the operators '
                        'between them stay in float)')
    args = p.parse_args(argv)
    contract = read_onnx_contract(args.model)
    feeds = calibration_feeds(args.calib_root, contract, args.layout, args.split, args.frames)
    quantize_model(args.model, args.out, feeds, keep_float=args.keep_float,
                   glue_ops=() if args.float_glue else GLUE_OPS,
                   tail_linear=() if args.float_tail_linear else TAIL_LINEAR)
    mib = os.path.getsize(args.out) / 2 ** 20
    print(f'{args.out}: {contract.kind} INT8 (QDQ), {len(feeds)} calibration frames from '
          f'{args.calib_root} ({args.split}), {mib:.1f} MiB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
