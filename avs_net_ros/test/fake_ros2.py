"""FAKE ``ros2`` command line, for the replay path that runs ``ros2 bag play`` (tests only).

The ros2 CLI cannot be installed here, so this stand-in takes its place on PATH. It accepts
only ``ros2 bag play`` with the options of rosbag2's play verb that the replay uses, each
declared as rosbag2 declares it (an unknown option exits 2, as argparse does there), records
its argument vector in ``$FAKE_ROS2_LOG``, and plays the bag with the package's own player
(``avs_net_ros.ros.player.BagPlayer``) at the requested rate, publishing /clock at the
requested frequency after the requested delay, and waits for acknowledgements as asked. It
shows that the replay's call is well-formed and that its ros2 branch works end to end; it does
not test rosbag2's player.
"""

import argparse
import json
import os
import sys
import time


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'Value {value} is less than or equal to zero.')
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='ros2 bag play')
    p.add_argument('bag_file')
    p.add_argument('-s', '--storage', default='')
    p.add_argument('-r', '--rate', type=_positive_float, default=1.0)
    p.add_argument('--topics', type=str, default=[], nargs='+')
    p.add_argument('--clock', type=_positive_float, nargs='?', const=40, default=0)
    p.add_argument('-d', '--delay', type=_positive_float, default=0.0)
    p.add_argument('--disable-keyboard-controls', action='store_true')
    p.add_argument('--wait-for-all-acked', type=int, default=-1)
    return p


def main(argv=None) -> int:
    """Play a bag like ``ros2 bag play`` (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    with open(os.environ['FAKE_ROS2_LOG'], 'a') as f:
        f.write(json.dumps(argv) + '\n')
    if argv[:2] != ['bag', 'play']:
        print(f'fake ros2: only "bag play" is implemented, got {argv[:2]}', file=sys.stderr)
        return 2
    args = _parser().parse_args(argv[2:])
    from avs_net_ros.ros.player import BagPlayer
    import rclpy
    from rclpy.duration import Duration

    rclpy.init()
    node = rclpy.create_node('rosbag2_player')
    try:
        player = BagPlayer(node, args.bag_file, args.topics or None, args.rate,
                           clock_hz=args.clock)
        time.sleep(args.delay)
        player.play()
        if args.wait_for_all_acked >= 0:  # as rosbag2: reliable publishers only, 0 = forever
            timeout = (Duration(nanoseconds=-1) if args.wait_for_all_acked == 0
                       else Duration(nanoseconds=args.wait_for_all_acked * 1_000_000))
            for pub in player.publishers.values():
                pub.wait_for_all_acked(timeout)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
