"""Write a rosbag2 with the package's topics from a simulated trajectory or a BatVision split.

    avs_write_bag sim OUT_BAG [--frames 50] [--family bv2_like] [--seed 0] [--size 320x240]
    avs_write_bag batvision OUT_BAG --root BV2_ROOT [--layout bv2] [--split test]

Topics (the nodes' defaults): /image (rgb8), /camera_info (simulated), /echoes
(avs_net_msgs/EchoFrame: 2 x samples with their settings, stamped like the image),
/depth/ground_truth (32FC1 metres, NaN invalid; or 16UC1 millimetres, 0 invalid, with
--gt-encoding 16UC1).
"""

import argparse
import os
import sys
from typing import List, Optional

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.eval.bagio import BagWriter, STORAGES
from avs_net_ros.eval.sources import batvision_frames, simulated_frames
from avs_net_ros.eval.topics import BagTopics
from avs_net_ros.runtime.memory import keep_freed_memory


def _size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be WIDTHxHEIGHT, got {text!r}') from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f'size must be positive, got {text!r}')
    return w, h


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog='avs_write_bag', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    sub = p.add_subparsers(dest='source', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('out', help='bag directory to create (must not exist)')
    common.add_argument('--storage', choices=sorted(STORAGES), default='mcap')
    common.add_argument('--gt-encoding', choices=('32FC1', '16UC1'), default='32FC1')
    common.add_argument('--max-depth', type=float, default=None,
                        help='echo window range and ground-truth limit (m); default: the '
                             "family's / layout's")
    common.add_argument('--namespace', default='', help='prefix for every topic, e.g. /robot')
    common.add_argument('--quiet', action='store_true', help='no progress bar')
    s = sub.add_parser('sim', parents=[common], help='simulated trajectory')
    s.add_argument('--frames', type=int, default=50)
    s.add_argument('--family', default='bv2_like', help='scene family (bv2_like, bv1_like)')
    s.add_argument('--layout', choices=('bv1', 'bv2'), default='bv2',
                   help='recording layout the echoes follow')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--location', type=int, default=0, help='scene number within the seed')
    s.add_argument('--size', type=_size, default=(320, 240), help='WIDTHxHEIGHT')
    s.add_argument('--rate', type=float, default=5.0, help='frame rate (Hz) of the stamps')
    b = sub.add_parser('batvision', parents=[common], help='BatVision V1/V2 dataset split')
    b.add_argument('--root', required=True, help='dataset root')
    b.add_argument('--layout', choices=('bv1', 'bv2'), default='bv2')
    b.add_argument('--split', choices=('train', 'val', 'test'), default='test')
    b.add_argument('--locations', nargs='*', default=None, help='BV2 locations (default all)')
    b.add_argument('--lead-in', type=int, default=None, help='echo lead-in samples')
    return p


def topics_with_namespace(ns: str) -> BagTopics:
    """Return the default topics under namespace ``ns``."""
    if not ns.strip('/'):
        return BagTopics()
    base = BagTopics()
    prefix = '/' + ns.strip('/')
    return BagTopics(**{k: prefix + v for k, v in base.__dict__.items()})


def main(argv: Optional[List[str]] = None) -> int:
    """Write the bag; return 0 on success, 2 on bad input."""
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    try:
        if args.source == 'sim':
            info, frames = simulated_frames(
                args.frames, family=args.family, layout=args.layout, seed=args.seed,
                location=args.location, width=args.size[0], height=args.size[1],
                rate_hz=args.rate, max_depth=args.max_depth)
            total = args.frames
        else:
            info, total, frames = batvision_frames(args.root, args.layout, args.split,
                                                   args.locations, args.max_depth, args.lead_in)
        with BagWriter(args.out, args.storage, topics_with_namespace(args.namespace)) as w:
            w.set_echo_info(info)
            for f in tqdm(frames, total=total, desc='write', unit='frame', disable=args.quiet):
                w.write_frame(f.stamp_ns, f.rgb, f.echo, f.ground_truth, f.k, args.gt_encoding)
    except (AvsInputError, OSError) as e:
        print(f'avs_write_bag: error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {w.count} messages to {os.path.abspath(args.out)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
