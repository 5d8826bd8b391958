"""The demo's models: simulated training data, V / AV / relative training, ONNX export, cache.

Everything lands under the demo root and is reused while the stamp matches: a hash of the
training config, the data-set arguments and scene family, the training seed, and the training,
data-set and simulator code. A model made by other code or settings is never reused silently.

This module imports neither torch nor rclpy: training and export run in subprocesses.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable, Dict, List

from avs_net_ros.tools.stamp import content_stamp
from tqdm import tqdm
import yaml

VARIANTS = ('v', 'av', 'relative')
ONNX_NAMES = {'v': 'avs_v.onnx', 'av': 'avs_av.onnx', 'relative': 'relative.onnx'}
#: Scene family of the demo's training data (the file documents it); paths are relative to
#: the repository root, where the demo runs.
TRAIN_FAMILY = 'avs_net_ros/config/sim/demo_train.yaml'
#: The demo's training data: many short trajectories (2 frames per location) so the models see
#: many room sizes; scale ambiguity on, so only the echoes tell the sizes apart.
GENERATE = ['--layout', 'bv2', '--family-config', TRAIN_FAMILY, '--train', '480', '--val',
            '40', '--test', '0', '--seed', '11', '--frames', '2', '--width', '160', '--height',
            '96', '--workers', '2', '--quiet']
#: Code and files whose change invalidates the cached models (besides the config file).
STAMPED_FILES = ('training/*.py', 'training/models/*.py', 'avs_net_ros/avs_net_ros/datasets/*.py',
                 'avs_net_ros/avs_net_ros/sim/*.py', TRAIN_FAMILY)


def say(msg: str) -> None:
    """Print one progress line of the demo."""
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def model_stamp(config: str, seed: int, repo: str = '.') -> str:
    """Return the hash of the config, seed, data-set arguments and the model-making code."""
    return content_stamp(' '.join(GENERATE + ['train-seed', str(int(seed))]), [config],
                         STAMPED_FILES, repo)


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


def _train_all(root: str, config: str, data: str, seed: int,
               progress: Callable[[int], None]) -> None:
    py = sys.executable
    logs = os.path.join(root, 'logs')
    procs = {}
    for v in VARIANTS:
        cmd = [py, '-m', 'training.train', '--config', config, '--device', 'cpu',
               '--set', f'model.variant={v}', '--set', f'out_dir={os.path.join(root, v)}',
               '--set', f'data.train.root={data}', '--set', f'data.val.root={data}',
               '--set', f'seed={int(seed)}']
        log = open(os.path.join(logs, f'train_{v}.log'), 'w')
        procs[v] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
    say(f'training: {", ".join(VARIANTS)} in parallel, seed {seed} (logs: {logs}/train_*.log)')
    while any(p.poll() is None for p, _ in procs.values()):
        progress(sum(_train_progress(os.path.join(logs, f'train_{v}.log')) for v in procs))
        time.sleep(1.0)
    for _, log in procs.values():
        log.close()
    failed = [v for v, (p, _) in procs.items() if p.returncode != 0]
    if failed:
        raise RuntimeError(f'training failed for {failed}; see '
                           + ', '.join(os.path.join(logs, f'train_{v}.log') for v in failed))


def make_models(root: str, config: str, seed: int, rebuild: bool = False) -> Dict[str, str]:
    """Return the demo's ONNX models, reusing them when the stamp matches, else rebuilding."""
    paths = model_paths(root)
    stamp = model_stamp(config, seed)
    stamp_file = os.path.join(root, 'stamp.txt')
    old = open(stamp_file).read().strip() if os.path.isfile(stamp_file) else None
    if not rebuild and old == stamp and all(map(os.path.isfile, paths.values())):
        say(f'models: reusing {os.path.join(root, "models")} (stamp {stamp}, seed {seed})')
        return paths
    say('models: ' + ('rebuilding (--rebuild)' if rebuild else
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
    say(f'data: generating the BV2-like training set into {data}')
    _run_logged([py, '-m', 'avs_net_ros.datasets.generate', '--out', data] + GENERATE,
                os.path.join(logs, 'generate.log'), 'data generation')
    say(f'data: done in {time.time() - t0:.0f} s')
    with open(config) as f:
        steps = int(yaml.safe_load(f).get('max_steps') or 0)
    t1 = time.time()
    with tqdm(total=steps * len(VARIANTS) or None, desc='training', unit='step') as bar:
        _train_all(root, config, data, seed, lambda done: bar.update(max(0, done - bar.n)))
    say(f'training: done in {time.time() - t1:.0f} s; exporting to ONNX (contract metadata, '
        f'parity check against PyTorch)')
    for v in VARIANTS:
        _run_logged([py, '-m', 'training.export', '--checkpoint',
                     os.path.join(root, v, 'best.pt'), '--out', paths[v]],
                    os.path.join(logs, f'export_{v}.log'), f'export of {v}')
    say(f'export: {", ".join(paths.values())}')
    with open(stamp_file, 'w') as f:
        f.write(stamp + '\n')
    say(f'models: built in {time.time() - t0:.0f} s')
    return paths
