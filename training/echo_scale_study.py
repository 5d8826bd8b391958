"""Which echo branch learns the scale, side by side: same data, same budget, several seeds.

    python -m training.echo_scale_study [--root artifacts/echo_scale_study] [--seeds 1,2,3]

Generates (once) the demo's training family (``avs_net_ros/config/sim/demo_train.yaml``: 480
train / 40 val / 80 test frames, 2 per room), the three demo evaluation rooms
(``avs_net_ros/config/sim/demo_rooms``,
16 frames each) and a set with few rooms (bv2_like, 16 rooms of 10 frames), then
trains every setting below with ``training/configs/demo.yaml`` and the overrides listed, one
run per seed, two single-thread processes at a time, and scores the median-scale error
``|ln(median(pred) / median(gt))|`` (``training.scale_diagnosis``) on the test split (mean over
its 40 rooms) and per evaluation room. The non-learned estimators bound what the echo carries.
Writes ``<root>/summary.md`` and ``<root>/runs.csv``.
"""

import argparse
import csv
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

#: name -> (data set, steps, overrides); ``demo`` is the setting the demo trains.
SETTINGS: Dict[str, Tuple[str, int, List[str]]] = {
    'V (no echo)': ('train', 200, ['model.variant=v']),
    'AV, paper branch (ResNet, no scale loss)': ('train', 200, ['model.echo_scale=none']),
    'AV, ResNet + echo scale loss (demo)': ('train', 200, ['model.echo_scale=aux']),
    'AV, time-of-flight + anchoring': ('train', 200, ['model.echo_encoder=tof',
                                                      'model.echo_scale=anchor']),
    'AV, paper branch, 60 steps': ('train', 60, ['model.echo_scale=none']),
    'AV, ResNet + echo scale loss, 60 steps': ('train', 60, ['model.echo_scale=aux']),
    'V, few rooms (16 rooms x 10 frames)': ('few_rooms', 200, ['model.variant=v']),
    'AV paper branch, few rooms': ('few_rooms', 200, ['model.echo_scale=none']),
}
ROOMS = ('office', 'corridor', 'hall')
_GEN = ['--layout', 'bv2', '--width', '160', '--height', '96', '--workers', '2', '--quiet']
DATA = {
    'train': ['--family-config', 'avs_net_ros/config/sim/demo_train.yaml', '--train', '480',
              '--val', '40', '--test', '80', '--seed', '5', '--frames', '2'],
    'few_rooms': ['--family', 'bv2_like', '--train', '160', '--val', '20', '--test', '0',
                  '--seed', '11', '--frames', '10'],
    **{room: ['--family-config', f'avs_net_ros/config/sim/demo_rooms/{room}.yaml', '--train',
              '0', '--val', '0', '--test', '16', '--seed', str(90 + i), '--frames', '2']
       for i, room in enumerate(ROOMS)},
}


def _slug(name: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in name.lower()).strip('_')[:48]


def _train(jobs: List[Tuple[str, List[str]]]) -> None:
    procs = []
    for log_path, cmd in jobs:
        log = open(log_path, 'w')
        procs.append((log_path, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT),
                      log))
    for log_path, proc, log in procs:
        if proc.wait() != 0:
            raise SystemExit(f'training failed; see {log_path}')
        log.close()


def _score(checkpoint: str, root: str, split: str = 'test') -> Dict[str, float]:
    from training.data import build_dataset
    from training.export import load_checkpoint_model
    from training.scale_diagnosis import model_scale_errors, per_room

    model, config, _ = load_checkpoint_model(checkpoint)
    ds = build_dataset({'root': root, 'layout': 'bv2', 'split': split, 'spec_size': [32, 64],
                        'max_depth': config.max_depth, 'depth_size': [96, 160]},
                       config.image_size, root)
    recs = model_scale_errors(model, ds, config.max_depth, progress=False)
    out = {'scale_error': float(np.mean([r['scale_error'] for r in per_room(recs).values()]))}
    if 'echo_error' in recs[0]:
        out['echo_error'] = float(np.mean([r['echo_error'] for r in recs]))
    return out


def main(argv: Optional[list] = None) -> None:
    """Run the study (see the module docstring)."""
    import torch

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--root', default='artifacts/echo_scale_study')
    p.add_argument('--seeds', default='1,2,3')
    p.add_argument('--only', default='', help='comma-separated setting numbers (1-based)')
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(',')]
    names = list(SETTINGS)
    if args.only:
        names = [names[int(i) - 1] for i in args.only.split(',')]
    py = sys.executable
    t0 = time.time()
    for key, extra in DATA.items():
        out = os.path.join(args.root, 'data', key)
        if not os.path.isdir(out):
            subprocess.run([py, '-m', 'avs_net_ros.datasets.generate', '--out', out]
                           + extra + _GEN, check=True)
    runs = [(n, s) for n in names for s in (seeds if 'few rooms' not in n else seeds[:1])]
    jobs = []
    for name, seed in runs:
        data, steps, sets = SETTINGS[name]
        out = os.path.join(args.root, 'runs', f'{_slug(name)}_s{seed}')
        if os.path.isfile(os.path.join(out, 'best.pt')):
            continue
        root = os.path.join(args.root, 'data', data)
        cmd = [py, '-m', 'training.train', '--config', 'training/configs/demo.yaml',
               '--device', 'cpu', '--set', f'out_dir={out}', '--set', f'data.train.root={root}',
               '--set', f'data.val.root={root}', '--set', f'max_steps={steps}', '--set',
               'epochs=100', '--set', f'seed={seed}']
        cmd += [x for s in sets for x in ('--set', s)]
        jobs.append((out + '.log', cmd))
    os.makedirs(os.path.join(args.root, 'runs'), exist_ok=True)
    for i in range(0, len(jobs), 2):
        print(f'training {i + 1}-{min(i + 2, len(jobs))} of {len(jobs)} '
              f'({time.time() - t0:.0f} s)', flush=True)
        _train(jobs[i:i + 2])
    torch.set_num_threads(2)
    rows = []
    for name, seed in runs:
        ckpt = os.path.join(args.root, 'runs', f'{_slug(name)}_s{seed}', 'best.pt')
        rec = {'setting': name, 'seed': seed}
        test = _score(ckpt, os.path.join(args.root, 'data', 'train'))
        rec['test'] = test['scale_error']
        rec['echo_alone'] = test.get('echo_error', float('nan'))
        for room in ROOMS:
            rec[room] = _score(ckpt, os.path.join(args.root, 'data', room))['scale_error']
        rows.append(rec)
        print(rec, flush=True)
    with open(os.path.join(args.root, 'runs.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = summary(rows, os.path.join(args.root, 'data', 'train'))
    with open(os.path.join(args.root, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print(f'study done in {time.time() - t0:.0f} s')


def summary(rows: List[Dict[str, object]], train_root: str) -> List[str]:
    """Return the Markdown table: mean ± sd over seeds per setting, and the echo bounds."""
    from training.data import build_dataset
    from training.scale_diagnosis import non_learned_scale_errors, per_room

    cols = ('test', 'office', 'corridor', 'hall', 'echo_alone')
    lines = ['| setting | seeds | test rooms | office | corridor | hall | echo branch alone |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for name in dict.fromkeys(r['setting'] for r in rows):
        rs = [r for r in rows if r['setting'] == name]
        cells = []
        for c in cols:
            v = np.array([float(r[c]) for r in rs])
            if np.all(np.isnan(v)):
                cells.append('–')
            else:
                sd = f' ± {v.std(ddof=1):.3f}' if len(v) > 1 else ''
                cells.append(f'{v.mean():.3f}{sd}')
        lines.append(f'| {name} | {len(rs)} | ' + ' | '.join(cells) + ' |')
    base = {'root': train_root, 'layout': 'bv2', 'spec_size': [32, 64], 'max_depth': 30.0,
            'depth_size': [48, 80]}
    train = build_dataset(dict(base, split='train'), (32, 32), 'train')
    test = build_dataset(dict(base, split='test'), (32, 32), 'test')
    for name, recs in non_learned_scale_errors(train, test, progress=False).items():
        err = np.mean([v['scale_error'] for v in per_room(recs).values()])
        lines.append(f'| no network: {name} | – | {err:.3f} | | | | |')
    return lines


if __name__ == '__main__':
    main()
