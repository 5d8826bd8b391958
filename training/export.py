"""Export AV, V and relative models to ONNX following ``avs_net_ros.core.contract``.

    python -m training.export --checkpoint artifacts/x/best.pt --out models/avs_av.onnx

The graph takes RGB in [0, 1] (normalisation is inside), the AV graph also the echo
spectrogram; the contract metadata is embedded and read back with ``read_onnx_contract``; the
ONNX Runtime output is compared with PyTorch on random inputs and the export fails when the
largest difference exceeds ``tolerance`` relative to the output's magnitude. One file
(no external data). The TorchScript exporter is the default (opset 17, about 7x faster to
export than ``--dynamo``, the torch.export-based exporter, which gives the same parity).

``--fp16`` writes the graph in half precision for GPUs (CUDA, TensorRT): weights and
activations fp16, inputs and output still float32 (the contract's types), and the metric-bins
head's log-binomial tail kept in float32, since its logits are divided by temperatures down to
0.02 and exponentiated (as the PyTorch model keeps the head out of autocast). The fp16 graph
is checked against PyTorch with ``--fp16-tolerance``.

``--foreign DESCRIPTION.yaml`` (relative models) writes a file the way third-party projects
ship theirs, MiDaS's conventions: no avs_net_ros metadata, the normalisation left to the
caller (the graph takes the normalised image), input ``input`` of a fixed size and output
``output``. The description (``config/foreign/*.yaml``, read by ``ForeignModelSpec``) must
state the model's output kind, input size and mean/std, or the export fails naming the
field; the runtime can then use the file only through that description. Parity is checked
on images normalised as the description says.
"""

import argparse
import io
import os
from typing import Dict, Optional, Tuple, TYPE_CHECKING

from avs_net_ros.core.contract import (DEPTH_OUTPUT, ECHO_INPUT, EchoContract, IMAGE_INPUT,
                                       KIND_AV, KIND_RELATIVE, KIND_V, ModelContract,
                                       read_onnx_contract, RELATIVE_OUTPUT)

import numpy as np
import onnx
import torch
from torch import nn

from training.config import config_from_dict, ModelConfig
from training.models.avs_net import build_model
from training.static_padding import static_same_padding

if TYPE_CHECKING:
    from avs_net_ros.core.foreign import ForeignModelSpec


#: Metadata entry that records a precision other than float32 (not part of the contract).
PRECISION_KEY = 'avs_net.precision'
#: Node-name prefix of the head's conditional log-binomial in exported graphs (kept in float32
#: by ``--fp16`` and ``training.quantize``).
HEAD_TAIL = '/model/head/conditional_log_binomial'


class ExportError(RuntimeError):
    """The exported graph disagrees with PyTorch or breaks the contract."""


class _Graph(nn.Module):
    """The exported function: the model's single output tensor."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, image: torch.Tensor,
                echo_spectrogram: Optional[torch.Tensor] = None) -> torch.Tensor:
        if echo_spectrogram is None:
            return self.model(image)[self.key]
        return self.model(image, echo_spectrogram)[self.key]


def make_contract(config: ModelConfig, echo: Optional[EchoContract] = None) -> ModelContract:
    """Return the contract of a model built from ``config`` (``echo`` needed for AV).

    Raises:
        ValueError: an AV model without echo settings, or echo settings whose channels do
            not match the model.

    """
    size = tuple(config.image_size)
    if config.variant == 'relative':
        return ModelContract(kind=KIND_RELATIVE, image_size=size,
                             relative_output=config.relative_output)
    if config.variant == 'v':
        return ModelContract(kind=KIND_V, image_size=size, min_depth=config.min_depth,
                             max_depth=config.max_depth)
    if echo is None:
        raise ValueError('an AV model contract needs the echo settings (EchoContract)')
    if echo.features.channels != config.echo_channels:
        raise ValueError(f'echo has {echo.features.channels} channels, the model takes '
                         f'{config.echo_channels}')
    return ModelContract(kind=KIND_AV, image_size=size, min_depth=config.min_depth,
                         max_depth=config.max_depth, echo=echo)


def example_inputs(contract: ModelContract, batch: int = 1,
                   seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random inputs of the contract's shapes (image in [0, 1], spectrogram magnitudes >= 0)."""
    g = torch.Generator().manual_seed(seed)
    inputs = {IMAGE_INPUT: torch.rand(batch, 3, *contract.image_size, generator=g)}
    if contract.takes_echo:
        f = contract.echo.features
        inputs[ECHO_INPUT] = torch.rand(batch, f.channels, *f.spec_size, generator=g) * 2.0
    return inputs


def parity(path: str, model: nn.Module, contract: ModelContract, seeds=(1, 2),
           threads: int = 2) -> Tuple[float, float]:
    """Return (max abs diff, max abs diff / max |torch output|) over random inputs."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    graph = _Graph(model, _output_key(contract)).eval()
    worst_abs, worst_rel = 0.0, 0.0
    for seed in seeds:
        inputs = example_inputs(contract, seed=seed)
        with torch.no_grad():
            ref = graph(*inputs.values()).numpy()
        got = sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        if got.shape != ref.shape:
            raise ExportError(f'ONNX output shape {got.shape} != PyTorch {ref.shape}')
        diff = float(np.max(np.abs(got - ref)))
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / max(float(np.max(np.abs(ref))), 1e-12))
    return worst_abs, worst_rel


def _output_key(contract: ModelContract) -> str:
    return 'relative' if contract.kind == KIND_RELATIVE else 'depth'


def export_onnx(model: nn.Module, contract: ModelContract, path: str, *,
                tolerance: float = 1e-3, opset: int = 17, dynamo: bool = False,
                verbose: bool = True) -> float:
    """Export ``model`` to ``path`` with the contract's metadata; return the max abs diff.

    Raises:
        ExportError: the ONNX output differs from PyTorch by more than ``tolerance`` (relative
            to the output magnitude), or the written file fails ``read_onnx_contract``.

    """
    model = model.eval().cpu()
    out_name = RELATIVE_OUTPUT if contract.kind == KIND_RELATIVE else DEPTH_OUTPUT
    inputs = example_inputs(contract)
    names = list(inputs)
    graph = _Graph(model, _output_key(contract)).eval()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Constant 'same' padding at the contract's size (training/static_padding.py).
    with torch.no_grad(), static_same_padding(graph, *inputs.values()):
        if dynamo:
            batch = torch.export.Dim('batch', min=1, max=64)
            program = torch.onnx.export(
                graph, tuple(inputs.values()), None, input_names=names,
                output_names=[out_name], dynamo=True, opset_version=opset, optimize=True,
                verbose=False, dynamic_shapes={n: {0: batch} for n in names})
            proto = program.model_proto
        else:
            buf = io.BytesIO()
            torch.onnx.export(graph, tuple(inputs.values()), buf, input_names=names,
                              output_names=[out_name], dynamo=False, opset_version=opset,
                              dynamic_axes={n: {0: 'batch'} for n in names + [out_name]})
            proto = onnx.load_from_string(buf.getvalue())
    del proto.metadata_props[:]
    for k, v in contract.to_metadata().items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save_model(proto, path, save_as_external_data=False)
    read_onnx_contract(path)
    abs_diff, rel_diff = parity(path, model, contract)
    if verbose:
        print(f'{path}: {contract.kind}, max abs diff vs PyTorch {abs_diff:.3g} '
              f'(relative {rel_diff:.3g}, tolerance {tolerance:g})')
    if not rel_diff <= tolerance:
        raise ExportError(f'{path}: ONNX Runtime differs from PyTorch by {abs_diff:.3g} '
                          f'(relative {rel_diff:.3g} > {tolerance:g})')
    return abs_diff


def convert_fp16(fp32_path: str, out: str,
                 keep_float: Tuple[str, ...] = (HEAD_TAIL,)) -> None:
    """Write ``fp32_path`` in half precision to ``out`` (float32 I/O, contract kept).

    Nodes whose names start with one of ``keep_float`` stay in float32.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load(fp32_path)
    meta = {p.key: p.value for p in proto.metadata_props}
    block = [n.name for n in proto.graph.node if any(n.name.startswith(k) for k in keep_float)]
    half = convert_float_to_float16(proto, keep_io_types=True, node_block_list=block)
    del half.metadata_props[:]
    meta[PRECISION_KEY] = 'fp16 (float32 inputs/outputs; in float32: ' + \
        (', '.join(keep_float) or 'nothing') + ')'
    for k, v in meta.items():
        half.metadata_props.add(key=k, value=v)
    onnx.save_model(half, out, save_as_external_data=False)
    read_onnx_contract(out)


class _ForeignGraph(nn.Module):
    """A relative model without its normalisation: the caller feeds the normalised image."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.forward_normalized(image)


def check_description(model: nn.Module, spec: 'ForeignModelSpec') -> None:
    """Check that a third-party description says how ``model`` (a relative model) is fed.

    Raises:
        ExportError: every field that disagrees with the model, named.

    """
    c = model.config
    mean = model.normalize.mean.flatten().tolist()
    std = model.normalize.std.flatten().tolist()
    problems = []
    if spec.output != c.relative_output:
        problems.append(f'output {spec.output!r} != the model: {c.relative_output!r}')
    if tuple(spec.input_size) != tuple(c.image_size):
        problems.append(f'input_size {list(spec.input_size)} != the model: '
                        f'{list(c.image_size)}')
    if not np.allclose(spec.mean, mean, atol=1e-6) or not np.allclose(spec.std, std, atol=1e-6):
        problems.append(f'mean/std {list(spec.mean)}/{list(spec.std)} != the model: '
                        f'{mean}/{std}')
    if spec.channel_order != 'RGB' or spec.pixel_range != 1.0:
        problems.append('channel_order must be RGB and pixel_range 1.0 (what it was trained on)')
    if spec.input_name not in ('', 'input') or spec.output_name not in ('', 'output'):
        problems.append("tensor names must be empty or 'input' / 'output'")
    if problems:
        raise ExportError('the description does not fit the model: ' + '; '.join(problems))


def export_foreign(model: nn.Module, spec: 'ForeignModelSpec', path: str, *,
                   tolerance: float = 1e-3, opset: int = 17, verbose: bool = True) -> float:
    """Export a relative model as a third-party file (see the module docstring).

    Returns the max abs difference from PyTorch on images normalised as ``spec`` says.

    Raises:
        ExportError: the description does not fit the model, or parity fails.

    """
    import onnxruntime as ort

    model = model.eval().cpu()
    if getattr(model, 'relative_output', None) is None:
        raise ExportError('only relative models can be exported as third-party files')
    check_description(model, spec)
    graph = _ForeignGraph(model).eval()
    h, w = model.config.image_size
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buf = io.BytesIO()
    example = torch.zeros(1, 3, h, w)
    with torch.no_grad(), static_same_padding(graph, example):
        torch.onnx.export(graph, (example,), buf, input_names=['input'],
                          output_names=['output'], dynamo=False, opset_version=opset,
                          dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
    proto = onnx.load_from_string(buf.getvalue())
    del proto.metadata_props[:]
    onnx.save_model(proto, path, save_as_external_data=False)
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    worst = 0.0
    for seed in (1, 2):
        image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = model(image)['relative'].numpy()
        mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1)
        got = sess.run(None, {'input': (image.numpy() - mean) / std})[0]
        rel = float(np.max(np.abs(got - ref))) / max(float(np.max(np.abs(ref))), 1e-12)
        worst = max(worst, rel)
    if verbose:
        print(f'{path}: third-party style {spec.output} model, no metadata, max relative diff '
              f'vs PyTorch {worst:.3g} (tolerance {tolerance:g})')
    if not worst <= tolerance:
        raise ExportError(f'{path}: ONNX Runtime differs from PyTorch by {worst:.3g} (relative)')
    return worst


def load_checkpoint_model(path: str) -> Tuple[nn.Module, ModelConfig, dict]:
    """Rebuild a trained model from a trainer checkpoint; return (model, config, raw dict)."""
    state = torch.load(path, map_location='cpu', weights_only=False)
    config = config_from_dict(state['config'])
    model = build_model(config.model)
    model.load_state_dict(state['model'])
    return model.eval(), config.model, state


def main(argv: Optional[list] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    from training.data import echo_contract

    p = argparse.ArgumentParser(description='Export a trained checkpoint to ONNX.')
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--tolerance', type=float, default=1e-3)
    p.add_argument('--dynamo', action='store_true', help='use the torch.export exporter')
    p.add_argument('--fp16', action='store_true',
                   help='write the graph in half precision (for GPUs; float32 I/O)')
    p.add_argument('--fp16-tolerance', type=float, default=2e-2,
                   help='largest fp16 difference from PyTorch, relative to the output range')
    p.add_argument('--foreign', metavar='DESCRIPTION.yaml', default=None,
                   help='relative models: write a third-party style file (no metadata, '
                        'normalisation outside the graph) that this description fits')
    args = p.parse_args(argv)
    model, mcfg, state = load_checkpoint_model(args.checkpoint)
    if args.foreign:
        from avs_net_ros.core.foreign import read_spec_file
        export_foreign(model, read_spec_file(args.foreign), args.out, tolerance=args.tolerance)
        return
    echo = echo_contract(config_from_dict(state['config'])) if mcfg.variant == 'av' else None
    contract = make_contract(mcfg, echo)
    if not args.fp16:
        export_onnx(model, contract, args.out, tolerance=args.tolerance,
                    opset=18 if args.dynamo else 17, dynamo=args.dynamo)
        return
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, 'fp32.onnx')
        export_onnx(model, contract, fp32, tolerance=args.tolerance,
                    opset=18 if args.dynamo else 17, dynamo=args.dynamo)
        convert_fp16(fp32, args.out)
    abs_diff, rel_diff = parity(args.out, model, contract)
    print(f'{args.out}: fp16, max abs diff vs PyTorch {abs_diff:.3g} (relative {rel_diff:.3g}, '
          f'tolerance {args.fp16_tolerance:g})')
    if not rel_diff <= args.fp16_tolerance:
        raise ExportError(f'{args.out}: fp16 differs from PyTorch by {rel_diff:.3g} (relative)')


if __name__ == '__main__':
    main()
