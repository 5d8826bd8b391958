"""Tables of depth metrics as Markdown, aligned text and CSV: the one table writer.

The bag evaluation (``eval.report``), the demo (``tools.demo_report``) and training's
evaluation and seed summary (``training.evaluate``, ``training.seed_summary``) all write their
tables with these functions, so every table has the same columns, labels and number format.
"""

import csv
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

from avs_net_ros.core.metrics import HIGHER_IS_BETTER

#: Table columns in the paper's order.
METRICS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2', 'delta3')
#: Column labels of every metric the core computes.
LABELS = {'abs_rel': 'AbsRel', 'sq_rel': 'SqRel', 'rmse': 'RMSE', 'rmse_log': 'RMSE log',
          'delta1': 'δ1', 'delta2': 'δ2', 'delta3': 'δ3', 'log10': 'log10'}


def metric_header(metrics: Sequence[str] = METRICS, arrows: bool = True) -> List[str]:
    """Return the labels of ``metrics``, with ↑/↓ for which way is better when ``arrows``."""
    if not arrows:
        return [LABELS[m] for m in metrics]
    return [LABELS[m] + (' ↑' if HIGHER_IS_BETTER[m] else ' ↓') for m in metrics]


def fmt(value: Any, digits: int = 3) -> str:
    """Format a table cell: floats to ``digits`` decimals, None and NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '–'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def grid(head: Sequence[str], body: Sequence[Sequence[str]], markdown: bool = True
         ) -> List[str]:
    """Return a table as Markdown lines, or as plain text with aligned columns.

    The first column is left-aligned, the others (numbers) right-aligned.
    """
    if markdown:
        out = ['| ' + ' | '.join(head) + ' |', '|---|' + '---:|' * (len(head) - 1)]
        return out + ['| ' + ' | '.join(b) + ' |' for b in body]
    widths = [max(len(row[i]) for row in [list(head)] + [list(b) for b in body])
              for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return '  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(head), '  '.join('-' * w for w in widths)] + [line(b) for b in body]


def metric_rows(rows: Mapping[str, Mapping[str, Any]], order: Optional[Sequence[str]] = None,
                metrics: Sequence[str] = METRICS, markdown: bool = True,
                first: str = 'row', frames: bool = True) -> List[str]:
    """Return a metrics table: one line per row name (``order`` picks and sorts them)."""
    names = [r for r in (order if order is not None else rows) if r in rows]
    head = [first] + metric_header(metrics) + (['frames'] if frames else [])
    body = [[r] + [fmt(rows[r].get(m)) for m in metrics]
            + ([str(rows[r].get('frames', ''))] if frames else []) for r in names]
    return grid(head, body, markdown)


def change(base: Optional[float], new: Optional[float]) -> str:
    """Return 'base → new (+x.x %)' (a dash when either is missing)."""
    if base is None or new is None:
        return '–'
    rel = f' ({100.0 * (new - base) / abs(base):+.1f} %)' if abs(base) > 1e-9 else ''
    return f'{base:.3f} → {new:.3f}{rel}'


def gain_pct(base: Mapping[str, float], new: Mapping[str, float]) -> Dict[str, float]:
    """Return the relative gains of ``new`` over ``base`` in δ1 and AbsRel (positive = better)."""
    return {'delta1_gain_pct': 100 * (new['delta1'] - base['delta1'])
            / max(base['delta1'], 1e-12),
            'abs_rel_gain_pct': 100 * (base['abs_rel'] - new['abs_rel'])
            / max(base['abs_rel'], 1e-12)}


def write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Write ``rows`` under ``header`` to ``path``; return the path."""
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path
