"""Fixtures for the audio and chirp-emitter tests: real audio servers and a private ROS domain.

Audio servers are started with scripts/audio_server.sh in a per-test temporary directory (so
parallel runs do not meet) and always stopped by the fixture, by PID, even when the test
fails. Their client environment is applied to this process while the fixture is active, so
PortAudio (after a device re-scan) sees the server.

ROS helpers keep traffic on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, the
package's Fast DDS profile) on domain ids 80-89, which the audio/emitter tests own.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

from avs_net_ros.audio.duplex import SoundDeviceBackend
from avs_net_ros.audio.engine import SonarEngine
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.ros.session import interrupt
import numpy as np
import pytest
from ros_fixtures import Collector, REPO, ROOT, ros_env, wait_for  # noqa: F401 (re-exported)

AUDIO_SERVER = os.path.join(REPO, 'scripts', 'audio_server.sh')
FASTDDS_PROFILE = os.path.join(ROOT, 'config', 'fastdds_localhost.xml')
_ENV_LINE = re.compile(r"^(?:export )?(\w+)='?([^'\n]*)'?$")


def have(program: str) -> bool:
    """Whether ``program`` is on PATH."""
    return shutil.which(program) is not None


class AudioServer:
    """A PulseAudio null sink or JACK dummy server started by scripts/audio_server.sh."""

    def __init__(self, kind: str, state_dir: str, rate: int = 44100, period: int = 256) -> None:
        """Start the server (raises RuntimeError with the script's output if it fails)."""
        self.kind, self.dir = kind, str(state_dir)
        r = subprocess.run([AUDIO_SERVER, 'start', kind, '--dir', self.dir, '--rate', str(rate),
                            '--period', str(period)], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f'audio_server.sh start {kind} failed: {r.stdout}{r.stderr}')
        self.kind = kind
        self.env: Dict[str, str] = {}
        for line in r.stdout.splitlines():
            m = _ENV_LINE.match(line.strip())
            if m:
                self.env[m.group(1)] = m.group(2)
        self.pid = int(self.env.pop('AUDIO_SERVER_PID'))
        self._saved: Dict[str, Optional[str]] = {}
        # If this process dies without teardown (e.g. a native crash), the reaper stops the
        # server: it waits for this process to go, then runs the stop script.
        self._reaper = subprocess.Popen(
            ['bash', '-c', 'while kill -0 "$0" 2>/dev/null; do sleep 0.5; done; '
             'exec "$1" stop "$2" --dir "$3"', str(os.getpid()), AUDIO_SERVER, kind,
             self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def alive(self) -> bool:
        """Whether the server process still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def apply_env(self) -> None:
        """Point this process's audio clients at the server."""
        for k, v in self.env.items():
            self._saved.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def restore_env(self) -> None:
        """Undo ``apply_env``."""
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved.clear()

    def stop(self) -> None:
        """Stop the server by its PID (the script, then SIGKILL if it is still there)."""
        if self._reaper.poll() is None:
            self._reaper.kill()
            self._reaper.wait(timeout=5)
        subprocess.run([AUDIO_SERVER, 'stop', self.kind, '--dir', self.dir],
                       capture_output=True, text=True, timeout=30)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            end = time.monotonic() + 5
            while self.alive() and time.monotonic() < end:
                time.sleep(0.05)

    def client_env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """Return ``base`` (default os.environ) plus the server's client variables."""
        env = dict(os.environ if base is None else base)
        env.update(self.env)
        return env


@pytest.fixture(name='pulse_server')
def pulse_server_fixture(tmp_path: Any) -> Iterator[AudioServer]:
    """Run a PulseAudio daemon with a 44.1 kHz null sink whose monitor is the default source."""
    if not (have('pulseaudio') and have('pactl')):
        pytest.skip('pulseaudio is not installed (scripts/setup_system.sh installs it)')
    server = AudioServer('pulse', tmp_path / 'pulse')
    server.apply_env()
    try:
        yield server
    finally:
        server.restore_env()
        server.stop()
        assert not server.alive(), f'pulseaudio {server.pid} survived stop'


@pytest.fixture(name='jack_servers')
def jack_servers_fixture(tmp_path: Any) -> Iterator[Callable[[int], AudioServer]]:
    """Yield ``start(period)``, which runs a JACK dummy server (2 in / 2 out, 44.1 kHz).

    Starting another one stops the previous one first; all are stopped at teardown. The
    server's environment is not applied to this process: JACK clients run in child processes
    (``run_sonar_probe``), because PortAudio aborts the process that re-initialises after its
    JACK server stopped.
    """
    if not (have('jackd') and have('jack_connect') and have('jack_lsp')):
        pytest.skip('jackd2 is not installed (scripts/setup_system.sh installs it)')
    started: List[AudioServer] = []

    def start(period: int) -> AudioServer:
        for s in started:
            s.stop()
        server = AudioServer('jack', tmp_path / f'jack{len(started)}', period=period)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for s in started:
            s.stop()
        assert not any(s.alive() for s in started), 'a jackd survived stop'


def wire_jack_loopback(server: Optional[AudioServer] = None,
                       timeout: float = 5.0) -> List[str]:
    """Connect this process's newest PortAudio JACK outputs to its newest inputs, pairwise.

    PortAudio names its ports PortAudio:out_N / in_N, numbering on across the streams of a
    process, so the newest stream owns the highest numbers. Returns the connections made.
    ``server`` None: the server this process's environment points at.
    """
    env = dict(os.environ) if server is None else server.client_env()
    end = time.monotonic() + timeout
    while True:
        ports = subprocess.run(['jack_lsp'], capture_output=True, text=True, env=env,
                               timeout=10).stdout.split()

        def numbered(prefix: str) -> List[str]:
            found = [p for p in ports if p.startswith(prefix)]
            return sorted(found, key=lambda p: int(p.rsplit('_', 1)[1]))

        outs, ins = numbered('PortAudio:out_'), numbered('PortAudio:in_')
        if len(outs) >= 2 and len(ins) >= 2:
            break
        if time.monotonic() > end:
            raise AssertionError(f'PortAudio JACK ports did not appear: {ports}')
        time.sleep(0.05)
    made = []
    for o, i in zip(outs[-2:], ins[-2:]):
        subprocess.run(['jack_connect', o, i], check=True, env=env, timeout=10,
                       capture_output=True)
        made.append(f'{o}->{i}')
    return made


# -- a sonar on a loopback -----------------------------------------------------------------------

LOOP_SETTINGS = SonarSettings(max_range=4.0, lead_in_samples=64, reverb_guard=0.02,
                              max_latency=0.2)
ECHO_DELAY, ECHO_GAIN, RIGHT_EXTRA = 600, 0.3, 9


def emission_with_echo(settings: SonarSettings = LOOP_SETTINGS) -> np.ndarray:
    """Return the chirp plus, ECHO_DELAY samples later, ECHO_GAIN times it (right: later)."""
    chirp = settings.chirp_waveform()
    n = ECHO_DELAY + RIGHT_EXTRA + chirp.size
    out = np.zeros((n, 2), np.float32)
    out[:chirp.size] = chirp[:, None]
    out[ECHO_DELAY:ECHO_DELAY + chirp.size, 0] += ECHO_GAIN * chirp
    d = ECHO_DELAY + RIGHT_EXTRA
    out[d:d + chirp.size, 1] += ECHO_GAIN * chirp
    return out


class LoopbackSonar:
    """A sonar engine playing ``emission_with_echo``, asked for a chirp at 30 Hz."""

    def __init__(self, backend: Any, settings: SonarSettings = LOOP_SETTINGS,
                 warmup: float = 1.0, hold_camera: bool = False) -> None:
        """Prepare the engine (``warmup``: seconds of stream before the first chirp).

        ``hold_camera``: no chirp requests until ``start_camera`` (e.g. until the loopback
        is wired, so that no chirp is cut in half by the wiring).
        """
        self.hold_camera = hold_camera
        self.echoes: List[Any] = []
        self.engine = SonarEngine(settings, backend, self.echoes.append,
                                  emission=emission_with_echo(settings),
                                  reconnect_period=0.3, warmup=warmup)
        self._stop = threading.Event()
        self._camera = threading.Thread(target=self._frames, daemon=True)

    def _frames(self) -> None:
        i = 0
        while not self._stop.wait(1 / 30):  # a 30 Hz camera
            self.engine.request(i)
            i += 1

    def __enter__(self) -> 'LoopbackSonar':
        """Start the engine and, unless ``hold_camera``, the camera thread."""
        self.engine.start()
        if not self.hold_camera:
            self._camera.start()
        return self

    def start_camera(self) -> None:
        """Start asking for chirps (after ``hold_camera``)."""
        self._camera.start()

    def __exit__(self, *exc: Any) -> None:
        """Stop both."""
        self._stop.set()
        self._camera.join(2)
        self.engine.stop()

    def wait_echoes(self, n: int, timeout: float = 20.0) -> List[Any]:
        """Wait for ``n`` echoes and return them."""
        wait_for(lambda: len(self.echoes) >= n, timeout, f'{n} echoes from the audio server')
        return list(self.echoes)


def run_sonar_probe(server: AudioServer, device: str, blocksize: int, n: int,
                    out_path: str, timeout: float = 60.0) -> Dict[str, np.ndarray]:
    """Run a LoopbackSonar on ``server`` in a child process; return its echoes and figures.

    A child process per server: PortAudio's JACK client cannot move to another server in the
    same process (re-initialising it after its server stopped aborts the process).
    """
    r = subprocess.run([sys.executable, os.path.abspath(__file__), device, str(blocksize),
                        str(n), str(out_path)],
                       env=server.client_env({
                           **os.environ, 'JACK_NO_START_SERVER': '1',
                           # this checkout, and the workspace's messages that ros_fixtures uses
                           'PYTHONPATH': os.pathsep.join([ROOT] + [p for p in sys.path if p])}),
                       cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'sonar probe failed ({r.returncode}):\n{r.stdout}{r.stderr}'
    with np.load(out_path) as data:
        return {k: data[k] for k in data.files}


def _probe_main(device: str, blocksize: int, n: int, out_path: str) -> None:
    # JACK streams are exact from their first period: no warm-up needed.
    jack = 'JACK' in device
    sonar = LoopbackSonar(SoundDeviceBackend(device, blocksize=blocksize),
                          warmup=0.1 if jack else 1.0, hold_camera=jack)
    with sonar:
        if jack:
            made = wire_jack_loopback()
            assert len(made) == 2, made
            sonar.start_camera()
        echoes = sonar.wait_echoes(n)
    np.savez(out_path, echoes=np.stack([r.echo for r in echoes]),
             latency=np.array([r.latency for r in echoes]),
             emission=np.array([r.emission_sample for r in echoes]),
             peak_ratio=np.array([r.peak_ratio for r in echoes]))


# -- ROS ---------------------------------------------------------------------------------------

class RosTester:
    """A private rclpy context on one domain with a tester node spinning in the background."""

    def __init__(self, domain_id: int) -> None:
        """Initialise rclpy on ``domain_id`` (loopback only) and start spinning."""
        from avs_net_ros.ros.spin import NodeSpinner
        import rclpy
        from rclpy.context import Context
        from rclpy.node import Node

        for k, v in ros_env(domain_id).items():
            if k.startswith(('ROS_', 'FASTRTPS', 'RMW')):
                os.environ[k] = v
        self._rclpy = rclpy
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node('audio_tester', context=self.context)
        self.spinner = NodeSpinner(self.context)
        self.spinner.add(self.node)

    def collect(self, msg_type: Any, topic: str, qos: Any) -> Collector:
        """Subscribe to ``topic`` and return the Collector filling up."""
        c = Collector()
        self.node.create_subscription(msg_type, topic, c, qos)
        return c

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.spinner.shutdown()
        self._rclpy.shutdown(context=self.context)


class NodeProcess:
    """The chirp_emitter node in its own process (its own DDS participant), stopped by PID."""

    def __init__(self, domain_id: int, params: Dict[str, Any], log_path: str,
                 env: Optional[Dict[str, str]] = None) -> None:
        """Start ``python -m avs_net_ros.ros.chirp_emitter`` with ``params``."""
        args = [sys.executable, '-m', 'avs_net_ros.ros.chirp_emitter', '--ros-args']
        for k, v in params.items():
            if isinstance(v, (list, tuple)):
                v = '[' + ','.join(str(x) for x in v) + ']'
            elif isinstance(v, bool):
                v = str(v).lower()
            args += ['-p', f'{k}:={v}']
        base = ros_env(domain_id)
        if env:
            base.update(env)
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(args, cwd=ROOT, env=base, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Return what the node printed so far."""
        with open(self.log_path) as f:
            return f.read()

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; return its code."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGINT (clean shutdown), then SIGKILL after 10 s; by PID only."""
        interrupt(self.proc)
        self._log.close()


if __name__ == '__main__':
    _probe_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
