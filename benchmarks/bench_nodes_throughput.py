r"""Throughput of the depth_inference node over DDS: 30 Hz camera frames in, metric depth out.

Starts ``depth_inference`` as its own process (loopback DDS, the package's Fast DDS profile)
and drives it from this process like a camera plus chirp emitter would: rgb8 frames and
camera_info at ``--rate`` Hz, and every ``--echo-every``-th frame an echo stamped with that
frame, published ``--echo-delay`` s later (the acoustic round trip). Prints the achieved output
rate, end-to-end latency (frame stamp to depth/metric received, p50/p95/max), the node's CPU
use and its memory (RSS) growth between the end of the warm-up and the end of the run.

    python -m benchmarks.bench_nodes_throughput --seconds 20
    python -m benchmarks.bench_nodes_throughput --avs artifacts/models/avs_av.onnx \\
        --relative artifacts/models/relative.onnx --visual artifacts/models/avs_v.onnx \\
        --camera 480x640 --seconds 300          # a long run for the memory figure

Without --avs, tiny contract-following stand-in models are written with the onnx package
(one convolution each), so the figures measure the node itself: conversion, pairing,
scaling, publishing and DDS, not a real network.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

from avs_net_ros.core.acoustics import echo_window_samples
from avs_net_ros.core.contract import (DEPTH_OUTPUT, ECHO_INPUT, EchoContract, IMAGE_INPUT,
                                       KIND_AV, KIND_RELATIVE, KIND_V, ModelContract,
                                       read_onnx_contract, RELATIVE_OUTPUT)
from avs_net_ros.core.spectrogram import EchoFeatureConfig
from avs_net_ros.messages import (array_to_image, echo_to_frame, EchoInfo, header_copy,
                                  ns_to_stamp, stamp_to_ns)
from avs_net_ros.ros.session import interrupt
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'avs_net_ros')
SR = 44100


def _standin(path: str, kind: str, size=(256, 256), spec=(256, 256)) -> str:
    """Write a one-convolution model with the contract of ``kind`` (no torch needed)."""
    import onnx
    from onnx import helper, TensorProto

    rng = np.random.default_rng(0)
    w = helper.make_tensor('w', TensorProto.FLOAT, [1, 3, 3, 3],
                           (rng.standard_normal(27) * 0.2).astype(np.float32).tolist())
    nodes = [helper.make_node('Conv', [IMAGE_INPUT, 'w'], ['c'], pads=[1, 1, 1, 1]),
             helper.make_node('Softplus', ['c'], ['s']),
             helper.make_node('Add', ['s', 'offset'], ['y'])]
    inits = [w, helper.make_tensor('offset', TensorProto.FLOAT, [], [0.5])]
    inputs = [helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.FLOAT, ['b', 3, *size])]
    echo = None
    if kind == KIND_AV:
        inputs.append(helper.make_tensor_value_info(ECHO_INPUT, TensorProto.FLOAT,
                                                    ['b', 2, *spec]))
        nodes += [helper.make_node('ReduceMean', [ECHO_INPUT], ['m'], keepdims=1),
                  helper.make_node('Add', ['m', 'one'], ['g']),
                  helper.make_node('Mul', ['y', 'g'], ['out'])]
        inits.append(helper.make_tensor('one', TensorProto.FLOAT, [], [1.0]))
        feats = EchoFeatureConfig(window_samples=echo_window_samples(12.0, SR), spec_size=spec)
        echo = EchoContract(feats, 12.0, 340.0, 0)
    else:
        nodes.append(helper.make_node('Identity', ['y'], ['out']))
    out_name = RELATIVE_OUTPUT if kind == KIND_RELATIVE else DEPTH_OUTPUT
    nodes[-1].output[0] = out_name
    graph = helper.make_graph(nodes, kind, inputs, [helper.make_tensor_value_info(
        out_name, TensorProto.FLOAT, ['b', 1, *size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    contract = (ModelContract(kind, size, relative_output='depth') if kind == KIND_RELATIVE
                else ModelContract(kind, size, 0.1, 12.0, echo))
    for k, v in contract.to_metadata().items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, path)
    return path


def _rss_kib(pid: int) -> int:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _pct(values: List[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float('nan')


def main() -> None:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--avs', help='AVS-Net ONNX (AV); default: a one-convolution stand-in')
    p.add_argument('--relative', help='relative-depth ONNX (default: stand-in)')
    p.add_argument('--visual', help='visual-only AVS-Net ONNX (default: stand-in)')
    p.add_argument('--camera', default='480x640', help='camera resolution HxW')
    p.add_argument('--rate', type=float, default=30.0, help='camera frames per second')
    p.add_argument('--echo-every', type=int, default=3, help='an echo every n-th frame')
    p.add_argument('--echo-delay', type=float, default=0.08, help='echo round trip (s)')
    p.add_argument('--seconds', type=float, default=20.0, help='measured duration')
    p.add_argument('--warmup', type=float, default=3.0, help='seconds before measuring')
    p.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    p.add_argument('--echo-wait', type=float, default=0.0, help='node echo_wait (s)')
    p.add_argument('--providers', default='cpu')
    p.add_argument('--domain', type=int, default=99, help='ROS_DOMAIN_ID (90-99)')
    args = p.parse_args()
    h, w = (int(v) for v in args.camera.split('x'))
    tmp = tempfile.mkdtemp(prefix='avs_bench_')
    # The node runs in its own working directory: give it absolute paths.
    for key in ('avs', 'relative', 'visual'):
        if getattr(args, key):
            setattr(args, key, os.path.abspath(getattr(args, key)))
    models = {'avs': args.avs or _standin(os.path.join(tmp, 'av.onnx'), KIND_AV),
              'relative': args.relative or _standin(os.path.join(tmp, 'rel.onnx'),
                                                    KIND_RELATIVE),
              'visual': args.visual or _standin(os.path.join(tmp, 'v.onnx'), KIND_V)}

    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               FASTRTPS_DEFAULT_PROFILES_FILE=os.path.join(PACKAGE, 'config',
                                                           'fastdds_localhost.xml'),
               PYTHONPATH=os.pathsep.join([PACKAGE, os.environ.get('PYTHONPATH', '')]))
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'FASTRTPS_DEFAULT_PROFILES_FILE')})
    cmd = [sys.executable, '-m', 'avs_net_ros.ros.depth_inference', '--ros-args',
           '-p', f'avs_model:={models["avs"]}', '-p', f'relative_model:={models["relative"]}',
           '-p', f'visual_model:={models["visual"]}', '-p', f'providers:=[{args.providers}]',
           '-p', f'intra_op_threads:={args.threads}', '-p', f'echo_wait:={args.echo_wait}',
           '-p', 'echo_timeout:=1.0']
    node_proc = subprocess.Popen(cmd, cwd=PACKAGE, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
    try:
        _drive(args, h, w, node_proc, read_onnx_contract(models['avs']))
    finally:
        interrupt(node_proc, timeout=20)


def _drive(args: argparse.Namespace, h: int, w: int, node_proc: subprocess.Popen,
           contract: ModelContract) -> None:
    from avs_net_msgs.msg import EchoFrame
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from tqdm import tqdm

    rclpy.init()
    node = rclpy.create_node('avs_bench_driver')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub_img = node.create_publisher(Image, 'image', qos_profile_sensor_data)
    pub_info = node.create_publisher(CameraInfo, 'camera_info', qos_profile_sensor_data)
    pub_echo = node.create_publisher(EchoFrame, 'echoes', reliable)
    lock = threading.Lock()
    received: Dict[str, List[float]] = {'metric': [], 'pseudo': []}
    latency: List[float] = []
    measuring = threading.Event()

    def on_metric(msg: Image) -> None:
        now = time.time_ns()
        if measuring.is_set():
            with lock:
                received['metric'].append(now)
                latency.append((now - stamp_to_ns(msg.header.stamp)) * 1e-6)

    def on_pseudo(msg: Image) -> None:
        if measuring.is_set():
            with lock:
                received['pseudo'].append(time.time_ns())

    node.create_subscription(Image, 'depth/metric', on_metric, reliable)
    node.create_subscription(Image, 'depth/pseudo_dense', on_pseudo, reliable)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
    # Echoes as the AV model's contract wants them (window, lead-in, range, sample rate).
    ec = contract.echo
    echo = (rng.standard_normal((2, ec.features.window_samples + ec.lead_in_samples + 100))
            * 0.05).astype(np.float32)
    echo_info = EchoInfo(ec.features.sample_rate, 2, echo.shape[1], ec.lead_in_samples,
                         ec.speed_of_sound, ec.echo_max_depth, backend='benchmark')
    deadline = time.monotonic() + 60
    while pub_img.get_subscription_count() < 1 or node.count_publishers('depth/metric') < 1:
        if node_proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit('depth_inference did not start:\n' + node_proc.stderr.read())
        time.sleep(0.05)

    period = 1.0 / args.rate
    pending = []  # (due, echo message)
    sent = tick = 0
    total = args.warmup + args.seconds
    start = time.monotonic()
    bar = tqdm(total=int(total), unit='s', desc='driving depth_inference')
    rss0 = cpu0 = t_measure = None
    rss_samples = []
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= total:
            break
        if t_measure is None and elapsed >= args.warmup:
            t_measure, cpu0, rss0 = now, _cpu_seconds(node_proc.pid), _rss_kib(node_proc.pid)
            load0 = os.getloadavg()[0]
            sent = 0
            measuring.set()
        header_ns = time.time_ns()
        img = array_to_image(frames[tick % 4], 'rgb8')
        ns_to_stamp(header_ns, img.header.stamp)
        img.header.frame_id = 'camera_optical'
        info = CameraInfo(header=img.header, height=h, width=w)
        pub_info.publish(info)
        pub_img.publish(img)
        if tick % args.echo_every == 0:
            pending.append((now + args.echo_delay, echo_to_frame(
                echo, echo_info, header_copy(img.header, 'speaker_link'))))
        sent += 1
        while pending and pending[0][0] <= time.monotonic():
            pub_echo.publish(pending.pop(0)[1])
        if int(elapsed) > bar.n:
            bar.update(int(elapsed) - bar.n)
            if t_measure is not None:
                rss_samples.append(_rss_kib(node_proc.pid))
        tick += 1
        time.sleep(max(0.0, start + tick * period - time.monotonic()))  # no drift
    measuring.clear()
    t_end = time.monotonic()
    cpu1, rss1 = _cpu_seconds(node_proc.pid), _rss_kib(node_proc.pid)
    load1 = os.getloadavg()[0]
    bar.close()
    dur = t_end - t_measure
    with lock:
        n_out, n_pseudo, lat = len(received['metric']), len(received['pseudo']), list(latency)
    print(f'\ncamera {h}x{w} rgb8 at {args.rate:g} Hz for {dur:.1f} s, an echo every '
          f'{args.echo_every} frames ({args.echo_delay * 1e3:.0f} ms after its frame)')
    print(f'load average (1 min):   {load0:.2f} at the start, {load1:.2f} at the end')
    print(f'frames sent:            {sent} ({sent / dur:.1f} Hz)')
    print(f'depth/metric received:  {n_out} ({n_out / dur:.1f} Hz, '
          f'{100.0 * n_out / max(sent, 1):.1f} % of frames)')
    print(f'echo frames processed:  {n_pseudo} ({n_pseudo / dur:.1f} Hz)')
    print(f'latency stamp->metric:  p50 {_pct(lat, 0.5):.1f} ms, p95 {_pct(lat, 0.95):.1f} ms, '
          f'max {max(lat) if lat else float("nan"):.1f} ms')
    print(f'node CPU:               {100.0 * (cpu1 - cpu0) / dur:.0f} % of one core '
          f'({os.cpu_count()} cores)')
    growth = rss1 - rss0
    print(f'node RSS:               {rss0 / 1024:.1f} MiB after warm-up, {rss1 / 1024:.1f} MiB '
          f'at the end, growth {growth / 1024:+.2f} MiB over {dur:.0f} s '
          f'(min {min(rss_samples) / 1024:.1f}, max {max(rss_samples) / 1024:.1f} MiB)')
    half = rss_samples[len(rss_samples) // 2:]
    quarters = [rss_samples[min(len(rss_samples) - 1, int(q * len(rss_samples)))] / 1024
                for q in (0.25, 0.5, 0.75, 1.0)]
    print(f'node RSS second half:   growth {(half[-1] - half[0]) / 1024:+.2f} MiB; at '
          '25/50/75/100 %: ' + ', '.join(f'{v:.1f}' for v in quarters) + ' MiB')
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    main()
