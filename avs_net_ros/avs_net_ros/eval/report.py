"""Write an evaluation as files a person can read: Markdown, CSV, JSON and PNG figures.

Files: ``report.md`` (Table 1 for M_p and Table 2 per relative model in the paper's layout,
AIDE_k, reading and pairing figures, speed, and the system figures of a live replay);
``table1.csv``, ``table2.csv``, ``aide.csv``, ``per_frame.csv``; ``results.json`` (all of it,
machine-readable); ``aide.png`` (AIDE_k per 1 m band); ``panels/frame_*.png`` (chosen frames:
image, ground truth, each map and its absolute error).
"""

import json
import os
from typing import Any, Dict, List, Sequence

from avs_net_ros.eval.figures import plot_aide_bars, plot_depth_rows
from avs_net_ros.eval.offline import EvalResult, Panel
from avs_net_ros.eval.scoring import (ROW_BASELINE, ROW_MP_AV, ROW_MP_V, ROW_PROPOSED,
                                      TABLE2_ROWS)
from avs_net_ros.eval.tables import change, fmt, metric_rows, METRICS, write_csv
import numpy as np

#: Columns of the tables, in the paper's order (log10 last).
COLUMNS = METRICS + ('log10',)


def _md_table(rows: Dict[str, Dict[str, Any]], order: Sequence[str]) -> List[str]:
    return metric_rows(rows, order, COLUMNS, first='Row')


def _gain(base: Dict[str, Any], new: Dict[str, Any], metric: str) -> str:
    return change(base.get(metric), new.get(metric))


def markdown(res: EvalResult, title: str = 'Depth evaluation') -> str:
    """Return the report as Markdown."""
    bag = res.bag
    lines = [f'# {title}', '', f'Bag: `{bag.path}`  ', f'Frames scored: {res.frames_scored}'
             f' (depth range {res.min_depth:g} < gt ≤ {res.max_depth:g} m; metrics at '
             f'ground-truth resolution, mean of per-frame figures)', '']
    if bag.damage:
        lines += [f'**The bag is damaged**: {bag.damage}. The frames read before the damage '
                  f'were scored.', '']
    if res.recorded:
        lines += ['## Recorded outputs', '', 'Predictions read from the bag, paired with the '
                  'ground truth of the same stamp.', '']
        lines += _md_table(res.recorded, list(res.recorded)) + ['']
    for var in res.variants:
        n = var['name']
        lines += [f'## Variant `{n}`', '', f'AV model: `{var["av"]}`  ',
                  f'V model: `{var["v"] or "none (no Baseline rows)"}`', '',
                  '### Table 1: first-stage pseudo-dense depth M_p', '']
        t1 = res.table1.get(n, {})
        lines += _md_table(t1, (ROW_MP_V, ROW_MP_AV))
        if ROW_MP_V in t1 and ROW_MP_AV in t1:
            lines += ['', f'δ1 change AV vs V: {_gain(t1[ROW_MP_V], t1[ROW_MP_AV], "delta1")}']
        lines.append('')
        for r, rows in res.table2.get(n, {}).items():
            how = res.relative_scaling.get(r, {})
            method = how.get('scale_method', 'median')
            lines += [f'### Table 2: relative model `{r}`', '']
            if how:
                lines += [f'Output {how["output"]}, fed from its {how["fed"]}; scale method '
                          f'{method}.', '']
            lines += (['w/o = raw relative output; Baseline = scaled by MEDIAN(M_p V)/'
                       'MEDIAN(R); Proposed = scaled by MEDIAN(M_p AV)/MEDIAN(R); GT oracle = '
                       'scaled by MEDIAN(GT)/MEDIAN(R) (upper bound).', '']
                      if method == 'median' else
                      [f'w/o = raw relative output; Baseline = fitted to M_p V by {method}; '
                       f'Proposed = fitted to M_p AV by {method}; GT oracle = fitted to the '
                       f'ground truth by {method} (upper bound).', ''])
            lines += _md_table(rows, TABLE2_ROWS)
            if ROW_BASELINE in rows and ROW_PROPOSED in rows:
                lines += ['', 'δ1 change Proposed vs Baseline: '
                          + _gain(rows[ROW_BASELINE], rows[ROW_PROPOSED], 'delta1')]
            lines.append('')
        aide = res.aide.get(n, {})
        if aide:
            lines += ['### AIDE_k (m): mean per-image |error| improvement of AV over V, per 1 m '
                      'band [k, k+1)', '']
            keys = list(aide)
            bands = sorted({b['band'] for k in keys for b in aide[k]})
            lines.append('| band (m) | ' + ' | '.join(
                'M_p' if k == 'M_p' else f'{k} (Proposed vs Baseline)' for k in keys) + ' |')
            lines.append('|' + '---|' * (len(keys) + 1))
            for b in bands:
                cells = []
                for k in keys:
                    hit = [e for e in aide[k] if e['band'] == b]
                    cells.append(f'{hit[0]["aide_m"]:+.3f} ({hit[0]["images"]})' if hit
                                 else '–')
                lines.append(f'| [{b}, {b + 1}) | ' + ' | '.join(cells) + ' |')
            lines += ['', 'Positive = the audio-visual prediction is closer; (n) = images '
                      'with pixels in the band.', '']
    lines += ['## Reading and pairing', '']
    p = bag.pairing.to_dict()
    lines += ['- topics: ' + ', '.join(f'{k} = `{v}`' for k, v in bag.topics.items()),
              '- messages read: ' + ', '.join(
                  f'{k} {v}' for k, v in bag.message_counts.items()),
              f'- frames paired: {p["paired"]}; pairing failures: {p["failures"]} '
              f'(missing: {p["unpaired_key"] or "none"}); unused partner messages: '
              f'{p["unused"] or "none"}; duplicate stamps: {p["duplicate_key"]}; largest stamp '
              f'offset: {p["max_offset_s"] * 1e3:.3f} ms']
    if res.rejected:
        lines.append('- frames the pipeline rejected: ' + '; '.join(
            f'{k} ({v})' for k, v in res.rejected.items()))
    if res.timing:
        t = res.timing
        lines += ['', '## Speed', '',
                  f'- evaluation: {t["frames_per_s"]:.1f} frames/s ({t["wall_s"]:.2f} s wall)',
                  ]
        if 'models_s' in t:
            lines.append(f'- {t["workers"]} frame(s) at a time, {t["intra_op_threads"]} ONNX '
                         f'Runtime thread(s) per model run; thread time in the models '
                         f'{t["models_s"]:.2f} s, in scoring {t["scoring_s"]:.2f} s')
    if res.system:
        lines += ['', '## System figures (live replay)', '']
        for k, v in res.system.items():
            lines.append(f'- {k}: {fmt(v)}')
    return '\n'.join(lines) + '\n'


def write_csvs(res: EvalResult, out_dir: str) -> List[str]:
    """Write table1.csv, table2.csv, aide.csv and per_frame.csv; return their paths."""
    paths = []
    rows = [[n, row] + [m.get(c) for c in COLUMNS] + [m.get('frames')]
            for n, t in res.table1.items() for row, m in t.items()]
    rows += [['recorded', role] + [m.get(c) for c in COLUMNS] + [m.get('frames')]
             for role, m in res.recorded.items()]
    paths.append(os.path.join(out_dir, 'table1.csv'))
    write_csv(paths[-1], ['variant', 'row', *COLUMNS, 'frames'], rows)
    rows = [[n, r, row] + [m.get(c) for c in COLUMNS] + [m.get('frames')]
            for n, rels in res.table2.items() for r, t in rels.items()
            for row, m in t.items()]
    paths.append(os.path.join(out_dir, 'table2.csv'))
    write_csv(paths[-1], ['variant', 'relative', 'row', *COLUMNS, 'frames'], rows)
    rows = [[n, k, e['band'], e['lower_m'], e['upper_m'], e['aide_m'], e['images']]
            for n, a in res.aide.items() for k, es in a.items() for e in es]
    paths.append(os.path.join(out_dir, 'aide.csv'))
    write_csv(paths[-1], ['variant', 'compared', 'band', 'lower_m', 'upper_m', 'aide_m',
                          'images'], rows)
    keys: List[str] = []
    for rec in res.per_frame:
        for k in rec:
            if k not in keys:
                keys.append(k)
    flat = []
    for rec in res.per_frame:
        row = []
        for k in keys:
            v = rec.get(k)
            row.append(json.dumps(v) if isinstance(v, dict) else v)
        flat.append(row)
    paths.append(os.path.join(out_dir, 'per_frame.csv'))
    write_csv(paths[-1], keys, flat)
    return paths


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f'cannot write {type(o).__name__} to JSON')


def plot_aide(res: EvalResult, path: str) -> bool:
    """Plot AIDE_k per band for every variant/comparison; return False if there is none."""
    series = {f'{n}: {k}': {e['band']: e['aide_m'] for e in es}
              for n, a in res.aide.items() for k, es in a.items() if es}
    return plot_aide_bars(series, 'AIDE_k: per-band |error| improvement of AV over '
                          'visual-only', path)


def plot_panel(panel: Panel, max_depth: float, path: str) -> None:
    """Save one frame: camera, ground truth, each map and its absolute error."""
    plot_depth_rows([{'rgb': panel.rgb, 'gt': panel.ground_truth, 'maps': panel.maps,
                      'label': f'frame {panel.index}'}], max_depth, path)


def write_report(res: EvalResult, out_dir: str, title: str = 'Depth evaluation'
                 ) -> Dict[str, Any]:
    """Write every report file into ``out_dir`` (created); return {kind: path(s)}."""
    os.makedirs(out_dir, exist_ok=True)
    files: Dict[str, Any] = {}
    files['markdown'] = os.path.join(out_dir, 'report.md')
    with open(files['markdown'], 'w') as f:
        f.write(markdown(res, title))
    files['csv'] = write_csvs(res, out_dir)
    files['json'] = os.path.join(out_dir, 'results.json')
    with open(files['json'], 'w') as f:
        json.dump(res.to_dict(), f, indent=1, default=_json_default)
    aide_png = os.path.join(out_dir, 'aide.png')
    if plot_aide(res, aide_png):
        files['aide_png'] = aide_png
    if res.panels:
        os.makedirs(os.path.join(out_dir, 'panels'), exist_ok=True)
        files['panels'] = []
        for p in res.panels:
            path = os.path.join(out_dir, 'panels', f'frame_{p.index:05d}.png')
            plot_panel(p, res.max_depth, path)
            files['panels'].append(path)
    return files
