"""Replay a rosbag2 into the running node graph, record its outputs, score them, time them.

    avs_replay_bag BAG --av AV.onnx [--v V.onnx] [--relative REL.onnx] --out report_dir
        [--rate 1.0] [--domain-id 20] [--compare-offline]

Starts the depth graph (avs_bringup use_sim:=false use_emitter:=false use_sim_time:=true) in a
child process on ROS_DOMAIN_ID --domain-id, loopback only; plays the bag's camera, camera_info and
echoes with /clock (``ros2 bag play --clock`` where installed, the package's
own player otherwise); records depth/metric, depth/pseudo_dense, depth/relative, depth/scale
and /diagnostics into OUT/replay_bag; scores them against the bag's ground truth and writes the
same report as avs_eval_bag plus the system figures (output rate, latency, dropped frames,
echoes without a result). --compare-offline also evaluates the bag offline with the same models
and reports how far the two differ on the same frames.
Exit status: 0 done, 2 bad input, 3 nothing scored, 4 the graph failed.
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from avs_net_ros.core.errors import AvsInputError, ModelContractError
from avs_net_ros.eval.report import write_report
from avs_net_ros.eval.topics import BagTopics
from avs_net_ros.runtime.memory import keep_freed_memory


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog='avs_replay_bag', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    p.add_argument('bag', help='rosbag2 directory (or .mcap / .db3 file)')
    p.add_argument('--out', default=None, help='report folder (default: <bag>_replay)')
    p.add_argument('--av', required=True, help='audio-visual AVS-Net ONNX model')
    p.add_argument('--v', default='', help='visual-only AVS-Net (fallback; Baseline offline)')
    p.add_argument('--relative', default='', help='relative-depth ONNX model')
    p.add_argument('--providers', nargs='+', default=['cpu'])
    p.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    p.add_argument('--domain-id', type=int, default=20, help='ROS_DOMAIN_ID to use')
    p.add_argument('--echo-wait', type=float, default=0.5,
                   help="depth_inference's echo_wait (s) during the replay")
    p.add_argument('--max-depth', type=float, default=None)
    p.add_argument('--startup-timeout', type=float, default=90.0)
    p.add_argument('--panels', type=int, default=4)
    p.add_argument('--compare-offline', action='store_true')
    for role in ('image', 'camera_info', 'echoes', 'ground_truth'):
        p.add_argument(f'--{role.replace("_", "-")}-topic', dest=f'{role}_topic', default=None)
    p.add_argument('--quiet', action='store_true')
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the replay and write the report; see the module docstring for exit codes."""
    from avs_net_ros.eval.bagio import BagReadError
    from avs_net_ros.ros.replay import compare_with_offline, replay_bag
    from avs_net_ros.tools.eval_bag import panel_indices

    args = build_parser().parse_args(argv)
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    out = args.out or os.path.normpath(args.bag).rstrip(os.sep) + '_replay'
    values = dict(BagTopics().__dict__)
    for k in values:
        if getattr(args, f'{k}_topic', None):
            values[k] = getattr(args, f'{k}_topic')
    topics = BagTopics(**values)
    models = {'av': args.av, 'v': args.v, 'relative': args.relative}
    for k, path in models.items():
        if path and not os.path.isfile(path):
            print(f'avs_replay_bag: error: --{k} model {path!r} does not exist', file=sys.stderr)
            return 2
    try:
        panels = panel_indices(args.bag, topics, args.panels, 'image')
        res = replay_bag(args.bag, out, models, topics, domain_id=args.domain_id,
                         rate=args.rate, providers=args.providers, echo_wait=args.echo_wait,
                         max_depth=args.max_depth, startup_timeout=args.startup_timeout,
                         progress=not args.quiet, panel_frames=panels)
        if args.compare_offline:
            from avs_net_ros.eval.offline import EvalConfig, evaluate_bag, Variant
            rel = {'relative': args.relative} if args.relative else {}
            off = evaluate_bag(args.bag, [Variant('avs', args.av, args.v or None)], rel,
                               topics, EvalConfig(max_depth=res.max_depth,
                                                  providers=tuple(args.providers),
                                                  progress=not args.quiet))
            agreement = compare_with_offline(off, res, 'avs', 'relative' if rel else None)
            res.system['offline agreement'] = json.dumps(agreement)
            write_report(off, os.path.join(out, 'offline'), 'Offline evaluation (same bag)')
    except (AvsInputError, ModelContractError, BagReadError, ValueError) as e:
        print(f'avs_replay_bag: error: {e}', file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError) as e:
        print(f'avs_replay_bag: error: {e}', file=sys.stderr)
        return 4
    files = write_report(res, out, title=f'Live replay of {os.path.basename(args.bag)}')
    print(f'{res.frames_scored} frame(s) scored; report: {files["markdown"]}')
    return 0 if res.frames_scored else 3


if __name__ == '__main__':
    sys.exit(main())
