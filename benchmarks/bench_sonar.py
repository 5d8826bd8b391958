"""Sonar engine costs: the audio callback, echo alignment + cutting, and echo delivery delay.

Prints:

- the audio callback's work per block (chirp scheduling + ring write), which must stay far
  below the block period (512 frames at 44.1 kHz = 11.6 ms);
- direct-path alignment + cutting per chirp, with the latency unknown (search over
  max_latency) and known (search around it);
- on the simulated-room backend in real time with a 30 Hz camera: the echo rate reached
  against the rate limit, and the delay from the last sample of an echo window being
  recorded to the echo being handed over (worker wake-up + alignment + cutting).
"""

import argparse
import statistics
import threading
import time

from avs_net_ros.audio.echo import cut_recording, recording_span
from avs_net_ros.audio.engine import _Stream, SonarEngine
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.audio.simroom import SceneRoom, SimulatedRoomBackend
from avs_net_ros.sim.rig import CameraPose
import numpy as np


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def bench_callback(settings: SonarSettings, blocks: int, blocksize: int) -> None:
    """Time the engine's per-block callback work."""
    stream = _Stream(settings, settings.emission(), 0)
    engine = SonarEngine(settings, None, lambda r: None)
    process = engine._make_process(stream)
    indata = np.zeros((blocksize, settings.input_channels), np.float32)
    outdata = np.zeros((blocksize, settings.num_output_channels), np.float32)
    times = []
    for i in range(blocks):
        if i % 5 == 0:
            stream.scheduler.request(i)
        t0 = time.perf_counter()
        process(indata, outdata, False)
        times.append(time.perf_counter() - t0)
    period_ms = 1000 * blocksize / settings.sample_rate
    print(f'callback per {blocksize}-frame block: median {1e6 * statistics.median(times):.1f} '
          f'us, p99 {1e6 * _pct(times, 99):.1f} us (block period {period_ms:.1f} ms; '
          f'{stream.scheduler.emitted} chirps placed)')


def bench_cut(settings: SonarSettings, repeats: int) -> None:
    """Time alignment + cutting with the latency unknown and known."""
    chirp = settings.chirp_waveform()
    rng = np.random.default_rng(0)
    for label, latency in (('unknown', None), ('known', 1029)):
        before, after = recording_span(settings, latency, 32)
        x = rng.normal(0, 1e-3, (2, before + after)).astype(np.float32)
        x[:, before + 1029:before + 1029 + chirp.size] += chirp
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            cut = cut_recording(x, chirp, settings, latency, 32)
            times.append(time.perf_counter() - t0)
        assert cut.latency == 1029
        print(f'align + cut, latency {label} ({x.shape[1]} samples recorded, window '
              f'{settings.window}): median {1e3 * statistics.median(times):.2f} ms, p95 '
              f'{1e3 * _pct(times, 95):.2f} ms')


def bench_sim(settings: SonarSettings, seconds: float) -> None:
    """Run the engine on the simulated room in real time with a 30 Hz camera."""
    backend = SimulatedRoomBackend(SceneRoom(), CameraPose(3.0, 2.0, 1.5, 0.0),
                                   latency_samples=256, noise_level=0.002)
    delays, echoes = [], []
    t_start = [0.0]

    def on_echo(r):
        now = time.monotonic()
        last = r.onset_sample - settings.lead_in_samples + settings.window
        delays.append(now - (t_start[0] + last / settings.sample_rate))
        echoes.append(r)

    engine = SonarEngine(settings, backend, on_echo)
    stop = threading.Event()

    def camera():
        i = 0
        while not stop.wait(1 / 30):
            engine.request(i)
            i += 1

    t_start[0] = time.monotonic()
    engine.start()
    cam = threading.Thread(target=camera, daemon=True)
    cam.start()
    time.sleep(seconds)
    stop.set()
    cam.join()
    engine.stop()
    steady = delays[1:] or delays
    # From the second echo on: the first chirp is spaced wider while the latency is unknown.
    e = echoes[1:]
    rate = (len(e) - 1) / ((e[-1].emission_sample - e[0].emission_sample)
                           / settings.sample_rate) if len(e) > 1 else 0.0
    print(f'sim room, 30 Hz camera, {seconds:g} s: {len(echoes)} echoes, {rate:.2f} echoes/s '
          f'(limit {settings.rate_limit:.2f}/s); window-complete -> echo delay median '
          f'{1e3 * statistics.median(steady):.1f} ms, max {1e3 * max(steady):.1f} ms '
          f'(clock offset of the simulated stream start included)')


def main() -> None:
    """Run the benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--max-range', type=float, default=30.0)
    parser.add_argument('--blocks', type=int, default=5000)
    parser.add_argument('--blocksize', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=200)
    parser.add_argument('--seconds', type=float, default=5.0)
    args = parser.parse_args()
    settings = SonarSettings(max_range=args.max_range)
    print(f'settings: {settings.sample_rate} Hz, window {settings.window} samples '
          f'({args.max_range:g} m), max_latency {settings.max_latency_samples} samples')
    bench_callback(settings, args.blocks, args.blocksize)
    bench_cut(settings, args.repeats)
    bench_sim(settings, args.seconds)


if __name__ == '__main__':
    main()
