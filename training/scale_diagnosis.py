r"""Does the echo fix the metric scale? Per-room scale errors, non-learned bounds, resolution.

Per-room scale errors of trained models and of non-learned echo estimators, and the echo's
range resolution as the network sees it.

    python -m training.scale_diagnosis --root artifacts/diag/SimWide \
        --model v=artifacts/diag/v/best.pt --model av=artifacts/diag/av/best.pt

Scale error of a prediction ``p`` against ground truth ``g`` on valid pixels:
``|ln(median(p) / median(g))|`` (0 = the right scale; 0.69 = off by a factor of two). It is what
median scaling transfers to any relative model, so it is the figure that says whether echoes
help. Per room (a simulated location, one trajectory), frames are averaged.

Non-learned estimators (fitted on the training split by least squares in log space, scored on
the test split) bound what the echo carries without any network:

- ``constant``: the training set's mean log median depth, what a model that cannot see scale
  should predict (visual-only with scale ambiguity on);
- ``first reflection``: the first matched-filter envelope peak after the direct path above a
  quarter of the largest one, as a distance (c t / 2);
- ``energy centroid``: the energy-weighted mean arrival time after the direct path, as a
  distance.
"""

import argparse
import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from avs_net_ros.core.acoustics import ChirpConfig, make_chirp, speed_of_sound
from avs_net_ros.core.metrics import median_scale_error, prepare_prediction
import numpy as np
from scipy import signal
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from training.evaluation import forward_batch


@torch.no_grad()
def model_scale_errors(model: torch.nn.Module, dataset: Dataset, max_depth: float,
                       progress: bool = True) -> List[Dict[str, object]]:
    """Return one record per frame: location, gt median, predicted median, scale error.

    AV models with an echo scale head also give ``echo_error``: how far the echo branch's own
    log-scale is from the log geometric-mean depth.
    """
    model.eval()
    records = []
    for i in tqdm(range(len(dataset)), desc='scale errors', disable=not progress, leave=False):
        s = dataset[i]
        batch = {k: s[k][None] for k in ('image', 'echo_spec')}
        out = forward_batch(model, batch, torch.device('cpu'))
        pred = out['depth'][0, 0].numpy().astype(np.float64)
        gt = s['depth'][0].numpy().astype(np.float64)
        p, valid = prepare_prediction(pred, gt, max_depth=max_depth)
        rec = {'location': s.get('location', str(i)),
               'gt_median': float(np.median(gt[valid])),
               'pred_median': float(np.median(p[valid])),
               'scale_error': median_scale_error(pred, gt, max_depth=max_depth)}
        if 'echo_log_scale' in out:
            rec['echo_error'] = abs(float(out['echo_log_scale'][0])
                                    - float(np.log(gt[valid]).mean()))
        records.append(rec)
    return records


def per_room(records: Sequence[Mapping[str, object]]) -> Dict[str, Dict[str, float]]:
    """Average frame records by room: {location: {'gt_median', 'pred_median', 'scale_error'}}."""
    rooms: Dict[str, List[Mapping[str, object]]] = {}
    for r in records:
        rooms.setdefault(str(r['location']), []).append(r)
    return {k: {f: float(np.mean([float(x[f]) for x in v]))
                for f in ('gt_median', 'pred_median', 'scale_error')}
            for k, v in sorted(rooms.items())}


# --------------------------------------------------------------------------- no network


def echo_range_features(echo: np.ndarray, lead_in: int, sample_rate: int = 44100,
                        speed: float = speed_of_sound(20.0),
                        chirp: Optional[np.ndarray] = None,
                        guard: int = 40) -> Tuple[float, float]:
    """Return (first-reflection distance, energy-centroid distance) in metres of one echo.

    ``echo`` is the model's cut window (2, N) with the direct path ``lead_in`` samples in;
    ``guard`` samples after it are skipped (the direct sound itself).
    """
    c = make_chirp(ChirpConfig(sample_rate=sample_rate)) if chirp is None else chirp
    mf = signal.fftconvolve(np.asarray(echo, np.float64), c[::-1][None], mode='valid', axes=1)
    env = np.abs(signal.hilbert(mf, axis=1)).sum(0)
    start = lead_in + guard
    post = env[start:]
    if post.size == 0 or not np.any(post > 0):
        raise ValueError('echo window holds nothing after the direct path')
    k = int(np.argmax(post > 0.25 * post.max()))
    t = np.arange(post.size) + guard
    w = post ** 2
    to_m = speed / (2.0 * sample_rate)
    return (guard + k) * to_m, float((w * t).sum() / w.sum()) * to_m


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    a = np.c_[np.ones(len(x_train)), x_train]
    coef = np.linalg.lstsq(a, y_train, rcond=None)[0]
    return np.c_[np.ones(len(x_test)), x_test] @ coef


def _range_table(dataset: Dataset, progress: bool) -> Dict[str, np.ndarray]:
    lead = int(dataset.settings.lead_in_samples)
    sr = int(dataset.settings.features.sample_rate)
    chirp = make_chirp(ChirpConfig(sample_rate=sr))
    rows = {'log_gt': [], 'log_first': [], 'log_centroid': [], 'location': []}
    for i in tqdm(range(len(dataset)), desc='echo ranges', disable=not progress, leave=False):
        s = dataset[i]
        gt = s['depth'][0].numpy()
        first, centroid = echo_range_features(s['echo'].numpy(), lead, sr, chirp=chirp)
        rows['log_gt'].append(math.log(float(np.median(gt[gt > 0]))))
        rows['log_first'].append(math.log(first))
        rows['log_centroid'].append(math.log(centroid))
        rows['location'].append(s['location'])
    return {k: np.asarray(v) for k, v in rows.items()}


def non_learned_scale_errors(train: Dataset, test: Dataset,
                             progress: bool = True) -> Dict[str, Dict[str, object]]:
    """Fit the non-learned estimators on ``train``; return per-frame test errors for each."""
    a, b = _range_table(train, progress), _range_table(test, progress)
    preds = {'constant (training mean)': np.full(len(b['log_gt']), a['log_gt'].mean()),
             'first reflection': _fit_predict(a['log_first'], a['log_gt'], b['log_first']),
             'energy centroid': _fit_predict(a['log_centroid'], a['log_gt'],
                                             b['log_centroid'])}
    out = {}
    for name, p in preds.items():
        err = np.abs(p - b['log_gt'])
        out[name] = [{'location': loc, 'gt_median': math.exp(g), 'pred_median': math.exp(q),
                      'scale_error': float(e)}
                     for loc, g, q, e in zip(b['location'], b['log_gt'], p, err)]
    return out


def range_resolution(settings) -> Dict[str, float]:
    """Return what one spectrogram time bin spans, and where the direct path lands."""
    f = settings.features
    frames = f.stft.num_frames(f.window_samples)
    samples_per_bin = f.window_samples / f.spec_size[1]
    metres_per_sample = settings.speed_of_sound / (2.0 * f.sample_rate)
    return {'window_samples': f.window_samples, 'stft_frames': frames,
            'time_bins': f.spec_size[1], 'samples_per_bin': samples_per_bin,
            'metres_per_bin': samples_per_bin * metres_per_sample,
            'direct_path_bin': settings.lead_in_samples / samples_per_bin,
            'max_range_m': f.window_samples * metres_per_sample}


def summary_lines(results: Mapping[str, Sequence[Mapping[str, object]]]) -> List[str]:
    """Return a Markdown table: per estimator, mean / median / 90th pct frame and room error."""
    lines = ['| estimator | mean scale error (frames) | median | p90 | mean over rooms | '
             'rooms within 25 % | echo branch alone |', '|---|---:|---:|---:|---:|---:|---:|']
    for name, recs in results.items():
        e = np.array([float(r['scale_error']) for r in recs])
        rooms = per_room(recs)
        re = np.array([v['scale_error'] for v in rooms.values()])
        echo = (f"{np.mean([float(r['echo_error']) for r in recs]):.3f}"
                if recs and 'echo_error' in recs[0] else '–')
        lines.append(f'| {name} | {e.mean():.3f} | {np.median(e):.3f} | '
                     f'{np.percentile(e, 90):.3f} | {re.mean():.3f} | '
                     f'{100.0 * np.mean(re < math.log(1.25)):.0f} % | {echo} |')
    return lines


def main(argv: Optional[list] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    from training.data import build_dataset
    from training.export import load_checkpoint_model

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--root', required=True, help='BV2-layout data set (train and test splits)')
    p.add_argument('--test-root', default=None, help='test set root (default: --root)')
    p.add_argument('--model', action='append', default=[], metavar='NAME=CHECKPOINT')
    p.add_argument('--out', default=None, help='write summary.md and per_room.csv here')
    p.add_argument('--limit', type=int, default=0, help='test frames (0 = all)')
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results: Dict[str, list] = {}
    settings = None
    for item in args.model:
        name, _, path = item.partition('=')
        model, config, state = load_checkpoint_model(path)
        spec_size = state['config']['data']['train'].get('spec_size', (256, 256))
        entry = {'root': args.test_root or args.root, 'layout': 'bv2', 'split': 'test',
                 'spec_size': list(spec_size), 'max_depth': config.max_depth,
                 'depth_size': [96, 160]}
        if args.limit:
            entry['limit'] = args.limit
        ds = build_dataset(entry, config.image_size, f'test ({name})')
        results[name] = model_scale_errors(model, ds, config.max_depth)
    base = {'root': args.root, 'layout': 'bv2', 'split': 'train', 'spec_size': [32, 64],
            'max_depth': 30.0, 'depth_size': [48, 80]}
    train = build_dataset(base, (32, 32), 'train')
    test = build_dataset(dict(base, root=args.test_root or args.root, split='test',
                              **({'limit': args.limit} if args.limit else {})), (32, 32), 'test')
    settings = test.settings if hasattr(test, 'settings') else None
    results.update(non_learned_scale_errors(train, test))
    lines = summary_lines(results)
    print('\n'.join(lines))
    if settings is not None:
        print('range resolution:', {k: round(v, 3) for k, v in
                                    range_resolution(settings).items()})
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'summary.md'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        with open(os.path.join(args.out, 'per_room.csv'), 'w') as f:
            f.write('estimator,location,gt_median_m,pred_median_m,scale_error\n')
            for name, recs in results.items():
                for loc, v in per_room(recs).items():
                    f.write(f'{name},{loc},{v["gt_median"]:.4f},{v["pred_median"]:.4f},'
                            f'{v["scale_error"]:.4f}\n')


if __name__ == '__main__':
    main()
