"""Evaluate V, AV (and the relative model scaled by each) in the paper's Table 1 layout.

    python -m training.evaluate --config training/configs/sim_benchmark.yaml \
        --v artifacts/sim_benchmark/v/best.pt --av artifacts/sim_benchmark/av/best.pt \
        --relative artifacts/sim_benchmark/relative/best.pt --out artifacts/sim_benchmark/eval

For every test set of the config (in-distribution, zero-shot, ...): AbsRel, SqRel, RMSE,
RMSE log, delta1-3 at the ground-truth resolution with the set's mask (0 < gt <= max depth),
all from ``avs_net_ros.core.metrics``. Writes ``table.md`` and ``table.csv``, ``aide_<set>.csv``
and ``aide_<set>.png`` (AIDE_k per 1 m band, AV over V), ``panels_<set>.png`` (RGB | GT | V |
AV | |AV - GT|) and ``summary.yaml`` (the delta1 / AbsRel gains of AV over V).
"""

import argparse
import os
from typing import Dict, List, Optional

from avs_net_ros.eval.figures import plot_aide_bars, plot_depth_rows
from avs_net_ros.eval.tables import gain_pct, grid, LABELS, METRICS, write_csv
import torch
from torch.utils.data import DataLoader

from training.config import load_config
from training.data import build_test_sets, collate_eval
from training.evaluation import evaluate
from training.export import load_checkpoint_model
import yaml

COLUMNS = [(m, LABELS[m]) for m in METRICS]
ROW_NAMES = {'V': 'V (M_p, visual only)', 'AV': 'AV (M_p, audio-visual)',
             'relative x V': 'relative × median scale from V',
             'relative x AV': 'relative × median scale from AV',
             'relative x GT': 'relative × median scale from GT (oracle)'}


def gains(metrics: Dict[str, Dict[str, float]], v: str = 'V',
          av: str = 'AV') -> Dict[str, float]:
    """Return the relative delta1 / AbsRel gains of ``av`` over ``v`` (positive = better)."""
    return gain_pct(metrics[v], metrics[av])


def write_tables(results: Dict[str, dict], out_dir: str) -> str:
    """Write table.md and table.csv; return the Markdown text."""
    lines: List[str] = []
    rows_csv = []
    for set_name, res in results.items():
        lines.append(f'### {set_name} (max depth {res["max_depth"]:g} m, '
                     f'{res["count"]} images)\n')
        body = [[ROW_NAMES.get(row, row)] + [f'{m[k]:.3f}' for k, _ in COLUMNS]
                for row, m in res['metrics'].items()]
        lines += grid(['Method'] + [c for _, c in COLUMNS], body)
        rows_csv += [[set_name, row] + [f'{m[k]:.6f}' for k, _ in COLUMNS]
                     for row, m in res['metrics'].items()]
        for label, (v, av) in res['gain_pairs'].items():
            g = gains(res['metrics'], v, av)
            lines.append(f'\n{label}: δ1 {g["delta1_gain_pct"]:+.1f} %, AbsRel '
                         f'{g["abs_rel_gain_pct"]:+.1f} % (positive = AV better)')
        lines.append('')
    text = '\n'.join(lines)
    with open(os.path.join(out_dir, 'table.md'), 'w') as f:
        f.write(text + '\n')
    write_csv(os.path.join(out_dir, 'table.csv'), ['test_set', 'method'] + [k for k, _ in COLUMNS],
              rows_csv)
    return text


def write_aide(aide: Dict[int, tuple], name: str, out_dir: str) -> None:
    """Write AIDE_k per 1 m band as CSV and as a bar plot."""
    write_csv(os.path.join(out_dir, f'aide_{name}.csv'),
              ['band_lo_m', 'band_hi_m', 'aide_m', 'images'],
              [[k, k + 1, f'{v:.6f}', n] for k, (v, n) in aide.items()])
    plot_aide_bars({'AV over V': {k: v for k, (v, _) in aide.items()}},
                   f'{name}: mean |V - GT| - |AV - GT| per band (positive = AV better)',
                   os.path.join(out_dir, f'aide_{name}.png'))


def write_panels(samples: List[dict], name: str, out_dir: str, max_depth: float) -> None:
    """Write qualitative panels: camera | GT | V | AV | |errors|, one row per sample."""
    if not samples:
        return
    rows = [{'rgb': s['image'], 'gt': s['gt'], 'maps': {'V': s['V'], 'AV': s['AV']}}
            for s in samples]
    plot_depth_rows(rows, max_depth, os.path.join(out_dir, f'panels_{name}.png'), title=name)


def run(config_path: str, v: str, av: str, relative: Optional[str], out_dir: str,
        panels: int = 4, overrides: Optional[list] = None) -> Dict[str, dict]:
    """Evaluate the checkpoints on every test set of the config; write all outputs."""
    config = load_config(config_path, overrides)
    if config.threads:
        torch.set_num_threads(config.threads)
    os.makedirs(out_dir, exist_ok=True)
    device = torch.device('cpu')
    models = {'V': load_checkpoint_model(v)[0], 'AV': load_checkpoint_model(av)[0]}
    rel = load_checkpoint_model(relative)[0] if relative else None
    results = {}
    for name, (ds, max_depth) in build_test_sets(config).items():
        loader = DataLoader(ds, batch_size=8, collate_fn=collate_eval)
        res = evaluate(models, loader, max_depth, device, relative=rel, aide_pair=('V', 'AV'),
                       keep=panels)
        pairs = {'M_p (first stage)': ('V', 'AV')}
        if rel is not None:
            pairs['after scaling'] = ('relative x V', 'relative x AV')
        results[name] = {'metrics': res['metrics'], 'max_depth': max_depth, 'count': len(ds),
                         'gain_pairs': pairs, 'aide': res['aide'], 'skipped': res['skipped']}
        write_aide(res['aide'], name, out_dir)
        write_panels(res['samples'], name, out_dir, max_depth)
    text = write_tables(results, out_dir)
    summary = {name: {label: gains(r['metrics'], *pair) for label, pair in r['gain_pairs'].items()}
               for name, r in results.items()}
    with open(os.path.join(out_dir, 'summary.yaml'), 'w') as f:
        yaml.safe_dump(summary, f, sort_keys=False)
    print(text)
    return results


def main(argv: Optional[list] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description='Evaluate V / AV / relative checkpoints.')
    p.add_argument('--config', required=True, help='config with data.test sets')
    p.add_argument('--v', required=True, help='visual-only checkpoint')
    p.add_argument('--av', required=True, help='audio-visual checkpoint')
    p.add_argument('--relative', default=None, help='relative-depth checkpoint')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--panels', type=int, default=4, help='qualitative rows per test set')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
    args = p.parse_args(argv)
    run(args.config, args.v, args.av, args.relative, args.out, args.panels, args.set)


if __name__ == '__main__':
    main()
