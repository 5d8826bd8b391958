"""Write an evaluation as files a person can read: Markdown, CSV, JSON and PNG figures.

Files: ``report.md`` (Table 1 for M_p and Table 2 per relative model in the paper's layout,
AIDE_k, reading and pairing figures, speed, and the system figures of a live replay);
``table1.csv``, ``table2.csv``, ``aide.csv``, ``per_frame.csv``; ``results.json`` (all of it,
machine-readable); ``aide.png`` (AIDE_k per 1 m band); ``panels/frame_*.png`` (chosen frames:
image, ground truth, each map and its absolute error).
"""

import csv
import json
import math
import os
from typing import Any, Dict, List, Sequence

from avs_net_ros.core.metrics import HIGHER_IS_BETTER
from avs_net_ros.eval.offline import EvalResult, Panel
from avs_net_ros.eval.scoring import ROW_BASELINE, ROW_MP_AV, ROW_MP_V, ROW_PROPOSED, ROW_RAW
import numpy as np

#: Columns of the tables, in the paper's order (log10 last).
COLUMNS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2', 'delta3', 'log10')
_HEAD = {'abs_rel': 'AbsRel', 'sq_rel': 'SqRel', 'rmse': 'RMSE', 'rmse_log': 'RMSElog',
         'delta1': 'δ1', 'delta2': 'δ2', 'delta3': 'δ3', 'log10': 'log10'}


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return '–'
    return f'{v:.3f}' if isinstance(v, float) else str(v)


def _md_table(rows: Dict[str, Dict[str, Any]], order: Sequence[str]) -> List[str]:
    head = ['Row'] + [_HEAD[c] + (' ↑' if HIGHER_IS_BETTER[c] else ' ↓') for c in COLUMNS] + [
        'frames']
    out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in order:
        if row in rows:
            r = rows[row]
            cells = [row] + [_fmt(r.get(c)) for c in COLUMNS] + [str(r.get('frames', ''))]
            out.append('| ' + ' | '.join(cells) + ' |')
    return out


def _gain(base: Dict[str, Any], new: Dict[str, Any], metric: str) -> str:
    b, n = base.get(metric), new.get(metric)
    if b is None or n is None:
        return '–'
    rel = f', {100.0 * (n - b) / abs(b):+.1f} %' if abs(b) > 1e-3 else ''
    return f'{b:.3f} → {n:.3f} ({n - b:+.3f}{rel})'


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
            lines += [f'### Table 2: relative model `{r}`', '',
                      'w/o = raw relative output; Baseline = scaled by MEDIAN(M_p V)/MEDIAN(R);'
                      ' Proposed = scaled by MEDIAN(M_p AV)/MEDIAN(R).', '']
            lines += _md_table(rows, (ROW_RAW, ROW_BASELINE, ROW_PROPOSED))
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
            lines.append(f'- {k}: {_fmt(v) if isinstance(v, float) else v}')
    return '\n'.join(lines) + '\n'


def _write_csv(path: str, header: Sequence[str], rows: List[Sequence[Any]]) -> None:
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_csvs(res: EvalResult, out_dir: str) -> List[str]:
    """Write table1.csv, table2.csv, aide.csv and per_frame.csv; return their paths."""
    paths = []
    rows = [[n, row] + [m.get(c) for c in COLUMNS] + [m.get('frames')]
            for n, t in res.table1.items() for row, m in t.items()]
    rows += [['recorded', role] + [m.get(c) for c in COLUMNS] + [m.get('frames')]
             for role, m in res.recorded.items()]
    paths.append(os.path.join(out_dir, 'table1.csv'))
    _write_csv(paths[-1], ['variant', 'row', *COLUMNS, 'frames'], rows)
    rows = [[n, r, row] + [m.get(c) for c in COLUMNS] + [m.get('frames')]
            for n, rels in res.table2.items() for r, t in rels.items()
            for row, m in t.items()]
    paths.append(os.path.join(out_dir, 'table2.csv'))
    _write_csv(paths[-1], ['variant', 'relative', 'row', *COLUMNS, 'frames'], rows)
    rows = [[n, k, e['band'], e['lower_m'], e['upper_m'], e['aide_m'], e['images']]
            for n, a in res.aide.items() for k, es in a.items() for e in es]
    paths.append(os.path.join(out_dir, 'aide.csv'))
    _write_csv(paths[-1], ['variant', 'compared', 'band', 'lower_m', 'upper_m', 'aide_m',
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
    _write_csv(paths[-1], keys, flat)
    return paths


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f'cannot write {type(o).__name__} to JSON')


def plot_aide(res: EvalResult, path: str) -> bool:
    """Plot AIDE_k per band for every variant/comparison; return False if there is none."""
    series = [(n, k, es) for n, a in res.aide.items() for k, es in a.items() if es]
    if not series:
        return False
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(series)
    for i, (n, k, es) in enumerate(series):
        x = np.array([e['band'] for e in es], dtype=float) + 0.1 + i * width
        ax.bar(x, [e['aide_m'] for e in es], width=width, align='edge',
               label=f'{n}: {k}')
    ax.axhline(0.0, color='k', lw=0.8)
    ax.set_xlabel('ground-truth depth band k (m), [k, k+1)')
    ax.set_ylabel('AIDE_k (m), > 0: audio-visual better')
    ax.set_title('AIDE_k: per-band |error| improvement of AV over visual-only')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_panel(panel: Panel, max_depth: float, path: str) -> None:
    """Save one frame: image, ground truth, each map and its absolute error."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from avs_net_ros.core.metrics import prepare_prediction

    gt = panel.ground_truth
    cols = 1 + len(panel.maps)
    fig, axes = plt.subplots(2, cols, figsize=(3.2 * cols, 5.2), squeeze=False)
    axes[0, 0].imshow(panel.rgb)
    axes[0, 0].set_title(f'frame {panel.index}')
    axes[1, 0].imshow(np.where(np.isfinite(gt) & (gt > 0), gt, np.nan), cmap='magma_r',
                      vmin=0, vmax=max_depth)
    axes[1, 0].set_title('ground truth (m)')
    for j, (name, m) in enumerate(panel.maps.items(), start=1):
        p, valid = prepare_prediction(m, gt, max_depth=max_depth)
        axes[0, j].imshow(p, cmap='magma_r', vmin=0, vmax=max_depth)
        axes[0, j].set_title(name, fontsize=9)
        err = np.where(valid, np.abs(p - gt), np.nan)
        im = axes[1, j].imshow(err, cmap='viridis', vmin=0,
                               vmax=max(1e-3, float(np.nanpercentile(err, 95))
                                        if np.isfinite(err).any() else 1.0))
        axes[1, j].set_title(f'|error| mean {np.nanmean(err):.2f} m' if np.isfinite(
            err).any() else '|error|', fontsize=9)
        fig.colorbar(im, ax=axes[1, j], fraction=0.046)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
