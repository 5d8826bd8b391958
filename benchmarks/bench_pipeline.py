"""Echo -> metric depth latency of the runtime pipeline, stage by stage.

Runs echo features (STFT + resize), AVS-Net, the relative model and the scale fit on one
camera frame at a time with ONNX Runtime, and prints median and 95th-percentile milliseconds
per stage next to the 12 m acoustic round trip (70 ms), the latency target, with the
load average before and after.

    python -m benchmarks.bench_pipeline --avs artifacts/models/avs_av.onnx \
        --relative artifacts/models/relative.onnx

With ``--models-dir DIR`` the default-size models (``benchmarks.default_models``: AV at
256x256 and a MiDaS-small relative model, fp32 and INT8, random weights) are exported into DIR
if missing and ``--avs`` / ``--relative`` name files in it:

    python -m benchmarks.bench_pipeline --models-dir artifacts/bench_models \
        --avs avs_av_fp32.onnx avs_av_int8.onnx --relative relative_fp32.onnx

Several ``--avs`` files (e.g. an fp32 and an INT8 model, or two versions of one model) are
measured side by side: in alternating blocks of frames, so load from other processes falls on
all alike. ``--compare-spinning`` adds the first one again with ONNX Runtime's idle threads
spin-waiting for work (ONNX Runtime's default; the pipeline's is to let them sleep).

Then the camera-rate path at ``--frame-camera`` (480x640 by default): what the node does for
the camera frames between echoes (``DepthEngine.on_frame``: the relative model, its map
brought to camera resolution as depth, and the filtered scale from the last echo applied),
timed per stage and as a whole, with the relative model of the first ``--avs`` pipeline.
"""

import argparse
import os
import statistics
import time

from avs_net_ros.core.scale import ScaleFit
from avs_net_ros.core.spectrogram import echo_spectrogram
from avs_net_ros.runtime.depth_engine import DepthEngine
from avs_net_ros.runtime.memory import keep_freed_memory
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
import numpy as np


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--avs', nargs='+', default=['artifacts/models/avs_av.onnx'],
                   help='AVS-Net ONNX file(s) (AV); several are timed side by side')
    p.add_argument('--relative', default='artifacts/models/relative.onnx',
                   help='relative-depth ONNX')
    p.add_argument('--camera', default='720x1280', help='camera resolution HxW')
    p.add_argument('--frame-camera', default='480x640',
                   help='camera resolution HxW of the camera-rate path (frames between echoes)')
    p.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    p.add_argument('--repeats', type=int, default=30)
    p.add_argument('--providers', nargs='+', default=['cpu'])
    p.add_argument('--models-dir', help='export the default-size models here (if missing); '
                                        '--avs and --relative then name files in it')
    p.add_argument('--calib-root', help='with --models-dir: calibrate INT8 on this root')
    p.add_argument('--compare-spinning', action='store_true',
                   help="also time the first --avs file with ONNX Runtime's idle threads "
                        'spin-waiting (its own default; the pipeline lets them sleep)')
    p.add_argument('--default-malloc', action='store_true',
                   help="leave glibc's allocator settings alone (see runtime.memory)")
    args = p.parse_args()
    print('allocator: ' + ('glibc defaults' if args.default_malloc or not keep_freed_memory()
                           else 'freed memory kept (runtime.memory)'))
    if args.models_dir:
        from benchmarks.default_models import ensure_default_models
        ensure_default_models(args.models_dir, args.calib_root)
        args.avs = [os.path.join(args.models_dir, a) for a in args.avs]
        args.relative = os.path.join(args.models_dir, args.relative)
    h, w = (int(v) for v in args.camera.split('x'))
    runs = [(a, False) for a in args.avs]
    if args.compare_spinning:
        runs.append((args.avs[0], True))
    pipes = [MetricDepthPipeline(a, args.relative, args.providers, intra_op_threads=args.threads,
                                 intra_op_spinning=spin) for a, spin in runs]
    c = pipes[0].avs.contract
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    n = c.echo.features.window_samples if c.takes_echo else 0
    echo = (rng.standard_normal((2, max(n, 1))) * 0.05).astype(np.float32)
    sr = c.echo.features.sample_rate if c.takes_echo else None
    names = {'echo features': 'echo features (STFT)', 'avs': 'AVS-Net (incl. features)',
             'relative': 'relative model', 'scale': 'scale fit (model grid)',
             'upsample': 'to camera res + apply', 'total': 'total pipeline.infer'}
    stages = [{k: [] for k in names} for _ in pipes]
    load0 = os.getloadavg()
    rounds = min(3, args.repeats)
    for r in range(rounds):
        for pipe, st in zip(pipes, stages):
            # Blocks, not alternate frames: each session's threads spin for a while after a
            # run and would slow the other pipeline's next frame.
            for i in range(args.repeats // rounds + (3 if r == 0 else 1)):
                t0 = time.perf_counter()
                if c.takes_echo:
                    echo_spectrogram(echo, pipe.avs.contract.echo.features, sr)
                t1 = time.perf_counter()
                res = pipe.infer(rgb, echo if c.takes_echo else None, sr)
                t2 = time.perf_counter()
                if i < (3 if r == 0 else 1):
                    continue  # warm-up
                st['echo features'].append((t1 - t0) * 1e3)
                for k, v in res.timings.items():
                    st[k].append(v * 1e3)
                st['total'].append((t2 - t1) * 1e3)
    load1 = os.getloadavg()
    print(f'camera {h}x{w}; relative {args.relative}; providers {pipes[0].active_providers}; '
          f'{args.threads} threads, idle threads sleep (no spinning, the pipeline default); '
          f'{len(stages[0]["total"])} frames each; load average (1 min) '
          f'{load0[0]:.2f} before, {load1[0]:.2f} after')
    for (path, spin), pipe, st in zip(runs, pipes, stages):
        a = pipe.avs.contract
        print(f'{path} ({a.kind}, {a.image_size[0]}x{a.image_size[1]})'
              + (", ONNX Runtime's idle threads spinning" if spin else '') + ':')
        for k, v in st.items():
            if v:
                print(f'  {names[k]:26s} p50 {statistics.median(v):7.2f} ms   '
                      f'p95 {_pct(v, 0.95):7.2f} ms')
        total = statistics.median(st['total'])
        print(f'  target: below the 12 m acoustic round trip, 70 ms -> '
              f'{"met" if total < 70 else "NOT met"} ({total:.1f} ms)')
    if pipes[0].relative is not None:
        camera_rate(pipes[0], args.frame_camera, args.repeats, rgb, echo, sr)


def camera_rate(pipe: MetricDepthPipeline, camera: str, repeats: int, rgb_echo: np.ndarray,
                echo: np.ndarray, sr) -> None:
    """Time ``DepthEngine.on_frame`` (frames between echoes) and its stages; print them."""
    h, w = (int(v) for v in camera.split('x'))
    engine = DepthEngine(pipe, fallback='last_scale', echo_timeout=1e9)
    engine.on_echo(rgb_echo, echo if pipe.takes_echo else None, sr, 0.0)
    rgb = np.random.default_rng(1).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    names = ('relative model (incl. resize)', 'to camera res as depth', 'filtered scale applied',
             'total DepthEngine.on_frame')
    times = {k: [] for k in names}
    load0 = os.getloadavg()
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        raw = pipe.run_relative(rgb)
        t1 = time.perf_counter()
        rel = pipe.relative_to_camera(raw, (h, w))
        t2 = time.perf_counter()
        ScaleFit(pipe.scale_method, 'depth', engine.filter.value(float(i))).apply(rel)
        t3 = time.perf_counter()
        out = engine.on_frame(rgb, float(i))
        t4 = time.perf_counter()
        if i < 3:
            continue  # warm-up
        for k, v in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[k].append(v * 1e3)
    assert out.metric is not None and out.metric.shape == (h, w)
    load1 = os.getloadavg()
    total = statistics.median(times[names[-1]])
    print(f'camera-rate path (frames between echoes), camera {h}x{w}, {pipe.relative.path}; '
          f'{repeats} frames; load average (1 min) {load0[0]:.2f} before, {load1[0]:.2f} after')
    for k, v in times.items():
        print(f'  {k:30s} p50 {statistics.median(v):7.2f} ms   p95 {_pct(v, 0.95):7.2f} ms')
    print(f'  at most {1000.0 / total:.1f} frames per second of metric depth')


if __name__ == '__main__':
    main()
