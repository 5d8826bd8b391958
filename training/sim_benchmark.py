"""The simulated benchmark end to end over several training seeds: data, training, tables.

    python -m training.sim_benchmark --config training/configs/sim_benchmark.yaml --seeds 1,2,3

1. Generates the two simulated sets if absent (``avs_net_ros.datasets.generate``): a
   BV2-like family with scale ambiguity on (train 1200 / val 100 / test 200 frames, 2 frames
   per location so the training set holds 600 rooms, 160x96) and the BV1-like family (test
   200) recorded with the same rig.
2. For every seed, trains V and AV (``training.train`` with ``seed=N``) into
   ``<root>/seed_<N>/``, two single-thread processes in parallel. The relative model is
   trained once, with the first seed, alongside (``--relative-per-seed`` trains one per
   seed): it is the same for the V and AV rows, so it moves both, not their difference.
3. Evaluates each seed (``training.evaluate``) into ``<root>/seed_<N>/eval`` and writes the
   mean ± sd over seeds (``training.seed_summary``) into ``<root>/eval``: table.md / table.csv,
   AIDE_k CSV and PNG per test set with error bars, summary.yaml.
4. Exports the first seed's three models to ``<root>/models/{avs_av,avs_v,relative}.onnx``.
"""

import argparse
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from training.config import load_config

GENERATE = {
    'SimBV2': ['--layout', 'bv2', '--train', '1200', '--val', '100', '--test', '200',
               '--seed', '1'],
    'SimBV1fam': ['--layout', 'bv2', '--family', 'bv1_like', '--train', '0', '--val', '0',
                  '--test', '200', '--seed', '2'],
}
COMMON = ['--frames', '2', '--width', '160', '--height', '96', '--workers', '2', '--quiet']


def _run(cmd: List[str]) -> None:
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _train_parallel(jobs: List[Tuple[str, List[str]]], root: str) -> None:
    procs = []
    for label, cmd in jobs:
        log_path = os.path.join(root, f'train_{label}.log')
        print('+', ' '.join(cmd), f'> {log_path}', flush=True)
        log = open(log_path, 'w')
        procs.append((label, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
    failed = [label for label, proc, _ in procs if proc.wait() != 0]
    for _, _, log in procs:
        log.close()
    if failed:
        raise SystemExit(f'training failed for {failed}; see {root}/train_*.log')


def main(argv: Optional[list] = None) -> None:
    """Run the benchmark (see the module docstring)."""
    p = argparse.ArgumentParser(description='Simulated AVS-Net benchmark over seeds.')
    p.add_argument('--config', default='training/configs/sim_benchmark.yaml')
    p.add_argument('--root', default='artifacts/sim_benchmark')
    p.add_argument('--seeds', default='1,2,3', help='comma-separated training seeds')
    p.add_argument('--relative-per-seed', action='store_true',
                   help='train a relative model per seed (default: once, first seed)')
    p.add_argument('--skip-train', action='store_true', help='evaluate existing checkpoints')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='config override for every training, e.g. max_steps=800')
    args = p.parse_args(argv)
    load_config(args.config, args.set)  # fail now, not after training, if it is broken
    seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
    if not seeds:
        p.error('--seeds needs at least one seed')
    py = sys.executable
    t0 = time.time()
    os.makedirs(args.root, exist_ok=True)
    for name, extra in GENERATE.items():
        out = os.path.join(args.root, name)
        if not os.path.isdir(out):
            _run([py, '-m', 'avs_net_ros.datasets.generate', '--out', out] + extra + COMMON)
    print(f'data ready after {time.time() - t0:.0f} s', flush=True)

    def ckpt(seed: int, variant: str) -> str:
        if variant == 'relative' and not args.relative_per_seed:
            seed = seeds[0]
        return os.path.join(args.root, f'seed_{seed}', variant, 'best.pt')

    overrides = [x for s in args.set for x in ('--set', s)]
    t1 = time.time()
    if not args.skip_train:
        for seed in seeds:
            variants = ['v', 'av']
            if args.relative_per_seed or seed == seeds[0]:
                variants.append('relative')
            jobs = [(f'{v}_seed{seed}',
                     [py, '-m', 'training.train', '--config', args.config, '--device', 'cpu',
                      '--set', f'model.variant={v}', '--set', f'seed={seed}', '--set',
                      f'out_dir={os.path.dirname(ckpt(seed, v))}'] + overrides)
                    for v in variants]
            _train_parallel(jobs, args.root)
            print(f'seed {seed} trained after {time.time() - t1:.0f} s of training', flush=True)
    train_s = time.time() - t1
    from training.evaluate import run
    from training.seed_summary import aggregate, write_summary

    per_seed: Dict[int, dict] = {}
    for seed in seeds:
        per_seed[seed] = run(args.config, ckpt(seed, 'v'), ckpt(seed, 'av'),
                             ckpt(seed, 'relative'),
                             os.path.join(args.root, f'seed_{seed}', 'eval'))
    text = write_summary(aggregate(per_seed), os.path.join(args.root, 'eval'))
    print(text)
    names = {'v': 'avs_v', 'av': 'avs_av', 'relative': 'relative'}
    for v in names:
        _run([py, '-m', 'training.export', '--checkpoint', ckpt(seeds[0], v), '--out',
              os.path.join(args.root, 'models', f'{names[v]}.onnx')])
    print(f'benchmark done after {time.time() - t0:.0f} s (training {train_s:.0f} s)',
          flush=True)


if __name__ == '__main__':
    main()
