"""The demo's scoring and report: per room and overall, V against AV, and a plain verdict.

Every figure comes from ``avs_net_ros.core.metrics`` (through ``eval.scoring.RecordedScorer``)
on the published ``depth/metric`` and ``depth/pseudo_dense`` against the simulated ground truth
of the same poses. The scale error of a frame is ``|ln(median(pred) / median(gt))|``
(``core.metrics.median_scale_error``): what the echoes are there to fix.
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.metrics import median_log_ratio
from avs_net_ros.eval.figures import plot_depth_rows
from avs_net_ros.eval.scoring import RecordedScorer
from avs_net_ros.eval.tables import change, fmt, grid, metric_rows, METRICS, write_csv
import numpy as np

ROW_AV = 'with echoes (AV)'
ROW_V = 'without echoes (V)'
ROW_MP_AV = 'M_p with echoes (AV)'
ROW_MP_V = 'M_p without echoes (V)'
COLUMNS = METRICS


def score_rooms(runs: Sequence[Tuple[str, Any, Any]], max_depth: float,
                min_depth: float = 1e-3) -> Dict[str, Any]:
    """Score (room, with-echo RunRecord, without-echo RunRecord) runs on their common poses.

    Returns {'rows': metrics over all rooms' frames, 'rooms': {room: {'rows', 'scale_error'
    {row: mean over frames of |ln(median(pred) / median(gt))|}, 'scale_ratio' {row: geometric
    mean over frames of median(pred) / median(gt): > 1 too far, < 1 too near}, 'gt_median' (m),
    'frames'}}, 'per_frame', 'frames' (maps for the panel), 'poses' {room: counts},
    'max_depth'}.

    Raises:
        RuntimeError: a room's two runs have no pose in common.

    """
    overall = RecordedScorer(max_depth, min_depth)
    rooms: Dict[str, Dict[str, Any]] = {}
    frames, per_frame, poses = [], [], {}
    for room, with_echo, without_echo in runs:
        av = with_echo.by_pose(need_echo=True)
        v = without_echo.by_pose(need_echo=False)
        common = [k for k in av if k in v]   # trajectory order of the AV run
        if not common:
            raise RuntimeError(f'the two runs in {room} have no pose in common')
        scorer = RecordedScorer(max_depth, min_depth)
        errors: Dict[str, List[float]] = {}
        gt_medians = []
        for k in common:
            a, b = av[k], v[k]
            maps = {ROW_AV: a['metric'], ROW_V: b['metric'], ROW_MP_AV: a['pseudo_dense']}
            if 'pseudo_dense' in b:
                maps[ROW_MP_V] = b['pseudo_dense']
            scorer.add(a['stamp'], maps, a['gt'])
            overall.add(a['stamp'], maps, a['gt'])
            per_frame.append(dict(scorer.per_frame[-1], room=room))
            for row, pred in maps.items():
                errors.setdefault(row, []).append(
                    median_log_ratio(pred, a['gt'], max_depth=max_depth, min_depth=min_depth))
            gt = a['gt'][np.isfinite(a['gt']) & (a['gt'] > 0) & (a['gt'] <= max_depth)]
            gt_medians.append(float(np.median(gt)))
            frames.append({'rgb': a['rgb'], 'gt': a['gt'], 'with': a['metric'],
                           'without': b['metric'], 'room': room})
        rooms[room] = {'rows': scorer.result(),
                       'scale_error': {r: float(np.mean(np.abs(e))) for r, e in errors.items()},
                       'scale_ratio': {r: float(np.exp(np.mean(e))) for r, e in errors.items()},
                       # Per view, not only on average: how often the echo brought the scale
                       # closer than the visual-only guess.
                       'views_av_closer': int(np.sum(np.abs(errors[ROW_AV])
                                                     < np.abs(errors[ROW_V]))),
                       'gt_median': float(np.mean(gt_medians)), 'frames': len(common)}
        poses[room] = {'with_echoes': len(av), 'without_echoes': len(v), 'common': len(common)}
    return {'rows': overall.result(), 'rooms': rooms, 'per_frame': per_frame,
            'frames': frames, 'poses': poses, 'max_depth': max_depth}


def verdict(score: Dict[str, Any]) -> Tuple[bool, str]:
    """Return (echoes helped, one plain sentence) from the overall rows and the rooms.

    Echoes helped if the metric depth with echoes beats the one without on δ1 and AbsRel over
    all frames and on the scale error averaged over the rooms. Rooms where the scale error
    with echoes is not lower are named either way.
    """
    rows, rooms = score['rows'], score['rooms']
    a, v = rows[ROW_AV], rows[ROW_V]
    err_av = float(np.mean([s['scale_error'][ROW_AV] for s in rooms.values()]))
    err_v = float(np.mean([s['scale_error'][ROW_V] for s in rooms.values()]))
    worse = [r for r, s in rooms.items() if s['scale_error'][ROW_AV] >= s['scale_error'][ROW_V]]
    figures = (f'δ1 {v["delta1"]:.3f} → {a["delta1"]:.3f}, AbsRel {v["abs_rel"]:.3f} → '
               f'{a["abs_rel"]:.3f}, mean scale error {err_v:.3f} → {err_av:.3f}')
    if a['delta1'] > v['delta1'] and a['abs_rel'] < v['abs_rel'] and err_av < err_v:
        if not worse:
            return True, (f'VERDICT: echoes fixed the scale in all {len(rooms)} rooms '
                          f'(without → with echoes: {figures}).')
        return True, (f'VERDICT: echoes helped overall ({figures}), but NOT in '
                      f'{", ".join(worse)}: there the scale error with echoes is not lower '
                      f'(see the README, "When echoes do not help").')
    return False, (f'VERDICT: echoes did NOT help here (without → with echoes: {figures}). The '
                   f'AV model has not learned to read the scale from the echoes (see the '
                   f'README, "When echoes do not help").')


def table_lines(rows: Dict[str, Dict[str, Any]], markdown: bool = False) -> List[str]:
    """Return the metrics table (plain text, or Markdown) with the echoes' improvement."""
    out = metric_rows(rows, (ROW_AV, ROW_V, ROW_MP_AV, ROW_MP_V), markdown=markdown)
    out.append('')
    for new, base, what in ((ROW_AV, ROW_V, 'metric depth'), (ROW_MP_AV, ROW_MP_V, 'M_p')):
        if new in rows and base in rows:
            out.append(f'echoes vs none, {what}: δ1 '
                       f'{change(rows[base]["delta1"], rows[new]["delta1"])}; AbsRel '
                       f'{change(rows[base]["abs_rel"], rows[new]["abs_rel"])}')
    return out


def room_lines(rooms: Dict[str, Dict[str, Any]], markdown: bool = False) -> List[str]:
    """Return the per-room table: gt median, scale error and δ1 without and with echoes.

    The last column counts the views whose scale error with echoes is lower than without.
    """
    head = ['room', 'gt median m', 'scale error V', 'scale error AV', 'δ1 V', 'δ1 AV',
            'views AV closer']
    body = []
    for room, s in rooms.items():
        e, r = s['scale_error'], s['rows']
        q = s['scale_ratio']
        body.append([room, f'{s["gt_median"]:.2f}', _factor(e[ROW_V], q[ROW_V]),
                     _factor(e[ROW_AV], q[ROW_AV]),
                     f'{r[ROW_V]["delta1"]:.3f}', f'{r[ROW_AV]["delta1"]:.3f}',
                     f'{s["views_av_closer"]} of {s["frames"]}'])
    return grid(head, body, markdown)


def _factor(err: float, ratio: float) -> str:
    """Scale error with the factor the scale is off by: '0.405 (x1.50)' too far, 'x0.67' near."""
    return f'{err:.3f} (×{ratio:.2f})'


def plot_frames(frames: Sequence[Dict[str, Any]], max_depth: float, path: str) -> None:
    """Save a panel, one row per frame: camera | ground truth | with | without echoes | errors."""
    plot_depth_rows([{'rgb': f['rgb'], 'gt': f['gt'], 'label': f.get('label', ''),
                      'maps': {'with echoes': f['with'], 'without echoes': f['without']}}
                     for f in frames], max_depth, path)


def panel_frames(frames: Sequence[Dict[str, Any]], per_room: int = 1) -> List[Dict[str, Any]]:
    """Pick ``per_room`` evenly spaced frames of every room, labelled by room."""
    rooms: Dict[str, List[Dict[str, Any]]] = {}
    for f in frames:
        rooms.setdefault(f.get('room', ''), []).append(f)
    out = []
    for room, fs in rooms.items():
        idx = sorted(set(np.linspace(0, len(fs) - 1, min(per_room, len(fs))).round()
                         .astype(int).tolist()))
        out += [dict(fs[i], label=room or f'pose {i}') for i in idx]
    return out


def write_outputs(score: Dict[str, Any], systems: Dict[str, Dict[str, Any]], out_dir: str,
                  panels_per_room: int = 1,
                  info: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """Write report.md, metrics.csv, rooms.csv, per_frame.csv, results.json and panel.png."""
    os.makedirs(out_dir, exist_ok=True)
    files = {k: os.path.join(out_dir, n) for k, n in (
        ('markdown', 'report.md'), ('csv', 'metrics.csv'), ('rooms', 'rooms.csv'),
        ('per_frame', 'per_frame.csv'), ('json', 'results.json'), ('png', 'panel.png'))}
    rows, rooms = score['rows'], score['rooms']
    helped, line = verdict(score)
    write_csv(files['csv'], ['row', *COLUMNS, 'frames'],
              [[r] + [m[c] for c in COLUMNS] + [m['frames']] for r, m in rows.items()])
    write_csv(files['rooms'], ['room', 'row', 'scale_error', 'scale_ratio', *COLUMNS, 'frames',
                               'gt_median_m', 'views_av_closer'],
              [[room, r, s['scale_error'][r], s['scale_ratio'][r]] + [m[c] for c in COLUMNS]
               + [m['frames'], s['gt_median'], s['views_av_closer']]
               for room, s in rooms.items() for r, m in s['rows'].items()])
    write_csv(files['per_frame'], ['room', 'stamp_ns', 'row', *COLUMNS],
              [[rec['room'], rec['stamp_ns'], r] + [rec[r][c] for c in COLUMNS]
               for rec in score['per_frame'] for r in rows if r in rec])
    plot_frames(panel_frames(score['frames'], panels_per_room), score['max_depth'],
                files['png'])
    results = {'rows': rows, 'rooms': rooms, 'poses': score['poses'], 'system': systems,
               'max_depth': score['max_depth'], 'echoes_helped': helped, 'verdict': line,
               **(info or {})}
    with open(files['json'], 'w') as f:
        json.dump(results, f, indent=1, default=lambda o: o.item())
    frames = sum(s['frames'] for s in rooms.values())
    md = ['# AVS-Net demo: simulated robot, unseen simulated rooms', '',
          f'{frames} poses in {len(rooms)} rooms, the same poses with and without echoes '
          f'(depth range 0 < gt ≤ {score["max_depth"]:g} m, mean of per-frame figures).', '',
          f'**{line}**', '', '## All rooms', '', *table_lines(rows, markdown=True), '',
          '## Per room', '', 'Scale error: mean over frames of |ln(median(pred) / '
          'median(gt))| of the published metric depth (×: the geometric mean of median(pred) / '
          'median(gt), above 1 too far, below 1 too near). Views AV closer: the views whose '
          'scale error is lower with echoes than without.', '',
          *room_lines(rooms, markdown=True), '',
          'Rows: metric depth = relative model × MEDIAN(M_p)/MEDIAN(relative), with M_p from '
          'the audio-visual model (echoes) or the visual-only one (no echoes); M_p rows are '
          'the AVS-Net maps themselves.', '', '## System figures', '']
    for label, s in systems.items():
        md.append(f'- {label}: ' + ', '.join(f'{k} {fmt_value(v)}' for k, v in s.items()))
    if info:
        md += ['', '## Set-up', ''] + [f'- {k}: {v}' for k, v in info.items()]
    md += ['', f'![panel]({os.path.basename(files["png"])})', '']
    with open(files['markdown'], 'w') as f:
        f.write('\n'.join(md))
    return files


def fmt_value(v: Any) -> str:
    """Format a system figure: floats to two decimals, None as a dash."""
    return fmt(v, digits=2)
