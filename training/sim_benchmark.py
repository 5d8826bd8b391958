"""The simulated benchmark end to end: data, V / AV / relative training, tables, ONNX files.

    python -m training.sim_benchmark --config training/configs/sim_benchmark.yaml

1. Generates the two simulated sets if absent (``avs_net_ros.datasets.generate``): a
   BV2-like family with scale ambiguity on (train 1200 / val 100 / test 200 frames, 10 frames
   per location, 160x96) and the BV1-like family (test 200) recorded with the same rig.
2. Trains V, AV and the relative model (``training.train``), as three single-thread
   processes in parallel by default (``--sequential`` for one after the other).
3. Evaluates (``training.evaluate``) into ``<root>/eval``: table.md / table.csv, AIDE CSV and
   PNG, qualitative panels, summary.yaml.
4. Exports the three models to ``<root>/models/{avs_av,avs_v,relative}.onnx`` with the
   contract metadata and the parity check.
"""

import argparse
import os
import subprocess
import sys
import time
from typing import List, Optional

from training.config import load_config

VARIANTS = ('v', 'av', 'relative')
GENERATE = {
    'SimBV2': ['--layout', 'bv2', '--train', '1200', '--val', '100', '--test', '200',
               '--seed', '1'],
    'SimBV1fam': ['--layout', 'bv2', '--family', 'bv1_like', '--train', '0', '--val', '0',
                  '--test', '200', '--seed', '2'],
}
COMMON = ['--frames', '10', '--width', '160', '--height', '96', '--workers', '2', '--quiet']


def _run(cmd: List[str]) -> None:
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: Optional[list] = None) -> None:
    """Run the benchmark (see the module docstring)."""
    p = argparse.ArgumentParser(description='Simulated AVS-Net benchmark.')
    p.add_argument('--config', default='training/configs/sim_benchmark.yaml')
    p.add_argument('--root', default='artifacts/sim_benchmark')
    p.add_argument('--sequential', action='store_true', help='train one model at a time')
    p.add_argument('--skip-train', action='store_true', help='evaluate existing checkpoints')
    args = p.parse_args(argv)
    load_config(args.config)  # fail now, not after training, if the config is broken
    py = sys.executable
    t0 = time.time()
    for name, extra in GENERATE.items():
        out = os.path.join(args.root, name)
        if not os.path.isdir(out):
            _run([py, '-m', 'avs_net_ros.datasets.generate', '--out', out] + extra + COMMON)
    ckpt = {v: os.path.join(args.root, v, 'best.pt') for v in VARIANTS}
    if not args.skip_train:
        cmds = [[py, '-m', 'training.train', '--config', args.config, '--device', 'cpu',
                 '--set', f'model.variant={v}', '--set', f'out_dir={args.root}/{v}']
                for v in VARIANTS]
        if args.sequential:
            for cmd in cmds:
                _run(cmd)
        else:
            procs = []
            for v, cmd in zip(VARIANTS, cmds):
                print('+', ' '.join(cmd), f'> {args.root}/train_{v}.log', flush=True)
                os.makedirs(args.root, exist_ok=True)
                log = open(os.path.join(args.root, f'train_{v}.log'), 'w')
                procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
            failed = [v for v, (proc, log) in zip(VARIANTS, procs) if proc.wait() != 0]
            for _, log in procs:
                log.close()
            if failed:
                raise SystemExit(f'training failed for {failed}; see {args.root}/train_*.log')
    print(f'training done after {time.time() - t0:.0f} s', flush=True)
    _run([py, '-m', 'training.evaluate', '--config', args.config, '--v', ckpt['v'],
          '--av', ckpt['av'], '--relative', ckpt['relative'], '--out',
          os.path.join(args.root, 'eval')])
    names = {'v': 'avs_v', 'av': 'avs_av', 'relative': 'relative'}
    for v in VARIANTS:
        _run([py, '-m', 'training.export', '--checkpoint', ckpt[v], '--out',
              os.path.join(args.root, 'models', f'{names[v]}.onnx')])
    print(f'benchmark done after {time.time() - t0:.0f} s', flush=True)


if __name__ == '__main__':
    main()
