"""Scoring cost at ground-truth resolution: ``depth_metrics`` per map, with each allocator setting.

Runs itself twice as a child process, once with glibc's default allocator settings
(``AVS_NET_ROS_MALLOC=default``) and once with ``runtime.memory.keep_freed_memory``, and prints
the per-call time of ``depth_metrics`` on the raw ground truth and on a ``GroundTruth``
prepared once, and of the preparation itself (minimum and median of ``--repeats`` calls).

    python -m benchmarks.bench_metrics [--size 480x640] [--repeats 60]
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np


def _child(h: int, w: int, repeats: int) -> None:
    from avs_net_ros.core.metrics import depth_metrics, GroundTruth
    from avs_net_ros.runtime.memory import keep_freed_memory

    kept = keep_freed_memory()
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.3, 11.0, (h, w)).astype(np.float32)
    gt[rng.random(gt.shape) < 0.2] = np.nan
    pred = (gt * rng.uniform(0.8, 1.2, gt.shape)).astype(np.float32)
    pred[rng.random(gt.shape) < 0.05] = np.nan
    prepared = GroundTruth.prepare(gt, 12.0)
    label = 'freed memory kept' if kept else 'glibc defaults'
    for name, fn in (('depth_metrics, raw ground truth', lambda: depth_metrics(
            pred, gt, max_depth=12.0)),
            ('depth_metrics, prepared ground truth', lambda: depth_metrics(
                pred, prepared, max_depth=12.0)),
            ('GroundTruth.prepare', lambda: GroundTruth.prepare(gt, 12.0))):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f'{label:18s} {name:38s} min {min(times) * 1e3:6.2f} ms   median '
              f'{np.median(times) * 1e3:6.2f} ms')


def main() -> int:
    """Run both children and print their figures."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', default='480x640', help='ground-truth HxW')
    p.add_argument('--repeats', type=int, default=60)
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args()
    h, w = (int(v) for v in args.size.split('x'))
    if args.child:
        _child(h, w, args.repeats)
        return 0
    print(f'{h}x{w} ground truth, 80 % valid, {args.repeats} calls each')
    for setting in ('default', ''):
        env = dict(os.environ, AVS_NET_ROS_MALLOC=setting)
        subprocess.run([sys.executable, '-m', 'benchmarks.bench_metrics', '--child', '--size',
                        args.size, '--repeats', str(args.repeats)], env=env, check=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
