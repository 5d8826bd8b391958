"""Table 2 of the paper on the simulated benchmark: relative models scaled by V and by AV.

    python -m training.table2 --root artifacts/sim_benchmark --out artifacts/table2 \
        --midas-style [--relative NAME=MODEL.onnx[:DESCRIPTION.yaml] ...] [--label NAME=TEXT]

For the benchmark root of ``training.sim_benchmark`` (``seed_<N>/{v,av}/best.pt`` per seed,
the shared relative model ``seed_<first>/relative/best.pt``, the SimBV2 and SimBV1fam test
sets), every step through the package's own tools:

1. Exports each seed's V and AV and the shared supervised relative model to ONNX
   (``training.export``) under ``<out>/models/``; a file newer than its checkpoint is kept.
2. With ``--midas-style``, trains the MiDaS-style model once (``training.train``: the relative
   variant with ``model.relative_output: affine_disparity``, MiDaS's scale-and-shift-invariant
   loss, the input size and ImageNet mean/std that
   ``avs_net_ros/config/foreign/midas_style_sim.yaml`` declares, the benchmark config's data and
   steps, the first seed) into ``<out>/midas_style/`` and exports it without metadata in MiDaS's
   conventions (``training.export --foreign``). It is retrained only when the stamp (config,
   overrides, description, training code) changes. Evaluation feeds it only through its
   description.
3. Writes each test set of the config to a rosbag once (``avs_write_bag batvision``, the
   training's echo range) under ``<out>/bags/``.
4. Runs ``avs_eval_bag`` on each bag with every seed's variant (``--variant seed<N>=AV,V``)
   and every relative model, into ``<out>/eval/<test set>/`` (report.md, results.json, ...),
   scored to the test set's ``eval_max_depth``.
5. Writes mean ± sd over seeds of Table 2 (w/o scaling, scaled by V = Baseline, scaled by AV
   = Proposed, scaled by GT = oracle) per relative model and test set with
   ``training.seed_summary`` into ``<out>/table/`` (table.md, table.csv, summary.yaml, AIDE_k of
   the first relative model's Proposed over Baseline), and prints it.

Relative models: ``supervised`` (the benchmark's, depth up to scale; ``--no-supervised``
leaves it out), ``midas_style`` (``--midas-style``), and any ``--relative NAME=MODEL.onnx``
(with metadata, e.g. a self-supervised model that declares disparity output) or
``--relative NAME=MODEL.onnx:DESCRIPTION.yaml`` (a third-party file and its description,
e.g. ``avs_net_ros/config/foreign/midas_v21_small.yaml``); ``--label NAME=TEXT`` says in the
table what such a model is (default: its name).
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.foreign import read_spec_file
from avs_net_ros.eval.scoring import (ROW_BASELINE, ROW_ORACLE, ROW_PROPOSED, ROW_RAW,
                                      TABLE2_ROWS)
from avs_net_ros.tools.stamp import content_stamp

from training.config import load_config

#: The repository root, so ``python -m training...`` children run from any working directory
#: (colcon test runs from the package folder).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: The MiDaS-style model's description: its input size and normalisation are trained with.
MIDAS_STYLE_DESCRIPTION = os.path.join(REPO_ROOT, 'avs_net_ros', 'config', 'foreign',
                                       'midas_style_sim.yaml')
#: Names and labels of the relative models this command provides.
LABELS = {'supervised': 'Supervised relative (depth up to scale, trained here)',
          'midas_style': 'MiDaS-style (affine-invariant disparity, trained here)'}
#: How Table 2's rows read in the summary.
ROW_LABELS = {ROW_RAW: 'w/o scaling', ROW_BASELINE: 'scaled by V (Baseline)',
              ROW_PROPOSED: 'scaled by AV (Proposed)', ROW_ORACLE: 'scaled by GT (oracle)'}
#: Code whose change retrains the MiDaS-style model (besides config and description).
STAMPED_FILES = ('training/config.py', 'training/losses.py', 'training/train.py',
                 'training/data.py', 'training/evaluation.py', 'training/models/*.py',
                 'training/datasets/*.py')


def say(msg: str) -> None:
    """Print one progress line."""
    print(f'[table2 {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    return env


def _run(cmd: List[str], log: Optional[str] = None) -> None:
    say('+ ' + ' '.join(cmd) + (f' > {log}' if log else ''))
    if log is None:
        subprocess.run(cmd, check=True, env=_env())
        return
    with open(log, 'w') as f:
        if subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env()).returncode != 0:
            raise SystemExit(f'failed: {" ".join(cmd)}; see {log}')


def parse_relative(text: str) -> Tuple[str, str, Optional[str]]:
    """Parse ``NAME=MODEL.onnx[:DESCRIPTION.yaml]`` into (name, model, description or None)."""
    name, sep, rest = text.partition('=')
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f'--relative takes NAME=MODEL.onnx[:DESCRIPTION.yaml],'
                                         f' got {text!r}')
    model, colon, desc = rest.rpartition(':')
    if colon and desc.endswith(('.yaml', '.yml')) and model:
        return name, model, desc
    return name, rest, None


def test_sets(config_path: str, root: str) -> Dict[str, dict]:
    """Return the config's test sets with their dataset roots moved under ``root``.

    {name: {'root', 'layout', 'split', 'max_depth' (echo range and GT limit of the data),
    'eval_max_depth' (scoring range)}}.
    """
    config = load_config(config_path)
    out = {}
    for name, t in config.data.test.items():
        data_root = os.path.join(root, os.path.basename(os.path.normpath(t['root'])))
        max_depth = float(t.get('max_depth', config.model.max_depth))
        out[name] = {'root': data_root, 'layout': t.get('layout', 'bv2'),
                     'split': t.get('split', 'test'), 'max_depth': max_depth,
                     'eval_max_depth': float(t.get('eval_max_depth', max_depth))}
    if not out:
        raise SystemExit(f'{config_path} has no data.test sets')
    return out


def data_overrides(config_path: str, root: str) -> List[str]:
    """Return ``--set`` values that point the config's datasets at ``root``."""
    config = load_config(config_path)
    sets = [('data.train', config.data.train), ('data.val', config.data.val)]
    sets += [(f'data.test.{n}', t) for n, t in config.data.test.items()]
    return [f'{key}.root={os.path.join(root, os.path.basename(os.path.normpath(t["root"])))}'
            for key, t in sets if t.get('root')]


def find_seeds(root: str) -> List[int]:
    """Return the seeds under ``root`` that have both V and AV checkpoints."""
    seeds = []
    for d in glob.glob(os.path.join(root, 'seed_*')):
        m = re.fullmatch(r'seed_(\d+)', os.path.basename(d))
        if m and all(os.path.isfile(os.path.join(d, v, 'best.pt')) for v in ('v', 'av')):
            seeds.append(int(m.group(1)))
    return sorted(seeds)


def export(checkpoint: str, out: str, extra: Sequence[str] = ()) -> str:
    """Export ``checkpoint`` to ``out`` unless ``out`` is newer than it; return ``out``."""
    if not os.path.isfile(checkpoint):
        raise SystemExit(f'checkpoint not found: {checkpoint}')
    if os.path.isfile(out) and os.path.getmtime(out) >= os.path.getmtime(checkpoint):
        say(f'keeping {out} (newer than {checkpoint})')
        return out
    _run([sys.executable, '-m', 'training.export', '--checkpoint', checkpoint, '--out', out,
          *extra])
    return out


def midas_style_settings(description: str) -> List[str]:
    """Return the training overrides that make the model the description describes."""
    spec = read_spec_file(description)
    if spec.output != 'affine_disparity':
        raise SystemExit(f'{description}: the MiDaS-style model outputs affine_disparity, the '
                         f'description says {spec.output!r}')
    h, w = spec.input_size
    return ['model.variant=relative', f'model.relative_output={spec.output}',
            f'model.image_size=[{h}, {w}]', f'model.mean={list(spec.mean)}',
            f'model.std={list(spec.std)}']


def stamp(config: str, overrides: Sequence[str], description: str, repo: str = '.') -> str:
    """Return the hash of what the MiDaS-style model is made from."""
    return content_stamp(' '.join(overrides), [config, description], STAMPED_FILES, repo)


def train_midas_style(config: str, root: str, out: str, seed: int,
                      extra: Sequence[str] = ()) -> str:
    """Train the MiDaS-style model unless an up-to-date one exists; export it; return the ONNX."""
    folder = os.path.join(out, 'midas_style')
    overrides = (midas_style_settings(MIDAS_STYLE_DESCRIPTION) + data_overrides(config, root)
                 + [f'seed={seed}', f'out_dir={folder}'] + list(extra))
    want = stamp(config, overrides, MIDAS_STYLE_DESCRIPTION)
    stamp_file = os.path.join(folder, 'stamp.txt')
    best = os.path.join(folder, 'best.pt')
    have = open(stamp_file).read().strip() if os.path.isfile(stamp_file) else None
    if have == want and os.path.isfile(best):
        say(f'MiDaS-style model up to date ({best}, stamp {want})')
    else:
        say(f'training the MiDaS-style model ({"stamp changed" if have else "none yet"})')
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        cmd = [sys.executable, '-m', 'training.train', '--config', config, '--device', 'cpu']
        cmd += [x for o in overrides for x in ('--set', o)]
        t0 = time.time()
        _run(cmd)
        with open(stamp_file, 'w') as f:
            f.write(want + '\n')
        say(f'MiDaS-style model trained in {time.time() - t0:.0f} s')
    return export(best, os.path.join(out, 'models', 'midas_style.onnx'),
                  ['--foreign', MIDAS_STYLE_DESCRIPTION])


def write_bag(test: dict, path: str, quiet: bool) -> str:
    """Write a test set to a rosbag once (into a temporary name, then renamed)."""
    if os.path.isdir(path):
        say(f'keeping bag {path}')
        return path
    tmp = path + '.partial'
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    _run([sys.executable, '-m', 'avs_net_ros.tools.write_bag', 'batvision', tmp, '--root',
          test['root'], '--layout', test['layout'], '--split', test['split'], '--max-depth',
          f'{test["max_depth"]:g}'] + (['--quiet'] if quiet else []))
    os.replace(tmp, path)
    return path


def eval_command(bag: str, out: str, variants: Dict[int, Tuple[str, str]],
                 relatives: Dict[str, Tuple[str, Optional[str]]], max_depth: float,
                 workers: Optional[int] = None, max_frames: Optional[int] = None,
                 quiet: bool = False) -> List[str]:
    """Return the avs_eval_bag command for one bag."""
    cmd = [sys.executable, '-m', 'avs_net_ros.tools.eval_bag', bag, '--out', out,
           '--max-depth', f'{max_depth:g}']
    for seed, (av, v) in variants.items():
        cmd += ['--variant', f'seed{seed}={av},{v}']
    for name, (model, desc) in relatives.items():
        cmd += ['--relative', f'{name}={model}']
        if desc:
            cmd += ['--relative-params', f'{name}={desc}']
    if workers is not None:
        cmd += ['--workers', str(workers)]
    if max_frames:
        cmd += ['--max-frames', str(max_frames)]
    return cmd + (['--quiet'] if quiet else [])


def parse_label(text: str) -> Tuple[str, str]:
    """Parse ``NAME=TEXT`` into (name, text)."""
    name, sep, label = text.partition('=')
    if not sep or not name or not label.strip():
        raise argparse.ArgumentTypeError(f'--label takes NAME=TEXT, got {text!r}')
    return name, label.strip()


def model_label(relative: str, labels: Optional[Dict[str, str]] = None) -> str:
    """Return what a relative model is called in the table.

    ``labels`` (from ``--label``) name models beyond ``LABELS``; unnamed ones read as their name.
    """
    return {**LABELS, **(labels or {})}.get(relative, relative)


def row_name(relative: str, row: str, labels: Optional[Dict[str, str]] = None) -> str:
    """Return the summary's row name for a relative model's Table 2 row (``model_label``)."""
    return f'{model_label(relative, labels)}: {ROW_LABELS[row]}'


def per_seed_results(results: Dict[str, dict], seeds: Sequence[int],
                     labels: Optional[Dict[str, str]] = None) -> Dict[int, dict]:
    """Turn avs_eval_bag's results.json per test set into ``seed_summary.aggregate``'s input.

    {seed: {test set: {'metrics': {row: {metric}}, 'gain_pairs', 'aide', 'max_depth',
    'count'}}}, the rows of every relative model in TABLE2_ROWS order; AIDE_k is the first
    relative model's Proposed over Baseline. ``labels`` as for ``row_name``.
    """
    out: Dict[int, dict] = {s: {} for s in seeds}
    for name, res in results.items():
        relatives = list(res['relatives'])
        for s in seeds:
            table = res['table2'][f'seed{s}']
            metrics, pairs = {}, {}
            for r in relatives:
                missing = [row for row in TABLE2_ROWS if row not in table.get(r, {})]
                if missing:
                    raise SystemExit(f'{name}: seed {s}, relative model {r}: no {missing} rows '
                                     f'were scored')
                for row in TABLE2_ROWS:
                    metrics[row_name(r, row, labels)] = table[r][row]
                pairs[f'{model_label(r, labels)}: after scaling'] = (
                    row_name(r, ROW_BASELINE, labels), row_name(r, ROW_PROPOSED, labels))
            aide = {int(e['band']): (e['aide_m'], e['images'])
                    for e in res['aide'][f'seed{s}'].get(relatives[0], [])}
            out[s][name] = {'metrics': metrics, 'gain_pairs': pairs, 'aide': aide,
                            'max_depth': res['max_depth'], 'count': res['frames_scored']}
    return out


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    p.add_argument('--root', default='artifacts/sim_benchmark',
                   help='benchmark root of training.sim_benchmark')
    p.add_argument('--config', default='training/configs/sim_benchmark.yaml',
                   help='the benchmark config (test sets, training settings)')
    p.add_argument('--out', default='artifacts/table2', help='output folder')
    p.add_argument('--seeds', default=None,
                   help='comma-separated seeds (default: every seed_<N> with V and AV)')
    p.add_argument('--relative', action='append', default=[], type=parse_relative,
                   metavar='NAME=MODEL.onnx[:DESCRIPTION.yaml]',
                   help='a relative model to scale (repeat); a description makes it a '
                        'third-party file fed only through it')
    p.add_argument('--label', action='append', default=[], type=parse_label,
                   metavar='NAME=TEXT',
                   help="what a --relative model is, as the table's rows name it (repeat)")
    p.add_argument('--no-supervised', action='store_true',
                   help="leave out the benchmark's supervised relative model")
    p.add_argument('--midas-style', action='store_true',
                   help='train (when not up to date) and add the MiDaS-style model')
    p.add_argument('--midas-style-set', action='append', default=[], metavar='KEY=VALUE',
                   help='training config override for the MiDaS-style model, e.g. '
                        'max_steps=200')
    p.add_argument('--workers', type=int, default=None, help="avs_eval_bag's --workers")
    p.add_argument('--max-frames', type=int, default=None, help='score at most this many '
                   'frames per test set')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the steps of the module docstring; return 0."""
    args = build_parser().parse_args(argv)
    t0 = time.time()
    load0 = os.getloadavg()[0]
    seeds = ([int(s) for s in args.seeds.split(',') if s.strip()] if args.seeds
             else find_seeds(args.root))
    if not seeds:
        raise SystemExit(f'{args.root}: no seed_<N>/{{v,av}}/best.pt; run training.sim_benchmark')
    tests = test_sets(args.config, args.root)
    for name, model, desc in args.relative:  # fail before any export or training
        if name in LABELS:
            raise SystemExit(f'--relative {name}: that name is taken ({sorted(LABELS)})')
        if not os.path.isfile(model):
            raise SystemExit(f'--relative {name}: no such file {model}')
        if desc:
            read_spec_file(desc)
    labels = dict(args.label)
    unknown = sorted(set(labels) - {name for name, _, _ in args.relative})
    if unknown:
        raise SystemExit(f'--label {unknown[0]}: no --relative model of that name')
    models = os.path.join(args.out, 'models')
    variants = {s: (export(os.path.join(args.root, f'seed_{s}', 'av', 'best.pt'),
                           os.path.join(models, f'seed_{s}', 'avs_av.onnx')),
                    export(os.path.join(args.root, f'seed_{s}', 'v', 'best.pt'),
                           os.path.join(models, f'seed_{s}', 'avs_v.onnx')))
                for s in seeds}
    relatives: Dict[str, Tuple[str, Optional[str]]] = {}
    if not args.no_supervised:
        ckpt = next((c for c in (os.path.join(args.root, f'seed_{s}', 'relative', 'best.pt')
                                 for s in seeds) if os.path.isfile(c)), None)
        if ckpt is None:
            raise SystemExit(f'{args.root}: no seed_<N>/relative/best.pt (or --no-supervised)')
        relatives['supervised'] = (export(ckpt, os.path.join(models, 'relative.onnx')), None)
    if args.midas_style:
        relatives['midas_style'] = (train_midas_style(args.config, args.root, args.out,
                                                      seeds[0], args.midas_style_set),
                                    MIDAS_STYLE_DESCRIPTION)
    for name, model, desc in args.relative:
        if name in relatives:
            raise SystemExit(f'relative model name {name!r} given twice')
        relatives[name] = (model, desc)
    if not relatives:
        raise SystemExit('no relative model: drop --no-supervised, or give --midas-style or '
                         '--relative')
    results = {}
    for name, test in tests.items():
        bag = write_bag(test, os.path.join(args.out, 'bags', name), args.quiet)
        out = os.path.join(args.out, 'eval', name)
        _run(eval_command(bag, out, variants, relatives, test['eval_max_depth'], args.workers,
                          args.max_frames, args.quiet))
        with open(os.path.join(out, 'results.json')) as f:
            results[name] = json.load(f)
    from training.seed_summary import aggregate, write_summary

    text = write_summary(aggregate(per_seed_results(results, seeds, labels)),
                         os.path.join(args.out, 'table'))
    print(text)
    say(f'done in {time.time() - t0:.0f} s; load average {load0:.1f} at the start, '
        f'{os.getloadavg()[0]:.1f} at the end; table: {os.path.join(args.out, "table")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
