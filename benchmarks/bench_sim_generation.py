"""Benchmark the simulator: per-frame render/echo cost and dataset generation throughput.

Usage::

    python benchmarks/bench_sim_generation.py [--instances 40] [--workers N] [--layout bv2]

Prints per-frame timings (render at 256x192 and at the layout's resolution, impulse responses,
a cached recording, the stereo validity mask) over sampled scenes, then generates
``--instances`` instances with the generator (default resolution, all cores) into a temporary
folder and prints instances/s and the projected time for a 2000-instance BV2-like set.
"""

import argparse
import os
import tempfile
import time

from avs_net_ros.datasets.generate import DEFAULT_FAMILY, DEFAULT_SIZE, generate
from avs_net_ros.datasets.simulate import acoustic_config
from avs_net_ros.sim.families import get_family, sample_scene, sample_trajectory
from avs_net_ros.sim.world import SimulatedWorld
import numpy as np


def _time(fn, repeat):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return 1000 * float(np.median(out))


def main() -> None:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--layout', choices=('bv2', 'bv1'), default='bv2')
    p.add_argument('--instances', type=int, default=40)
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--scenes', type=int, default=6)
    args = p.parse_args()
    family = get_family(DEFAULT_FAMILY[args.layout])
    width, height = DEFAULT_SIZE[args.layout]
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(args.scenes):
        scene = sample_scene(family, rng)
        pose = sample_trajectory(family, scene, 2, rng)[-1]
        world = SimulatedWorld(scene, acoustics=acoustic_config(args.layout))
        small = world.intrinsics(256, 192)
        full = world.intrinsics(width, height)
        rgb, depth, _ = world.render(pose, intrinsics=full)
        rows.append((
            _time(lambda: world.render(pose, intrinsics=small), 5),
            _time(lambda: world.render(pose, intrinsics=full), 2),
            _time(lambda: SimulatedWorld(scene, acoustics=world.acoustics)
                  .impulse_responses(pose), 2),
            _time(lambda: world.record(pose, rng), 5),
            _time(lambda: world.sensor_valid(rgb, depth, full, rng), 3),
        ))
    med = np.median(np.array(rows), axis=0)
    print(f'per frame (median over {args.scenes} {family.name} scenes, 1 core):')
    print(f'  render 256x192            {med[0]:8.1f} ms')
    print(f'  render {width}x{height:<4d}          {med[1]:8.1f} ms')
    print(f'  impulse responses (ISM)   {med[2]:8.1f} ms')
    print(f'  recording, cached RIRs    {med[3]:8.1f} ms')
    print(f'  stereo validity mask      {med[4]:8.1f} ms')
    with tempfile.TemporaryDirectory() as tmp:
        n = args.instances
        t0 = time.perf_counter()
        generate(os.path.join(tmp, 'bench'), args.layout,
                 {'train': n - 2 * (n // 5), 'val': n // 5, 'test': n // 5}, seed=0,
                 family=family, size=(width, height), frames_per_location=10,
                 workers=args.workers)
        dt = time.perf_counter() - t0
    rate = n / dt
    print(f'generation: {n} {args.layout} instances at {width}x{height} with {args.workers} '
          f'workers in {dt:.1f} s = {rate:.2f} instances/s')
    print(f'projected 2000-instance set: {2000 / rate / 60:.1f} min')


if __name__ == '__main__':
    main()
