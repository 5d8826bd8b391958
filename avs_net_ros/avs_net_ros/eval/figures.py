"""Pictures of an evaluation: AIDE_k per depth band, and depth / error panels.

The one plotting code for the bag evaluation (``eval.report``), the demo
(``tools.demo_report``) and training's evaluation and seed summary. Matplotlib is imported
when a figure is drawn (Agg backend, no display needed).
"""

from typing import Any, List, Mapping, Optional, Sequence

import numpy as np


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_aide_bars(series: Mapping[str, Mapping[int, float]], title: str, path: str,
                   errors: Optional[Mapping[str, Mapping[int, float]]] = None) -> bool:
    """Save AIDE_k per 1 m band [k, k+1) as bars, one colour per series; False if empty.

    ``series`` maps a label to {band k: AIDE_k in m}; ``errors`` (same keys) draws error bars
    (e.g. the sd over training seeds). With one series, bars are green where the audio-visual
    prediction is better and red where it is worse.
    """
    series = {k: v for k, v in series.items() if v}
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        bands = sorted(values)
        vals = [values[k] for k in bands]
        err = errors.get(label) if errors else None
        colour = (['tab:green' if v > 0 else 'tab:red' for v in vals] if len(series) == 1
                  else None)
        ax.bar(np.asarray(bands, float) + 0.1 + i * width, vals, width=width, align='edge',
               yerr=[err[k] for k in bands] if err else None, capsize=2, color=colour,
               label=label)
    ax.axhline(0.0, color='k', lw=0.8)
    ax.set_xlabel('ground-truth depth band k (m), [k, k+1)')
    ax.set_ylabel('AIDE_k (m), > 0: audio-visual better')
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_depth_rows(rows: Sequence[Mapping[str, Any]], max_depth: float, path: str,
                    title: Optional[str] = None) -> List[str]:
    """Save one row per frame: camera | ground truth | each map | |error| of each map.

    Each row is {'rgb': (H, W, 3), 'gt': (H, W) m (0 or NaN invalid), 'maps': {name: depth},
    'label': optional}. Predictions are compared at the ground truth's resolution on its valid
    pixels (``core.metrics.prepare_prediction``). Each row has one depth colour scale that
    fits the ground truth and its maps, and one error scale. Returns the column titles.
    """
    from avs_net_ros.core.metrics import prepare_prediction

    names = list(rows[0]['maps'])
    titles = (['camera', 'ground truth'] + names + [f'|error| {n}' for n in names])
    n = len(names)
    h, w = np.asarray(rows[0]['gt']).shape
    plt = _pyplot()
    # colour-bar axes after the depth maps and after the error maps
    ratios = [1] * (2 + n) + [0.06] + [1] * n + [0.06]
    fig, grid = plt.subplots(len(rows), len(ratios), squeeze=False,
                             figsize=(2.4 * (2 + 2 * n) + 0.6,
                                      2.4 * h / w * len(rows) + (1.1 if title else 0.8)),
                             gridspec_kw={'width_ratios': ratios})
    axes = grid[:, [i for i in range(len(ratios)) if ratios[i] == 1]]
    for r, row in enumerate(rows):
        gt = np.asarray(row['gt'], np.float32)
        valid_gt = np.isfinite(gt) & (gt > 0)
        preds = []
        for name in names:
            p, valid = prepare_prediction(row['maps'][name], gt, max_depth=max_depth)
            preds.append((p, np.where(valid, np.abs(p - gt), np.nan)))
        values = np.concatenate([gt[valid_gt]] + [p[np.isfinite(p)] for p, _ in preds])
        vmax = float(np.percentile(values, 99)) if values.size else max_depth
        finite = [e for _, e in preds if np.isfinite(e).any()]
        emax = max([1e-3] + [float(np.nanpercentile(e, 95)) for e in finite])
        axes[r, 0].imshow(np.clip(row['rgb'], 0, 255 if row['rgb'].dtype == np.uint8 else 1))
        im_d = axes[r, 1].imshow(np.where(valid_gt, gt, np.nan), cmap='magma_r', vmin=0,
                                 vmax=vmax)
        im_e = None
        for j, (p, e) in enumerate(preds):
            axes[r, 2 + j].imshow(p, cmap='magma_r', vmin=0, vmax=vmax)
            im_e = axes[r, 2 + n + j].imshow(e, cmap='viridis', vmin=0, vmax=emax)
            if np.isfinite(e).any():
                axes[r, 2 + n + j].set_xlabel(f'mean {np.nanmean(e):.2f} m', fontsize=9)
        fig.colorbar(im_d, cax=grid[r, 2 + n], label='m')
        if im_e is not None:
            fig.colorbar(im_e, cax=grid[r, -1], label='m')
        if row.get('label'):
            axes[r, 0].set_ylabel(str(row['label']), fontsize=10)
    for j, t in enumerate(titles):
        axes[0, j].set_title(t, fontsize=10, weight='bold')
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return titles
