"""AVS-Net latency per frame: PyTorch eager vs ONNX Runtime, plus parameters and FLOPs.

    python -m benchmarks.bench_model_latency [--size 256] [--threads 2] [--runs 20]

Builds the default AV model (MiDaS-small on tf_efficientnet_lite3, ResNet-18 echo encoder,
ZoeDepth head; random weights, since speed does not depend on them), exports it with
``training.export`` (contract metadata, parity check), and times batch-1 inference after
warm-up in both runtimes with the same number of threads. Prints the median and 90th
percentile per frame, parameter counts and forward FLOPs (``torch.utils.flop_counter``;
one multiply-add = 2 FLOPs). The machine's load average is printed too: on a shared CPU
it moves both timings.
"""

import argparse
import os
import tempfile
import time
from typing import Callable, List, Optional

from avs_net_ros.core.contract import EchoContract
from avs_net_ros.core.spectrogram import EchoFeatureConfig

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from training.config import ModelConfig
from training.export import example_inputs, export_onnx, make_contract
from training.models.avs_net import build_model


def _time(fn: Callable[[], object], runs: int, warmup: int) -> List[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(1000.0 * (time.perf_counter() - t))
    return out


def _fmt(ms: List[float]) -> str:
    return f'median {np.median(ms):7.1f} ms   p90 {np.percentile(ms, 90):7.1f} ms'


def main(argv: Optional[list] = None) -> None:
    """Run the benchmark and print the figures."""
    import onnxruntime as ort

    p = argparse.ArgumentParser(description='AVS-Net PyTorch vs ONNX Runtime latency.')
    p.add_argument('--size', type=int, default=256, help='square image and spectrogram size')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--runs', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--variant', default='av', choices=('av', 'v'))
    p.add_argument('--dynamo', action='store_true', help='export with torch.export (opset 18)')
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(variant=args.variant, image_size=(args.size, args.size))
    model = build_model(cfg).eval()
    echo = EchoContract(EchoFeatureConfig(spec_size=(args.size, args.size)),
                        echo_max_depth=30.0, speed_of_sound=340.0)
    contract = make_contract(cfg, echo if args.variant == 'av' else None)
    inputs = example_inputs(contract)
    tensors = tuple(inputs.values())

    total = sum(p.numel() for p in model.parameters())
    parts = {name: sum(p.numel() for p in mod.parameters())
             for name, mod in model.named_children() if name != 'normalize'}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*tensors)
    flops = counter.get_total_flops()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f'avs_{args.variant}.onnx')
        export_onnx(model, contract, path, dynamo=args.dynamo, opset=18 if args.dynamo else 17)
        size_mb = os.path.getsize(path) / 2 ** 20
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
        feeds = {k: v.numpy() for k, v in inputs.items()}
        ort_ms = _time(lambda: sess.run(None, feeds), args.runs, args.warmup)

    def eager() -> None:
        with torch.no_grad():
            model(*tensors)

    torch_ms = _time(eager, args.runs, args.warmup)
    load = os.getloadavg()
    print(f'AVS-Net {args.variant.upper()} at {args.size}x{args.size} (spectrogram '
          f'{args.size}x{args.size}), batch 1, {args.threads} threads, {os.cpu_count()} CPUs, '
          f'load average {load[0]:.1f}')
    print(f'parameters: {total / 1e6:.2f} M (' + ', '.join(
        f'{k} {v / 1e6:.2f} M' for k, v in parts.items()) + ')')
    print(f'forward FLOPs: {flops / 1e9:.2f} GFLOP ({flops / 2e9:.2f} GMAC)')
    exporter = 'torch.export (opset 18)' if args.dynamo else 'TorchScript (opset 17)'
    print(f'ONNX file: {size_mb:.1f} MiB (one file, {exporter} exporter)')
    print(f'PyTorch eager : {_fmt(torch_ms)}')
    print(f'ONNX Runtime  : {_fmt(ort_ms)}')
    print(f'speed-up (median): {np.median(torch_ms) / np.median(ort_ms):.2f}x')


if __name__ == '__main__':
    main()
