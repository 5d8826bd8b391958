"""Offline bag evaluation speed (frames/s) next to the pipeline's own speed on the same frames.

Writes a bag of synthetic frames at the camera resolution, then times:

1. bag reading alone (rosbags + stamp pairing + numpy conversion);
2. the pipeline alone (``MetricDepthPipeline.infer``: AV M_p + relative + scale per frame);
   (with ``--threads`` ONNX Runtime threads, as a node runs it, and with one);
3. ``evaluate_bag`` with the same models (AV + relative: Table 1 M_p (AV) row and Table 2 w/o
   and Proposed rows, scored at ground-truth resolution), frames in parallel;
4. ``evaluate_bag`` for the full tables (AV + V + relative: Baseline rows and AIDE_k too).

    python -m benchmarks.bench_eval_offline --av artifacts/models/avs_av.onnx \
        --v artifacts/models/avs_v.onnx --relative artifacts/models/relative.onnx
    python -m benchmarks.bench_eval_offline --tiny-models     # test/model_builders' networks
"""

import argparse
import os
import sys
import tempfile
import time

from avs_net_ros.eval.bagio import BagFrames, BagWriter
from avs_net_ros.eval.offline import EvalConfig, evaluate_bag, Variant
from avs_net_ros.runtime.memory import keep_freed_memory
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
import numpy as np


def _write_bag(path: str, frames: int, h: int, w: int, pipe: MetricDepthPipeline,
               storage: str) -> None:
    c = pipe.avs.contract
    f = c.echo.features
    rng = np.random.default_rng(0)
    info = {'sample_rate': f.sample_rate, 'channels': f.channels,
            'window_samples': f.window_samples, 'lead_in_samples': c.echo.lead_in_samples,
            'speed_of_sound': c.echo.speed_of_sound, 'max_range': c.echo.echo_max_depth,
            'chirp': {}, 'alignment': {}, 'backend': 'benchmark'}
    with BagWriter(path, storage) as bw:
        bw.set_echo_info(info)
        for i in range(frames):
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            echo = (0.05 * rng.standard_normal((2, f.window_samples))).astype(np.float32)
            gt = rng.uniform(0.3, 0.95 * c.max_depth, (h, w)).astype(np.float32)
            gt[rng.random((h, w)) < 0.2] = np.nan
            bw.write_frame(1_000_000_000 + i * 100_000_000, rgb, echo, gt)


def main(argv=None) -> int:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--av', help='AVS-Net ONNX (AV)')
    p.add_argument('--v', help='visual-only AVS-Net ONNX')
    p.add_argument('--relative', help='relative-depth ONNX')
    p.add_argument('--tiny-models', action='store_true',
                   help="build test/model_builders' tiny models (needs torch)")
    p.add_argument('--camera', default='480x640', help='camera and ground-truth HxW')
    p.add_argument('--frames', type=int, default=40)
    p.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    p.add_argument('--threads', type=int, default=2,
                   help="ONNX Runtime intra-op threads of the pipeline run (the node's setting)")
    p.add_argument('--workers', type=int, default=None,
                   help='worker processes of the evaluation (default: EvalConfig.workers)')
    p.add_argument('--providers', nargs='+', default=['cpu'])
    p.add_argument('--default-malloc', action='store_true',
                   help="leave glibc's allocator settings alone (see runtime.memory)")
    args = p.parse_args(argv)
    print('allocator: ' + ('glibc defaults' if args.default_malloc or not keep_freed_memory()
                           else 'freed memory kept (runtime.memory)'))
    h, w = (int(v) for v in args.camera.split('x'))
    tmp = tempfile.mkdtemp(prefix='bench_eval_')
    if args.tiny_models:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), 'test'))
        from model_builders import build_model_set
        models = build_model_set(os.path.join(tmp, 'models'))
        args.av, args.v, args.relative = models['av'], models['v'], models['relative']
    if not (args.av and args.v and args.relative):
        p.error('give --av, --v and --relative, or --tiny-models')
    pipe = MetricDepthPipeline(args.av, args.relative, args.providers,
                               intra_op_threads=args.threads)
    bag = os.path.join(tmp, 'bag')
    t0 = time.perf_counter()
    _write_bag(bag, args.frames, h, w, pipe, args.storage)
    print(f'bag: {args.frames} frames {w}x{h} ({args.storage}), written in '
          f'{time.perf_counter() - t0:.2f} s, {sum(os.path.getsize(os.path.join(bag, f)) for f in os.listdir(bag)) / 1e6:.1f} MB')  # noqa: E501

    t0 = time.perf_counter()
    with BagFrames(bag, need=('ground_truth', 'echoes')) as frames:
        kept = list(frames)
    read_fps = len(kept) / (time.perf_counter() - t0)
    print(f'bag reading + pairing + conversion: {read_fps:8.1f} frames/s')

    sr = pipe.avs.contract.echo.features.sample_rate
    pipe_fps = 0.0
    for threads in sorted({args.threads, 1}):  # the node's setting and one thread per run
        pipe = MetricDepthPipeline(args.av, args.relative, args.providers,
                                   intra_op_threads=threads)
        for f in kept[:3]:
            pipe.infer(f.rgb, f.echo, sr)  # warm-up
        t0 = time.perf_counter()
        for f in kept:
            pipe.infer(f.rgb, f.echo, sr)
        fps = len(kept) / (time.perf_counter() - t0)
        pipe_fps = max(pipe_fps, fps)
        print(f'pipeline alone (infer: AV + relative + scale, one frame at a time), {threads} '
              f'thread(s) per run: {fps:8.1f} frames/s')
    del kept

    cfg = EvalConfig(providers=tuple(args.providers), intra_op_threads=1,
                     workers=args.workers, progress=False)
    for label, variant in (('same models (AV + relative)', Variant('av', args.av)),
                           ('full tables (AV + V + relative)', Variant('av', args.av, args.v))):
        evaluate_bag(bag, [variant], {'rel': args.relative}, config=EvalConfig(
            providers=tuple(args.providers), progress=False, max_frames=3))  # warm-up
        res = evaluate_bag(bag, [variant], {'rel': args.relative}, config=cfg)
        t = res.timing
        print(f'offline evaluation, {label}: {t["frames_per_s"]:8.1f} frames/s '
              f'({t["workers"]} worker processes, 1 thread per run; thread time in models '
              f'{t["models_s"]:.2f} s, scoring {t["scoring_s"]:.2f} s; wall {t["wall_s"]:.2f} '
              f's; {t["frames_per_s"] / pipe_fps:.2f}x the faster pipeline run)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
