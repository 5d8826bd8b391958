"""Mean and standard deviation over training seeds of the Table 1 / Table 2 figures and AIDE_k.

Input: one ``training.evaluate.run`` result per seed ({test set: {'metrics', 'aide',
'gain_pairs', 'max_depth', 'count'}}). Output: ``table.md`` / ``table.csv`` (every metric as
mean ± sd), the AV-over-V gains per seed and as mean ± sd, ``aide_<set>.csv`` and
``aide_<set>.png`` (mean AIDE_k per band with the seeds' sd as error bars), ``summary.yaml``.
The sd is the sample standard deviation (ddof 1) over seeds.
"""

import os
from typing import Dict, List, Mapping, Sequence

from avs_net_ros.eval.figures import plot_aide_bars
from avs_net_ros.eval.tables import grid, write_csv
import numpy as np

from training.evaluate import COLUMNS, gains, ROW_NAMES
import yaml


def _mean_sd(values: Sequence[float]) -> tuple:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def aggregate(per_seed: Mapping[int, Mapping[str, dict]]) -> Dict[str, dict]:
    """Return the per-seed results' mean and sd, per test set.

    {test set: {'metrics': {row: {metric: (mean, sd)}}, 'gains': {label: {gain: (mean, sd,
    [per seed])}}, 'aide': {k: (mean, sd, seeds with the band)}, 'max_depth', 'count',
    'seeds'}}.
    """
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    out = {}
    for name, res in first.items():
        rows = list(res['metrics'])
        metrics = {row: {k: _mean_sd([per_seed[s][name]['metrics'][row][k] for s in seeds])
                         for k, _ in COLUMNS} for row in rows}
        gain_stats = {}
        for label, (v, av) in res['gain_pairs'].items():
            per = [gains(per_seed[s][name]['metrics'], v, av) for s in seeds]
            gain_stats[label] = {g: (*_mean_sd([p[g] for p in per]), [p[g] for p in per])
                                 for g in per[0]}
        bands = sorted({k for s in seeds for k in per_seed[s][name]['aide']})
        aide = {}
        for k in bands:
            vals = [per_seed[s][name]['aide'][k][0] for s in seeds
                    if k in per_seed[s][name]['aide']]
            aide[k] = (*_mean_sd(vals), len(vals))
        out[name] = {'metrics': metrics, 'gains': gain_stats, 'aide': aide,
                     'max_depth': res['max_depth'], 'count': res['count'], 'seeds': seeds}
    return out


def write_summary(agg: Mapping[str, dict], out_dir: str) -> str:
    """Write table.md, table.csv, aide_<set>.csv/png and summary.yaml; return the Markdown."""
    os.makedirs(out_dir, exist_ok=True)
    lines: List[str] = []
    rows_csv = []
    summary = {}
    for name, res in agg.items():
        seeds = res['seeds']
        lines.append(f'#### {name} (max depth {res["max_depth"]:g} m, {res["count"]} images, '
                     f'mean ± sd over seeds {", ".join(map(str, seeds))})\n')
        body = [[ROW_NAMES.get(row, row)] + [f'{m[k][0]:.3f} ± {m[k][1]:.3f}' for k, _ in COLUMNS]
                for row, m in res['metrics'].items()]
        lines += grid(['Method'] + [c for _, c in COLUMNS], body)
        rows_csv += [[name, row] + [f'{m[k][i]:.6f}' for k, _ in COLUMNS for i in (0, 1)]
                     for row, m in res['metrics'].items()]
        lines.append('')
        summary[name] = {}
        for label, g in res['gains'].items():
            d1, rel = g['delta1_gain_pct'], g['abs_rel_gain_pct']
            per = ', '.join(f'{x:+.1f}' for x in d1[2])
            lines.append(f'{label}: δ1 {d1[0]:+.1f} ± {d1[1]:.1f} % (seeds: {per}), AbsRel '
                         f'{rel[0]:+.1f} ± {rel[1]:.1f} % (positive = AV better)\n')
            summary[name][label] = {'delta1_gain_pct_mean': d1[0], 'delta1_gain_pct_sd': d1[1],
                                    'delta1_gain_pct_per_seed': d1[2],
                                    'abs_rel_gain_pct_mean': rel[0],
                                    'abs_rel_gain_pct_sd': rel[1]}
        write_aide_band_plot(res['aide'], name, out_dir, seeds)
    text = '\n'.join(lines)
    with open(os.path.join(out_dir, 'table.md'), 'w') as f:
        f.write(text + '\n')
    write_csv(os.path.join(out_dir, 'table.csv'),
              ['test_set', 'method'] + [f'{k}_{s}' for k, _ in COLUMNS for s in ('mean', 'sd')],
              rows_csv)
    with open(os.path.join(out_dir, 'summary.yaml'), 'w') as f:
        yaml.safe_dump(summary, f, sort_keys=False)
    return text


def write_aide_band_plot(aide: Mapping[int, tuple], name: str, out_dir: str,
                         seeds: Sequence[int]) -> None:
    """Write mean AIDE_k per 1 m band with the seeds' sd as CSV and as a bar plot."""
    write_csv(os.path.join(out_dir, f'aide_{name}.csv'),
              ['band_lo_m', 'band_hi_m', 'aide_mean_m', 'aide_sd_m', 'seeds'],
              [[k, k + 1, f'{m:.6f}', f'{sd:.6f}', n] for k, (m, sd, n) in aide.items()])
    plot_aide_bars({'AV over V': {k: v[0] for k, v in aide.items()}},
                   f'{name}: |V - GT| - |AV - GT| per band, mean ± sd over {len(seeds)} seeds',
                   os.path.join(out_dir, f'aide_{name}.png'),
                   errors={'AV over V': {k: v[1] for k, v in aide.items()}})
