"""The end-to-end demo: a simulated robot in unseen simulated rooms, with and without echoes.

    python -m avs_net_ros.tools.demo [--root artifacts/demo] [--rebuild] [--seed 43]

1. Models (``demo_models``, cached under a stamp): generates a BV2-like simulated training set
   spanning small and large rooms (scale ambiguity on: only the echoes tell sizes apart),
   trains the visual-only (V), audio-visual (AV) and relative-depth models with
   ``training.train`` on ``training/configs/demo.yaml`` (``--seed`` is the training seed) and
   exports them with ``training.export``.
2. The node graph (``demo_graph``: ``avs_bringup use_sim:=true use_emitter:=false``) runs in
   each evaluation room of the package's ``config/sim/demo_rooms/`` (a ~3 m office, a ~15 m
   corridor, a ~15 m hall; none in the training data), twice on the same trajectory: with the
   AV model (echoes used) and with the V model (no echoes), the relative model in both.
3. ``demo_report`` scores both against the simulated ground truth on the same poses, per room
   (scale error, δ1) and overall, prints the tables and one verdict line that says plainly
   whether the echoes helped, and writes ``<root>/report``.

This module imports neither torch nor rclpy at import time; training runs in subprocesses.
Exit status: 0 done (whatever the verdict), 1 a stage failed (the message names it and its
log).
"""

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.contract import read_onnx_contract
from avs_net_ros.ros.graph import default_config_dir
from avs_net_ros.runtime.memory import keep_freed_memory
from avs_net_ros.tools.demo_graph import run_graph, sim_params
from avs_net_ros.tools.demo_models import make_models, say
from avs_net_ros.tools.demo_report import (fmt_value, room_lines, score_rooms, table_lines,
                                           verdict, write_outputs)

#: The evaluation rooms: name -> scene-family file under the package's config/ (``ROOMS``).
#: Sizes differ by a factor of five, so a model that cannot see the scale cannot be right in
#: all of them.
ROOMS = os.path.join('sim', 'demo_rooms')
DEFAULT_ROOMS = ('office', 'corridor', 'hall')


def room_file(name: str, rooms_dir: Optional[str] = None) -> str:
    """Return the family file of evaluation room ``name`` (default: the package's rooms).

    Raises:
        ValueError: there is no such room file.

    """
    rooms_dir = rooms_dir or os.path.join(default_config_dir(), ROOMS)
    path = os.path.join(rooms_dir, f'{name}.yaml')
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(rooms_dir) if f.endswith('.yaml')) \
            if os.path.isdir(rooms_dir) else []
        raise ValueError(f'no evaluation room {name!r} ({path} missing); known: {known}')
    return path


def run_demo_graph(models: Dict[str, str], out_dir: str, *, domain_id: int,
                   rooms: Sequence[Tuple[str, str]], room_seed: int, poses: int, rate: float,
                   width: int, height: int, panels_per_room: int = 1, progress: bool = True,
                   info: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], Dict]:
    """Run both graphs in every (name, family file) room, score them, write the report."""
    max_depth = float(read_onnx_contract(models['av']).max_depth)
    rel = {'relative': models['relative']} if models.get('relative') else {}
    runs, systems = [], {}
    for i, (room, family_file) in enumerate(rooms):
        room_dir = os.path.join(out_dir, 'rooms', room)
        os.makedirs(room_dir, exist_ok=True)
        sim_file = sim_params(os.path.join(room_dir, 'sim_robot.yaml'), models['av'],
                              seed=room_seed + i, poses=poses, rate=rate, width=width,
                              height=height, family_config=os.path.abspath(family_file))
        common = {'domain_id': domain_id, 'poses': poses, 'rate': rate, 'progress': progress}
        say(f'{room} ({i + 1}/{len(rooms)}): with echoes (avs_model = AV)')
        av = run_graph('with_echoes', {'av': models['av'], 'v': models.get('v', ''), **rel},
                       sim_file, room_dir, need_echo=True, **common)
        say(f'{room} ({i + 1}/{len(rooms)}): without echoes (avs_model = V, same trajectory)')
        v = run_graph('without_echoes', {'av': models['v'], **rel}, sim_file, room_dir,
                      need_echo=False, **common)
        runs.append((room, av, v))
        systems[f'{room}, with echoes'] = av.system()
        systems[f'{room}, without echoes'] = v.system()
    score = score_rooms(runs, max_depth)
    files = write_outputs(score, systems, os.path.join(out_dir, 'report'), panels_per_room,
                          dict(info or {}, room_seed=room_seed, poses_per_room=poses,
                               frame_rate_hz=rate, image=f'{width}x{height}',
                               rooms=', '.join(f'{r} ({f})' for r, f in rooms)))
    return score, files


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='avs_demo', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='artifacts/demo', help='data, models and report folder')
    p.add_argument('--config', default='training/configs/demo.yaml')
    p.add_argument('--rebuild', action='store_true', help='rebuild the models even if cached')
    p.add_argument('--seed', type=int, default=43,
                   help='training seed of the three models (part of the cache stamp)')
    p.add_argument('--rooms', default=','.join(DEFAULT_ROOMS),
                   help=f"comma-separated evaluation rooms from the package's config/{ROOMS}/")
    p.add_argument('--room-seed', type=int, default=2026,
                   help='seed of the first room and its trajectory (the next rooms add 1, 2..)')
    p.add_argument('--domain-id', type=int, default=30, help='ROS_DOMAIN_ID (30-39)')
    p.add_argument('--poses', type=int, default=12, help='poses per room (independent views)')
    p.add_argument('--rate', type=float, default=3.0, help='camera frame rate (Hz)')
    p.add_argument('--size', default='160x96', help='camera WIDTHxHEIGHT (the training size)')
    p.add_argument('--panels-per-room', type=int, default=1, help='frames per room in the PNG')
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo (see the module docstring)."""
    p = _parser()
    args = p.parse_args(argv)
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    try:
        width, height = (int(x) for x in args.size.lower().split('x'))
    except ValueError:
        p.error(f'--size must be WIDTHxHEIGHT, got {args.size!r}')
    if not os.path.isfile(args.config):
        p.error(f'config {args.config} does not exist (run from the repository root)')
    try:
        rooms = [(r, room_file(r)) for r in args.rooms.split(',') if r]
    except ValueError as e:
        p.error(str(e))
    t0 = time.time()
    try:
        models = make_models(args.root, args.config, args.seed, args.rebuild)
        t1 = time.time()
        score, files = run_demo_graph(
            models, args.root, domain_id=args.domain_id, rooms=rooms,
            room_seed=args.room_seed, poses=args.poses, rate=args.rate, width=width,
            height=height, panels_per_room=args.panels_per_room,
            info={'models': os.path.dirname(models['av']), 'config': args.config,
                  'training_seed': args.seed})
    except (RuntimeError, ValueError, OSError) as e:
        print(f'demo failed: {e}', file=sys.stderr)
        return 1
    t2 = time.time()
    frames = sum(s['frames'] for s in score['rooms'].values())
    print()
    print(f'Metric depth vs ground truth on {frames} poses in {len(rooms)} unseen simulated '
          f'rooms (0 < gt <= {score["max_depth"]:g} m), training seed {args.seed}:')
    print('\n'.join(table_lines(score['rows'])))
    print()
    print('Per room (scale error = |ln(median(pred) / median(gt))| of the metric depth, mean '
          'over views; ×: median(pred) / median(gt), > 1 too far, < 1 too near; views AV '
          'closer: views whose scale error is lower with echoes):')
    print('\n'.join(room_lines(score['rooms'])))
    print()
    print(verdict(score)[1])
    print()
    print('System figures:')
    with open(files['json']) as f:
        systems = json.load(f)['system']
    for label, s in systems.items():
        shown = [f'{k} {fmt_value(v)}' for k, v in s.items() if k != 'graph_log']
        print(f'  {label}: ' + ', '.join(shown))
    print()
    print(f'models {t1 - t0:.0f} s, graph + scoring {t2 - t1:.0f} s, total {t2 - t0:.0f} s')
    print('report: ' + ', '.join(files.values()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
