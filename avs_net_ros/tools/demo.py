"""The end-to-end demo: a simulated robot in a simulated room, with and without echoes.

    python -m avs_net_ros.tools.demo [--root artifacts/demo] [--rebuild] [--domain-id 30]

1. Models (cached): generates a small BV2-like simulated data set, trains the visual-only (V),
   audio-visual (AV) and relative-depth models with ``training.train`` (three single-thread
   processes in parallel) on ``training/configs/demo.yaml`` and exports them with
   ``training.export`` (contract metadata + parity check). Everything lands under ``--root``
   and is reused while the stamp (a hash of the config and of the training, data-set and
   simulator code) matches.
2. The node graph (``avs_net_ros.ros.bringup use_sim:=true use_emitter:=false``) runs twice on
   the same unseen room and trajectory (same sim seed, one the training data never used):
   once with the AV model (echoes used) and once with the V model as ``avs_model`` (no
   echoes), the relative model in both. The simulated robot chirps on every frame, so every
   AV output is an echo frame. Camera, ground truth and the depth outputs are recorded until
   every pose of the trajectory has an output.
3. Both runs are scored against ``ground_truth/depth`` on the same poses with
   ``avs_net_ros.core.metrics`` (through ``eval.scoring.RecordedScorer``); the table, the
   system figures and a PNG panel (RGB | ground truth | with echoes | without echoes |
   |error|) go to ``<root>/report``.

This module imports neither torch nor rclpy at import time; training runs in subprocesses.
Exit status: 0 done, 1 a stage failed (the message names it and its log).
"""

import argparse
import csv
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

VARIANTS = ('v', 'av', 'relative')
ONNX_NAMES = {'v': 'avs_v.onnx', 'av': 'avs_av.onnx', 'relative': 'relative.onnx'}
#: The demo's training data: a BV2-like family (scale ambiguity on), 10 frames per location.
GENERATE = ['--layout', 'bv2', '--train', '160', '--val', '20', '--test', '0', '--seed', '11',
            '--frames', '10', '--width', '160', '--height', '96', '--workers', '2', '--quiet']
#: Code whose change invalidates the cached models (besides the config file).
STAMPED_CODE = ('training/*.py', 'training/models/*.py', 'avs_net_ros/datasets/*.py',
                'avs_net_ros/sim/*.py')
ROW_AV = 'with echoes (AV)'
ROW_V = 'without echoes (V)'
ROW_MP_AV = 'M_p with echoes (AV)'
ROW_MP_V = 'M_p without echoes (V)'
COLUMNS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2', 'delta3')
HEAD = ('AbsRel', 'SqRel', 'RMSE', 'RMSElog', 'δ1', 'δ2', 'δ3')


def _say(msg: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


# --------------------------------------------------------------------------- models


def model_stamp(config: str, repo: str = '.') -> str:
    """Return the hash of the config, the data-set arguments and the model-making code."""
    h = hashlib.sha256()
    h.update(' '.join(GENERATE).encode())
    files = [config] + sorted(f for pattern in STAMPED_CODE
                              for f in glob.glob(os.path.join(repo, pattern)))
    for f in files:
        h.update(os.path.relpath(f, repo).encode())
        with open(f, 'rb') as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def model_paths(root: str) -> Dict[str, str]:
    """Return the exported ONNX path of each variant under ``root``."""
    return {v: os.path.join(root, 'models', ONNX_NAMES[v]) for v in VARIANTS}


def _run_logged(cmd: List[str], log_path: str, what: str) -> None:
    with open(log_path, 'w') as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f'{what} failed (exit status {rc}); see {log_path}')


_STEP = re.compile(r'(\d+)/(\d+) \[')


def _train_progress(log_path: str) -> int:
    try:
        with open(log_path, 'rb') as f:
            f.seek(max(0, os.path.getsize(log_path) - 4000))
            tail = f.read().decode(errors='replace')
    except OSError:
        return 0
    steps = [int(m.group(1)) for line in tail.split('\r') if line.startswith('train ')
             for m in [_STEP.search(line)] if m]
    return steps[-1] if steps else 0


def make_models(root: str, config: str, rebuild: bool = False) -> Dict[str, str]:
    """Return the demo's ONNX models, reusing them when the stamp matches, else rebuilding."""
    from tqdm import tqdm
    import yaml

    paths = model_paths(root)
    stamp = model_stamp(config)
    stamp_file = os.path.join(root, 'stamp.txt')
    old = open(stamp_file).read().strip() if os.path.isfile(stamp_file) else None
    if not rebuild and old == stamp and all(map(os.path.isfile, paths.values())):
        _say(f'models: reusing {os.path.join(root, "models")} (stamp {stamp})')
        return paths
    _say('models: ' + ('rebuilding (--rebuild)' if rebuild else
                       f'building (stamp {old} != {stamp})' if old else 'building (none cached)'))
    py = sys.executable
    logs = os.path.join(root, 'logs')
    os.makedirs(logs, exist_ok=True)
    if os.path.exists(stamp_file):
        os.remove(stamp_file)
    data = os.path.join(root, 'SimBV2')
    if os.path.exists(data):
        shutil.rmtree(data)
    t0 = time.time()
    _say(f'data: generating the BV2-like training set into {data}')
    _run_logged([py, '-m', 'avs_net_ros.datasets.generate', '--out', data] + GENERATE,
                os.path.join(logs, 'generate.log'), 'data generation')
    _say(f'data: done in {time.time() - t0:.0f} s')
    with open(config) as f:
        steps = int(yaml.safe_load(f).get('max_steps') or 0)
    t1 = time.time()
    procs = {}
    for v in VARIANTS:
        cmd = [py, '-m', 'training.train', '--config', config, '--device', 'cpu',
               '--set', f'model.variant={v}', '--set', f'out_dir={os.path.join(root, v)}',
               '--set', f'data.train.root={data}', '--set', f'data.val.root={data}']
        log = open(os.path.join(logs, f'train_{v}.log'), 'w')
        procs[v] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
    _say(f'training: {", ".join(VARIANTS)} in parallel (logs: {logs}/train_*.log)')
    with tqdm(total=steps * len(VARIANTS) or None, desc='training', unit='step') as bar:
        while any(p.poll() is None for p, _ in procs.values()):
            done = sum(_train_progress(os.path.join(logs, f'train_{v}.log')) for v in procs)
            bar.update(max(0, done - bar.n))
            time.sleep(1.0)
    for _, log in procs.values():
        log.close()
    failed = [v for v, (p, _) in procs.items() if p.returncode != 0]
    if failed:
        raise RuntimeError(f'training failed for {failed}; see '
                           + ', '.join(os.path.join(logs, f'train_{v}.log') for v in failed))
    _say(f'training: done in {time.time() - t1:.0f} s; exporting to ONNX (contract metadata, '
         f'parity check against PyTorch)')
    for v in VARIANTS:
        _run_logged([py, '-m', 'training.export', '--checkpoint',
                     os.path.join(root, v, 'best.pt'), '--out', paths[v]],
                    os.path.join(logs, f'export_{v}.log'), f'export of {v}')
    _say(f'export: {", ".join(paths.values())}')
    with open(stamp_file, 'w') as f:
        f.write(stamp + '\n')
    _say(f'models: built in {time.time() - t0:.0f} s')
    return paths


# --------------------------------------------------------------------------- graph runs


def sim_params(path: str, av_model: str, *, seed: int, poses: int, rate: float,
               width: int, height: int, family: str = 'bv2_like') -> str:
    """Write sim_robot's parameter file so its echoes match the AV model's contract."""
    from avs_net_ros.core.contract import read_onnx_contract
    import yaml

    echo = read_onnx_contract(av_model).echo
    if echo is None:
        raise ValueError(f'{av_model} takes no echo; the demo needs an audio-visual model')
    lead_in = int(echo.lead_in_samples)
    params = {'family': family, 'seed': int(seed), 'num_poses': int(poses),
              'frame_rate': float(rate), 'width': int(width), 'height': int(height),
              'sensor_invalid': True, 'echo_noise': True, 'chirp_every': 1,
              'echo_max_range': float(echo.echo_max_depth),
              'echo_lead_in_samples': lead_in}
    with open(path, 'w') as f:
        yaml.safe_dump({'/**/sim_robot': {'ros__parameters': params}}, f)
    return path


def _key(gt_raw: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(gt_raw).tobytes()).hexdigest()


class RunRecord:
    """What one graph run published, grouped by frame stamp."""

    def __init__(self, label: str) -> None:
        """Start an empty record called ``label``."""
        self.label = label
        self.frames: Dict[int, Dict[str, Any]] = {}   # stamp -> {role: array, role_t: time}
        self.wall_s = 0.0
        self.startup_s = 0.0
        self.graph_log = ''
        self.end_t = float('inf')   # monotonic end of the recording
        self.grace_s = 0.0          # frames younger than this at the end may still be held

    def add(self, role: str, stamp: int, value: Any, t: float) -> None:
        """Store one message's content and receive time."""
        f = self.frames.setdefault(stamp, {})
        f[role] = value
        f[role + '_t'] = t

    def by_pose(self, need_echo: bool) -> Dict[str, Dict[str, Any]]:
        """Return the first complete frame of every pose (keyed by its ground truth)."""
        out: Dict[str, Dict[str, Any]] = {}
        for stamp in sorted(self.frames):
            f = self.frames[stamp]
            if not all(k in f for k in ('gt', 'rgb', 'metric')):
                continue
            if need_echo and 'pseudo_dense' not in f:
                continue
            out.setdefault(_key(f['gt']), dict(f, stamp=stamp))
        return out

    def system(self) -> Dict[str, Any]:
        """Return the figures this process could see of the run."""
        frames = [f for f in self.frames.values() if 'rgb' in f]
        outs = sorted(f['metric_t'] for f in self.frames.values() if 'metric' in f)
        lat = [1e3 * (f['metric_t'] - f['rgb_t']) for f in self.frames.values()
               if 'metric' in f and 'rgb' in f]
        cam = sorted(f['rgb_t'] for f in frames)
        return {'camera_frames': len(frames),
                'metric_outputs': len(outs),
                'pseudo_dense_outputs': sum('pseudo_dense' in f for f in self.frames.values()),
                'camera_rate_hz': (len(cam) - 1) / (cam[-1] - cam[0]) if len(cam) > 1 else None,
                'output_rate_hz': (len(outs) - 1) / (outs[-1] - outs[0])
                if len(outs) > 1 else None,
                'latency_ms_median': float(np.median(lat)) if lat else None,
                'latency_ms_p95': float(np.percentile(lat, 95)) if lat else None,
                # frames still inside the node's echo wait when recording stopped don't count
                'frames_without_output': sum('metric' not in f for f in frames
                                             if f['rgb_t'] < self.end_t - self.grace_s),
                'recording_s': self.wall_s, 'startup_s': self.startup_s,
                'graph_log': self.graph_log}


def run_graph(label: str, models: Dict[str, str], sim_file: str, out_dir: str, *,
              domain_id: int, poses: int, rate: float, need_echo: bool,
              startup_timeout: float = 90.0, max_loops: float = 6.0,
              echo_wait: float = 1.5, progress: bool = True) -> RunRecord:
    """Run the simulated graph with ``models`` until every pose has an output; record it.

    Args:
        label: name of the run (files ``<out_dir>/<label>_graph.log``, params).
        models: 'av' is depth_inference's avs_model (AV or V); optional 'v', 'relative'.
        sim_file: sim_robot parameter file (``sim_params``).
        domain_id: ROS_DOMAIN_ID of the graph and of this process's recorder.
        poses, rate: the trajectory's poses and frame rate (the stop condition and time limit).
        need_echo: count a pose only when its output came with an echo (pseudo_dense).
        max_loops: give up after this many trajectory loops of recording.
        echo_wait: depth_inference's echo_wait (s) when ``need_echo`` (else 0: a visual-only
            model has nothing to wait for).

    Raises:
        RuntimeError: the graph exited, never started publishing, or published nothing.

    """
    from avs_net_ros.eval.replay import GraphProcess, IMAGE_TYPE, Recorder, write_depth_params
    from avs_net_ros.eval.bagio import typestore
    from avs_net_ros.ros.conversions import image_to_array, image_to_rgb, stamp_to_ns
    from tqdm import tqdm

    os.makedirs(out_dir, exist_ok=True)
    echo_wait = echo_wait if need_echo else 0.0
    depth_file = write_depth_params(os.path.join(out_dir, f'{label}_depth_inference.yaml'),
                                    models, ['cpu'], echo_wait)
    args = ['use_sim:=true', 'use_emitter:=false', f'sim_params_file:={sim_file}',
            f'depth_params_file:={depth_file}']
    rec = RunRecord(label)
    rec.graph_log = os.path.join(out_dir, f'{label}_graph.log')
    rec.grace_s = echo_wait + 1.0
    topics = {'/camera/image': 'rgb', '/ground_truth/depth': 'gt', '/depth/metric': 'metric',
              '/depth/pseudo_dense': 'pseudo_dense'}
    ts = typestore()
    t0 = time.monotonic()
    with GraphProcess(args, rec.graph_log, domain_id, f'avs_demo_{label}') as graph:
        node = graph.node
        recorder = Recorder(node, '/depth', {'/camera/image': IMAGE_TYPE,
                                             '/ground_truth/depth': IMAGE_TYPE}, enabled=False)
        graph.wait_until(lambda: node.count_publishers('/depth/metric')
                         and node.count_publishers('/camera/image'),
                         startup_timeout, 'start publishing camera/image and depth/metric')
        # The first output also means the models are loaded and the ONNX sessions warm.
        recorder.enabled = True
        graph.wait_until(lambda: recorder.count('/depth/metric') > 0, startup_timeout,
                         f'publish depth/metric (is {models["av"]} loadable?)')
        rec.startup_s = time.monotonic() - t0
        start = time.monotonic()
        limit = max_loops * poses / rate
        seen = 0
        done = 0
        with tqdm(total=poses, desc=f'graph {label}', unit='pose', disable=not progress) as bar:
            while time.monotonic() - start < limit:
                graph.check_alive()
                time.sleep(0.5)
                msgs = recorder.snapshot()
                for t, topic, msgtype, raw in msgs[seen:]:
                    role = topics.get(topic)
                    if role is None:
                        continue
                    msg = ts.deserialize_cdr(raw, msgtype)
                    value = (image_to_rgb(msg) if role == 'rgb'
                             else np.array(image_to_array(msg), dtype=np.float32))
                    rec.add(role, stamp_to_ns(msg.header.stamp), value, t)
                seen = len(msgs)
                done = len(rec.by_pose(need_echo))
                bar.update(max(0, min(done, poses) - bar.n))
                if done >= poses:
                    break
        recorder.enabled = False
        rec.end_t = time.monotonic()
        rec.wall_s = rec.end_t - start
    if 0 < done < poses:
        _say(f'note: the {label} run covered {done} of {poses} poses in {rec.wall_s:.0f} s '
             f'(the graph is slower than {rate:g} Hz here); scoring those')
    if not rec.by_pose(need_echo):
        raise RuntimeError(f'the {label} run produced no scorable frame in {rec.wall_s:.0f} s; '
                           f'see {rec.graph_log}')
    return rec


# --------------------------------------------------------------------------- scoring


def score_runs(with_echo: RunRecord, without_echo: RunRecord, max_depth: float,
               min_depth: float = 1e-3) -> Dict[str, Any]:
    """Score both runs on the poses both have; return rows, per-frame figures and frames."""
    from avs_net_ros.eval.scoring import RecordedScorer

    av = with_echo.by_pose(need_echo=True)
    v = without_echo.by_pose(need_echo=False)
    common = [k for k in av if k in v]   # trajectory order of the AV run
    if not common:
        raise RuntimeError('the two runs have no pose in common (different sim seeds?)')
    scorer = RecordedScorer(max_depth, min_depth)
    frames = []
    for k in common:
        a, b = av[k], v[k]
        maps = {ROW_AV: a['metric'], ROW_V: b['metric'], ROW_MP_AV: a['pseudo_dense']}
        if 'pseudo_dense' in b:
            maps[ROW_MP_V] = b['pseudo_dense']
        scorer.add(a['stamp'], maps, a['gt'])
        frames.append({'rgb': a['rgb'], 'gt': a['gt'], 'with': a['metric'],
                       'without': b['metric']})
    rows = scorer.result()
    return {'rows': rows, 'per_frame': scorer.per_frame, 'frames': frames,
            'poses': {'with_echoes': len(av), 'without_echoes': len(v), 'common': len(common)},
            'max_depth': max_depth}


def _change(base: Optional[float], new: Optional[float]) -> str:
    if base is None or new is None:
        return '–'
    rel = f' ({100.0 * (new - base) / abs(base):+.1f} %)' if abs(base) > 1e-9 else ''
    return f'{base:.3f} → {new:.3f}{rel}'


def table_lines(rows: Dict[str, Dict[str, Any]], markdown: bool = False) -> List[str]:
    """Return the metrics table (plain text, or Markdown) with the echoes' improvement."""
    order = [r for r in (ROW_AV, ROW_V, ROW_MP_AV, ROW_MP_V) if r in rows]
    head = ['row'] + [h + (' ↑' if h.startswith('δ') else ' ↓') for h in HEAD] + ['frames']
    body = [[r] + [f'{rows[r][c]:.3f}' for c in COLUMNS] + [str(rows[r]['frames'])]
            for r in order]
    if markdown:
        out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        out += ['| ' + ' | '.join(b) + ' |' for b in body]
    else:
        widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
        fmt = lambda cells: '  '.join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(cells, widths)))
        out = [fmt(head), '  '.join('-' * w for w in widths)] + [fmt(b) for b in body]
    out.append('')
    for new, base, what in ((ROW_AV, ROW_V, 'metric depth'), (ROW_MP_AV, ROW_MP_V, 'M_p')):
        if new in rows and base in rows:
            out.append(f'echoes vs none, {what}: δ1 '
                       f'{_change(rows[base]["delta1"], rows[new]["delta1"])}; AbsRel '
                       f'{_change(rows[base]["abs_rel"], rows[new]["abs_rel"])}')
    return out


def plot_frames(frames: Sequence[Dict[str, Any]], max_depth: float, path: str,
                count: int = 4) -> List[int]:
    """Save a panel, one row per frame: RGB | ground truth | with | without echoes | |error|."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from avs_net_ros.core.metrics import prepare_prediction

    idx = sorted(set(np.linspace(0, len(frames) - 1, min(count, len(frames))).round()
                     .astype(int).tolist()))
    titles = ('camera', 'ground truth', 'with echoes', 'without echoes',
              '|error| with echoes', '|error| without echoes')
    h, w = frames[idx[0]]['gt'].shape
    fig, grid = plt.subplots(len(idx), 8, squeeze=False,
                             figsize=(16, (16 / 6.3) * h / w * len(idx) + 0.8),
                             gridspec_kw={'width_ratios': [1, 1, 1, 1, 0.06, 1, 1, 0.06]})
    axes = grid[:, [0, 1, 2, 3, 5, 6]]
    for r, i in enumerate(idx):
        f = frames[i]
        gt = f['gt']
        errs = []
        for name in ('with', 'without'):
            p, valid = prepare_prediction(f[name], gt, max_depth=max_depth)
            errs.append((p, np.where(valid, np.abs(p - gt), np.nan)))
        # one depth scale per row that fits the ground truth and both predictions
        vals = np.concatenate([gt[np.isfinite(gt)]] + [p[np.isfinite(p)] for p, _ in errs])
        vmax = float(np.percentile(vals, 99)) if vals.size else max_depth
        finite = [e for _, e in errs if np.isfinite(e).any()]
        emax = max([1e-3] + [float(np.nanpercentile(e, 95)) for e in finite])
        axes[r, 0].imshow(f['rgb'])
        im_d = axes[r, 1].imshow(np.where(np.isfinite(gt) & (gt > 0), gt, np.nan),
                                 cmap='magma_r', vmin=0, vmax=vmax)
        for j, (p, e) in enumerate(errs):
            axes[r, 2 + j].imshow(p, cmap='magma_r', vmin=0, vmax=vmax)
            im_e = axes[r, 4 + j].imshow(e, cmap='viridis', vmin=0, vmax=emax)
            axes[r, 4 + j].set_xlabel(f'mean {np.nanmean(e):.2f} m', fontsize=10)
        fig.colorbar(im_d, cax=grid[r, 4], label='m')
        fig.colorbar(im_e, cax=grid[r, 7], label='m')
        axes[r, 0].set_ylabel(f'pose {i}', fontsize=10)
    for j, t in enumerate(titles):
        axes[0, j].set_title(t, fontsize=11, weight='bold')
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return idx


def write_outputs(score: Dict[str, Any], systems: Dict[str, Dict[str, Any]], out_dir: str,
                  panels: int = 4, info: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """Write report.md, metrics.csv, per_frame.csv, results.json and panel.png."""
    os.makedirs(out_dir, exist_ok=True)
    files = {k: os.path.join(out_dir, n) for k, n in (
        ('markdown', 'report.md'), ('csv', 'metrics.csv'), ('per_frame', 'per_frame.csv'),
        ('json', 'results.json'), ('png', 'panel.png'))}
    rows = score['rows']
    with open(files['csv'], 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['row', *COLUMNS, 'frames'])
        for r, m in rows.items():
            w.writerow([r] + [m[c] for c in COLUMNS] + [m['frames']])
    with open(files['per_frame'], 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['pose', 'stamp_ns', 'row', *COLUMNS])
        for i, rec in enumerate(score['per_frame']):
            for r in rows:
                if r in rec:
                    w.writerow([i, rec['stamp_ns'], r] + [rec[r][c] for c in COLUMNS])
    shown = plot_frames(score['frames'], score['max_depth'], files['png'], panels)
    results = {'rows': rows, 'poses': score['poses'], 'system': systems,
               'max_depth': score['max_depth'], 'panel_poses': shown, **(info or {})}
    with open(files['json'], 'w') as f:
        json.dump(results, f, indent=1, default=lambda o: o.item())
    md = ['# AVS-Net demo: simulated robot, simulated room', '',
          f'Poses scored: {score["poses"]["common"]} (the same poses in both runs; depth '
          f'range 0 < gt ≤ {score["max_depth"]:g} m, mean of per-frame figures).', '',
          *table_lines(rows, markdown=True), '',
          'Rows: metric depth = relative model × MEDIAN(M_p)/MEDIAN(relative), with M_p from '
          'the audio-visual model (echoes) or the visual-only one (no echoes); M_p rows are '
          'the AVS-Net maps themselves.', '', '## System figures', '']
    for label, s in systems.items():
        md.append(f'- {label}: ' + ', '.join(f'{k} {_fmt(v)}' for k, v in s.items()))
    if info:
        md += ['', '## Set-up', ''] + [f'- {k}: {v}' for k, v in info.items()]
    md += ['', f'![panel]({os.path.basename(files["png"])})', '']
    with open(files['markdown'], 'w') as f:
        f.write('\n'.join(md))
    return files


def _fmt(v: Any) -> str:
    if v is None:
        return '–'
    return f'{v:.2f}' if isinstance(v, float) else str(v)


def run_demo_graph(models: Dict[str, str], out_dir: str, *, domain_id: int, seed: int,
                   poses: int, rate: float, width: int, height: int, panels: int = 4,
                   family: str = 'bv2_like', progress: bool = True,
                   info: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], Dict]:
    """Run both graphs, score them and write the report; return (score, files)."""
    from avs_net_ros.core.contract import read_onnx_contract

    max_depth = float(read_onnx_contract(models['av']).max_depth)
    sim_file = sim_params(os.path.join(out_dir, 'sim_robot.yaml'), models['av'], seed=seed,
                          poses=poses, rate=rate, width=width, height=height, family=family)
    common = {'domain_id': domain_id, 'poses': poses, 'rate': rate, 'progress': progress}
    rel = {'relative': models['relative']} if models.get('relative') else {}
    _say('graph 1/2: with echoes (avs_model = AV, relative model scaled by its median)')
    av = run_graph('with_echoes', {'av': models['av'], 'v': models.get('v', ''), **rel},
                   sim_file, out_dir, need_echo=True, **common)
    _say('graph 2/2: without echoes (avs_model = V, the same room and trajectory)')
    v = run_graph('without_echoes', {'av': models['v'], **rel}, sim_file, out_dir,
                  need_echo=False, **common)
    score = score_runs(av, v, max_depth)
    systems = {'with echoes': av.system(), 'without echoes': v.system()}
    files = write_outputs(score, systems, os.path.join(out_dir, 'report'), panels,
                          dict(info or {}, sim_seed=seed, poses=poses, frame_rate_hz=rate,
                               image=f'{width}x{height}', family=family))
    return score, files


def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo (see the module docstring)."""
    p = argparse.ArgumentParser(prog='avs_demo', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='artifacts/demo', help='data, models and report folder')
    p.add_argument('--config', default='training/configs/demo.yaml')
    p.add_argument('--rebuild', action='store_true', help='rebuild the models even if cached')
    p.add_argument('--domain-id', type=int, default=30, help='ROS_DOMAIN_ID (30-39)')
    p.add_argument('--seed', type=int, default=2026,
                   help='sim room and trajectory seed (not a training seed)')
    p.add_argument('--poses', type=int, default=16, help='poses in the trajectory')
    p.add_argument('--rate', type=float, default=3.0, help='camera frame rate (Hz)')
    p.add_argument('--size', default='160x96', help='camera WIDTHxHEIGHT (the training size)')
    p.add_argument('--panels', type=int, default=4, help='frames in the PNG panel')
    args = p.parse_args(argv)
    from avs_net_ros.runtime.memory import keep_freed_memory
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    try:
        width, height = (int(x) for x in args.size.lower().split('x'))
    except ValueError:
        p.error(f'--size must be WIDTHxHEIGHT, got {args.size!r}')
    if not os.path.isfile(args.config):
        p.error(f'config {args.config} does not exist (run from the repository root)')
    t0 = time.time()
    try:
        models = make_models(args.root, args.config, args.rebuild)
        t1 = time.time()
        score, files = run_demo_graph(
            models, args.root, domain_id=args.domain_id, seed=args.seed, poses=args.poses,
            rate=args.rate, width=width, height=height, panels=args.panels,
            info={'models': os.path.dirname(models['av']), 'config': args.config})
    except (RuntimeError, ValueError, OSError) as e:
        print(f'demo failed: {e}', file=sys.stderr)
        return 1
    t2 = time.time()
    rows = score['rows']
    print()
    print(f'Metric depth vs ground truth on {score["poses"]["common"]} poses of an unseen '
          f'simulated room (0 < gt <= {score["max_depth"]:g} m):')
    print('\n'.join(table_lines(rows)))
    print()
    print('System figures:')
    with open(files['json']) as f:
        systems = json.load(f)['system']
    for label, s in systems.items():
        shown = [f'{k} {_fmt(v)}' for k, v in s.items() if k != 'graph_log']
        print(f'  {label}: ' + ', '.join(shown))
    print()
    print(f'models {t1 - t0:.0f} s, graph + scoring {t2 - t1:.0f} s, total {t2 - t0:.0f} s')
    print('report: ' + ', '.join(files.values()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
