"""AVS-Net latency per frame: PyTorch eager, ONNX Runtime fp32 and ONNX Runtime INT8 side by side.

    python -m benchmarks.bench_model_latency [--size 256] [--threads 2] [--runs 20] [--top 10]
        [--calib-root SIM_ROOT]                      # INT8 ranges from dataset frames
        [--checkpoint best.pt --test-root SIM_ROOT]  # a trained model, plus fp32 vs INT8 accuracy

Builds the default AV model (MiDaS-small on tf_efficientnet_lite3, ResNet-18 echo encoder,
ZoeDepth head; random weights, since speed does not depend on them) or loads ``--checkpoint``,
exports it with ``training.export`` (contract metadata, parity check), quantizes it with
``training.quantize`` (INT8 QDQ, per-channel weights; calibrated on ``--calib-root`` frames,
else on random inputs of the contract's shapes, which is enough for timing), and times batch-1
inference after warm-up in the three runtimes with the same number of threads, in alternating
blocks so that load from other processes falls on all three alike; INT8 is timed twice, with
ONNX Runtime's idle threads spin-waiting (its default) and sleeping (``intra_op_spinning``
false, the node's default). Prints the median and 90th percentile per frame, the ratios,
parameter counts and forward FLOPs (``torch.utils.flop_counter``; one multiply-add = 2 FLOPs),
the load average before and after, and ONNX Runtime's own profile
(``SessionOptions.enable_profiling``): the top operator types by share of kernel time and the
share of each part of the network, so a regression shows where it is; PyTorch's
(torch.profiler) top operators next to it, and the time both spend in convolutions, with
their rate against ONNX Runtime's on one large matrix product (this CPU's practical peak) and
the speed-up fp32 could reach if nothing but the convolutions took time. With
``--test-root`` the fp32 and INT8 files are also scored on the test split with the core's
metrics (frames fed as the runtime feeds them), to show what INT8 costs in accuracy.
"""

import argparse
from collections import Counter
import json
import os
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.contract import EchoContract, ModelContract
from avs_net_ros.core.metrics import depth_metrics, MetricAverager
from avs_net_ros.core.spectrogram import EchoFeatureConfig

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from training.config import ModelConfig
from training.export import example_inputs, export_onnx, load_checkpoint_model, make_contract
from training.models.avs_net import build_model
from training.quantize import calibration_feeds, contract_feeds, dataset_frames, quantize_model

#: Node-name prefixes of the exported graph -> the part of the network they belong to.
PARTS = (('/model/head/', 'metric-bins head'), ('/model/echo_encoder/', 'echo encoder'),
         ('/model/fusion/', 'cross-modal attention'), ('/model/pretrained/', 'image encoder'),
         ('/model/normalize/', 'image encoder'), ('/model/reassemble', 'image encoder'),
         ('/model/layer', 'MiDaS decoder'), ('/model/refinenet', 'MiDaS decoder'),
         ('/model/output_', 'MiDaS decoder'))


def _fmt(ms: List[float]) -> str:
    return f'median {np.median(ms):7.1f} ms   p90 {np.percentile(ms, 90):7.1f} ms'


def time_side_by_side(fns: Dict[str, Callable[[], object]], runs: int, warmup: int,
                      rounds: int = 2) -> Dict[str, List[float]]:
    """Return milliseconds per call of each function, timed in ``rounds`` alternating blocks.

    Each block runs one function ``runs / rounds`` times after one untimed call: calls of
    different runtimes are not interleaved one by one, since ONNX Runtime's threads spin for
    a while after a run and would slow the next PyTorch call; alternating blocks still spread
    load from other processes over all of them.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: Dict[str, List[float]] = {k: [] for k in fns}
    per_block = max(1, runs // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            for _ in range(per_block):
                t = time.perf_counter()
                fn()
                out[name].append(1000.0 * (time.perf_counter() - t))
    return out


def _session(path: str, threads: int, profile_prefix: Optional[str] = None,
             spinning: bool = True):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if not spinning:
        so.add_session_config_entry('session.intra_op.allow_spinning', '0')
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])


def gemm_rate(threads: int, n: int = 2048, runs: int = 5) -> float:
    """Return ONNX Runtime's float32 MatMul rate (GFLOP/s) for (n x n) @ (n x n) on this CPU.

    The practical peak its convolutions can reach (they run as blocked matrix products), so
    the convolution rate of the model can be read against it.
    """
    import onnx
    from onnx import helper, TensorProto

    rng = np.random.default_rng(0)
    b = helper.make_tensor('b', TensorProto.FLOAT, [n, n], rng.random(n * n, np.float32))
    graph = helper.make_graph([helper.make_node('MatMul', ['a', 'b'], ['y'])], 'gemm',
                              [helper.make_tensor_value_info('a', TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [n, n])],
                              [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'gemm.onnx')
        onnx.save(model, path)
        sess = _session(path, threads)
        a = {'a': rng.random((n, n), np.float32)}
        sess.run(None, a)
        seconds = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, a)
            seconds.append(time.perf_counter() - t)
    return 2.0 * n ** 3 / float(np.median(seconds)) / 1e9


def _part(node: str) -> str:
    for prefix, name in PARTS:
        if node.startswith(prefix):
            return name
    return 'other (layout reorders, fused nodes)'


def operator_profile(path: str, feeds: Dict[str, np.ndarray], threads: int, runs: int,
                     folder: str) -> Tuple[Counter, Counter, float]:
    """Run ``path`` under ONNX Runtime's profiler; return (by op type, by part, total) in us.

    Times are the kernel times ONNX Runtime records per node (``*_kernel_time`` events),
    summed over ``runs`` runs after one warm-up run.
    """
    sess = _session(path, threads, os.path.join(folder, 'ort_profile'))
    sess.run(None, feeds)
    for _ in range(runs):
        sess.run(None, feeds)
    trace = sess.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    by_op: Counter = Counter()
    by_part: Counter = Counter()
    seen_run = 0
    for e in events:
        if e.get('cat') == 'Session' and e.get('name') == 'model_run':
            seen_run += 1
        if e.get('cat') != 'Node' or not e['name'].endswith('_kernel_time') or seen_run < 1:
            continue
        by_op[e['args']['op_name']] += e['dur']
        by_part[_part(e['name'])] += e['dur']
    return by_op, by_part, float(sum(by_op.values()))


def _print_profile(title: str, by_op: Counter, by_part: Counter, total: float, runs: int,
                   top: int) -> None:
    print(f'{title}: kernel time {total / 1e3 / runs:.1f} ms per run ({runs} runs)')
    ops = ', '.join(f'{k} {100 * v / total:.1f} %' for k, v in by_op.most_common(top))
    print(f'  top operators: {ops}')
    parts = ', '.join(f'{k} {100 * v / total:.1f} %' for k, v in by_part.most_common())
    print(f'  by part: {parts}')


def eager_profile(fn: Callable[[], object], runs: int) -> Tuple[Counter, float]:
    """Run ``fn`` under torch.profiler; return (self CPU time by aten operator, total) in us."""
    from torch.profiler import profile, ProfilerActivity

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            fn()
    by_op: Counter = Counter()
    for e in prof.key_averages():
        by_op[e.key] += e.self_cpu_time_total
    return by_op, float(sum(by_op.values()))


def accuracy(paths: Dict[str, str], contract: ModelContract, root: str, layout: str,
             split: str, threads: int) -> Tuple[int, Dict[str, Dict[str, float]]]:
    """Score each model file on a split (core metrics at ground-truth resolution)."""
    sessions = {k: _session(p, threads) for k, p in paths.items()}
    avgs = {k: MetricAverager() for k in paths}
    sr = contract.echo.features.sample_rate if contract.takes_echo else None
    _, frames = dataset_frames(root, contract, layout, split)
    n = 0
    for frame in frames:
        feeds = contract_feeds(contract, frame.rgb, frame.echo, sr)
        if not np.any(frame.ground_truth > 0):
            continue
        for k, sess in sessions.items():
            pred = sess.run(None, feeds)[0][0, 0]
            avgs[k].add(depth_metrics(pred, frame.ground_truth, max_depth=contract.max_depth))
        n += 1
    return n, {k: a.mean() for k, a in avgs.items()}


def _model(args: argparse.Namespace) -> Tuple[torch.nn.Module, ModelConfig, ModelContract]:
    if args.checkpoint:
        from training.config import config_from_dict
        from training.data import echo_contract

        model, cfg, state = load_checkpoint_model(args.checkpoint)
        echo = echo_contract(config_from_dict(state['config'])) if cfg.variant == 'av' else None
        return model, cfg, make_contract(cfg, echo)
    cfg = ModelConfig(variant=args.variant, image_size=(args.size, args.size))
    model = build_model(cfg).eval()
    echo = EchoContract(EchoFeatureConfig(spec_size=(args.size, args.size)),
                        echo_max_depth=30.0, speed_of_sound=340.0)
    return model, cfg, make_contract(cfg, echo if args.variant == 'av' else None)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(description='AVS-Net PyTorch vs ONNX Runtime fp32 vs INT8.')
    p.add_argument('--size', type=int, default=256, help='square image and spectrogram size')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--runs', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--variant', default='av', choices=('av', 'v'))
    p.add_argument('--dynamo', action='store_true', help='export with torch.export (opset 18)')
    p.add_argument('--top', type=int, default=10, help='operators listed in the profile')
    p.add_argument('--profile-runs', type=int, default=5)
    p.add_argument('--checkpoint', help='trained checkpoint instead of the random default model')
    p.add_argument('--calib-root', help='BatVision-layout root to calibrate INT8 on')
    p.add_argument('--calib-frames', type=int, default=16)
    p.add_argument('--test-root', help='score fp32 and INT8 on this root (needs --checkpoint)')
    p.add_argument('--test-split', default='test')
    p.add_argument('--layout', default='bv2', choices=('bv2', 'bv1'))
    p.add_argument('--keep', help='folder to keep the fp32 and INT8 ONNX files in')
    args = p.parse_args(argv)
    if args.test_root and not args.checkpoint:
        p.error('--test-root scores a trained model: give --checkpoint')

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, cfg, contract = _model(args)
    inputs = example_inputs(contract)
    tensors = tuple(inputs.values())
    feeds = {k: v.numpy() for k, v in inputs.items()}

    total = sum(q.numel() for q in model.parameters())
    parts = {name: sum(q.numel() for q in mod.parameters())
             for name, mod in model.named_children() if name != 'normalize'}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*tensors)
    flops = counter.get_total_flops()
    conv_flops = sum(v for k, v in counter.get_flop_counts()['Global'].items()
                     if 'convolution' in str(k))

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or tmp
        os.makedirs(folder, exist_ok=True)
        fp32 = os.path.join(folder, f'avs_{cfg.variant}_fp32.onnx')
        int8 = os.path.join(folder, f'avs_{cfg.variant}_int8.onnx')
        export_onnx(model, contract, fp32, dynamo=args.dynamo, opset=18 if args.dynamo else 17,
                    verbose=False)
        if args.calib_root:
            calib = calibration_feeds(args.calib_root, contract, args.layout, 'train',
                                      args.calib_frames)
            calib_src = f'{len(calib)} frames of {args.calib_root} (train)'
        else:
            calib = [{k: v.numpy() for k, v in example_inputs(contract, seed=s).items()}
                     for s in range(4)]
            calib_src = '4 random inputs (timing only)'
        quantize_model(fp32, int8, calib)
        sizes = {k: os.path.getsize(v) / 2 ** 20 for k, v in (('fp32', fp32), ('int8', int8))}
        ort_fp32, ort_int8 = _session(fp32, args.threads), _session(int8, args.threads)
        ort_int8_sleep = _session(int8, args.threads, spinning=False)

        def eager() -> None:
            with torch.no_grad():
                model(*tensors)

        load0 = os.getloadavg()
        ms = time_side_by_side({'eager': eager,
                                'fp32': lambda: ort_fp32.run(None, feeds),
                                'int8': lambda: ort_int8.run(None, feeds),
                                'int8_sleep': lambda: ort_int8_sleep.run(None, feeds)},
                               args.runs, args.warmup)
        load1 = os.getloadavg()
        prof = {k: operator_profile(path, feeds, args.threads, args.profile_runs, tmp)
                for k, path in (('fp32', fp32), ('int8', int8))}
        eager_ops, eager_total = eager_profile(eager, args.profile_runs)
        gemm = gemm_rate(args.threads)
        acc = (accuracy({'fp32': fp32, 'int8': int8}, contract, args.test_root, args.layout,
                        args.test_split, args.threads) if args.test_root else None)

    h, w = contract.image_size
    what = args.checkpoint or 'default config, random weights'
    print(f'AVS-Net {cfg.variant.upper()} ({what}) at {h}x{w}'
          + (f' (spectrogram {contract.echo.features.spec_size[0]}x'
             f'{contract.echo.features.spec_size[1]})' if contract.takes_echo else '')
          + f', batch 1, {args.threads} threads, {os.cpu_count()} CPUs')
    print(f'load average (1 min) {load0[0]:.2f} before timing, {load1[0]:.2f} after')
    print(f'parameters: {total / 1e6:.2f} M (' + ', '.join(
        f'{k} {v / 1e6:.2f} M' for k, v in parts.items()) + ')')
    print(f'forward FLOPs: {flops / 1e9:.2f} GFLOP ({flops / 2e9:.2f} GMAC)')
    exporter = 'torch.export (opset 18)' if args.dynamo else 'TorchScript (opset 17)'
    print(f'ONNX files: fp32 {sizes["fp32"]:.1f} MiB ({exporter} exporter), INT8 '
          f'{sizes["int8"]:.1f} MiB (QDQ, per-channel weights, calibrated on {calib_src})')
    print(f'PyTorch eager      : {_fmt(ms["eager"])}')
    print(f'ONNX Runtime fp32  : {_fmt(ms["fp32"])}')
    print(f'ONNX Runtime INT8  : {_fmt(ms["int8"])}')
    print(f'  idle threads sleep: {_fmt(ms["int8_sleep"])} (session.intra_op.allow_spinning 0, '
          f"the node's default)")
    e, f, i = (float(np.median(ms[k])) for k in ('eager', 'fp32', 'int8'))
    print(f'speed-up (medians, one run): fp32 vs eager {e / f:.2f}x, INT8 vs eager {e / i:.2f}x, '
          f'INT8 vs fp32 {f / i:.2f}x')
    r = args.profile_runs
    print(f'PyTorch eager profile (torch.profiler): self CPU time {eager_total / 1e3 / r:.1f} ms '
          f'per run ({r} runs; operators as the calling thread records them)')
    print('  top operators: ' + ', '.join(f'{k} {100 * v / eager_total:.1f} %'
                                          for k, v in eager_ops.most_common(args.top)))
    for k, title in (('fp32', 'ONNX Runtime fp32 profile'), ('int8', 'ONNX Runtime INT8 profile')):
        _print_profile(title, *prof[k], args.profile_runs, args.top)
    conv_eager = sum(v for k, v in eager_ops.items() if 'conv' in k) / 1e3 / r
    conv_ort = sum(v for k, v in prof['fp32'][0].items() if 'Conv' in k) / 1e3 / r
    print(f'convolutions per run: PyTorch eager {conv_eager:.1f} ms (aten conv operators), '
          f'ONNX Runtime fp32 {conv_ort:.1f} ms (Conv kernels)')
    rate_eager, rate_ort = conv_flops / conv_eager / 1e6, conv_flops / conv_ort / 1e6
    print(f'  {conv_flops / 1e9:.2f} GFLOP of convolutions: eager {rate_eager:.0f} GFLOP/s, '
          f'ONNX Runtime {rate_ort:.0f} GFLOP/s; a 2048x2048 MatMul in ONNX Runtime here '
          f'{gemm:.0f} GFLOP/s (same run)')
    print(f'  fp32 vs eager if every other operator took no time: at most {e / conv_ort:.2f}x')
    if acc is not None:
        n, m = acc
        print(f'accuracy on {n} frames of {args.test_root} ({args.test_split}), 0 < gt <= '
              f'{contract.max_depth:g} m:')
        for k in ('fp32', 'int8'):
            print(f'  {k}: delta1 {m[k]["delta1"]:.4f}   AbsRel {m[k]["abs_rel"]:.4f}   '
                  f'RMSE {m[k]["rmse"]:.3f}')
        print(f'  INT8 - fp32: delta1 {100 * (m["int8"]["delta1"] - m["fp32"]["delta1"]):+.2f} '
              f'points, AbsRel {m["int8"]["abs_rel"] - m["fp32"]["abs_rel"]:+.4f}')


if __name__ == '__main__':
    main()
