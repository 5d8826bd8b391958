"""The sonar engine on the simulated-room backend (real pyroomacoustics rooms via avs_net_ros.sim).

The simulated device is clocked like a sound card (here 4x real time): what the engine plays is
convolved with the room's binaural impulse responses at the camera pose and recorded one block
plus a configurable latency later.
"""

import threading

from audio_fixtures import wait_for
from avs_net_ros.audio.engine import SonarEngine
from avs_net_ros.audio.health import ERROR, OK, WARN
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.audio.simroom import SceneRoom, SimulatedRoomBackend
from avs_net_ros.sim.acoustics import AcousticConfig, first_echo_delays, path_delay_samples
from avs_net_ros.sim.rig import CameraPose, RigGeometry
from avs_net_ros.sim.scene import shoebox
import numpy as np
import pytest
from scipy import signal

POSE = CameraPose(2.0, 1.5, 1.4, 0.0)
SETTINGS = SonarSettings(max_range=6.0, lead_in_samples=64, reverb_guard=0.02,
                         max_latency=0.1)


@pytest.fixture(scope='module')
def room():
    # Omni rig: the strongest arrival is the direct path, whatever the heading.
    return SceneRoom(shoebox(5.0, 3.0, 2.8), rig=RigGeometry(speaker_directivity='omni'),
                     config=AcousticConfig(max_order=4), gain=0.2)


class Run:
    """An engine on a simulated room that collects echoes and info."""

    def __init__(self, room, settings=SETTINGS, **backend_kwargs):
        backend_kwargs.setdefault('speed', 4.0)
        self.backend = SimulatedRoomBackend(room, POSE, **backend_kwargs)
        self.echoes, self.infos = [], []
        self.lock = threading.Lock()
        self.engine = SonarEngine(settings, self.backend, self._echo, self.infos.append,
                                  reconnect_period=0.2)
        self._stop = threading.Event()
        self._camera = threading.Thread(target=self._frames, daemon=True)

    def _echo(self, result):
        with self.lock:
            self.echoes.append(result)

    def _frames(self):
        i = 0
        while not self._stop.wait(0.005):  # a 200 Hz "camera": far faster than allowed
            self.engine.request(i)
            i += 1

    def __enter__(self):
        self.engine.start()
        self._camera.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._camera.join(2)
        self.engine.stop()

    def wait_echoes(self, n, timeout=20.0):
        wait_for(lambda: len(self.echoes) >= n, timeout, f'{n} echoes')
        with self.lock:
            return list(self.echoes)


def _peak_near(x, chirp, at, tol=3):
    """Return (matched-filter value near ``at``, median of the filter) for one channel."""
    corr = np.abs(signal.correlate(x, chirp, mode='valid'))
    return corr[max(0, at - tol):at + tol + 1].max(), np.median(corr)


def test_echo_timing_follows_room_geometry(room):
    with Run(room, latency_samples=300) as run:
        echoes = run.wait_echoes(3)
    s = SETTINGS
    chirp = s.chirp_waveform()
    speaker, mics = room.rig.positions(POSE)
    direct = [path_delay_samples(np.linalg.norm(speaker - mics[:, m]), room.config)
              for m in range(2)]
    for r in echoes:
        assert r.echo.shape == (2, s.window) and r.echo.dtype == np.float32
        # Device latency = one block + the configured 300 + speaker-to-ear flight time.
        assert abs(r.latency - (512 + 300 + min(direct))) <= 2
    # The first wall echo sits (echo delay - direct delay) after the direct path (at the
    # lead-in), in each ear: echo times are measured from the direct path.
    walls = first_echo_delays(room.scene, POSE, room.rig, room.config)
    e = echoes[-1].echo
    onset = s.lead_in_samples - int(round(min(direct)))
    for m in range(2):
        peak, noise = _peak_near(e[m], chirp, onset + int(round(walls[m])))
        assert peak > 10 * noise, f'ear {m}: no wall echo where the geometry puts it'
    # Pacing: once the latency is known chirps come exactly one period apart, never closer.
    starts = [r.emission_sample for r in echoes]
    assert np.diff(starts[1:]).min() >= s.period_samples
    assert all(b > a for a, b in zip([r.tag for r in echoes], [r.tag for r in echoes][1:]))
    assert run.infos[-1]['alignment']['latency_samples'] == echoes[-1].latency


def test_echo_is_independent_of_device_latency(room):
    cuts = {}
    for latency in (0, 700):
        with Run(room, latency_samples=latency) as run:
            cuts[latency] = run.wait_echoes(1)[0]
    assert cuts[700].latency - cuts[0].latency == 700
    np.testing.assert_allclose(cuts[700].echo, cuts[0].echo, atol=1e-6)


def test_faults_are_reported_and_the_engine_keeps_going(room):
    state = {'nan': False}

    def corrupt(block):
        if state['nan']:
            block[::7, 0] = np.nan
        return block

    with Run(room, corrupt=corrupt) as run:
        run.wait_echoes(1)
        assert run.engine.status().level == OK
        # NaN from the device: reported, no echo published for those chirps.
        state['nan'] = True
        wait_for(lambda: run.engine.health.counts.get('nan', 0) >= 2, 10, 'NaN reports')
        n = len(run.echoes)
        st = run.engine.status()
        assert st.level == WARN and 'NaN' in st.message
        state['nan'] = False
        run.wait_echoes(n + 2)
        # Clipping: the ADC saturates; reported, the echo is still published.
        run.backend.input_gain = 40.0
        wait_for(lambda: run.engine.health.counts.get('clipped', 0) >= 1, 10, 'clip report')
        assert np.abs(run.echoes[-1].echo).max() >= SETTINGS.clip_level
        # Noise far above the chirp: no direct path, no echo; recovery when it is quiet.
        run.backend.input_gain = 1.0
        run.backend.noise_level = 2.0
        wait_for(lambda: run.engine.health.counts.get('no_direct_path', 0) >= 3, 10,
                 'missing direct path reports')
        n = len(run.echoes)
        assert 'without a direct path' in run.engine.status().message
        run.backend.noise_level = 0.0
        run.wait_echoes(n + 2)
        assert all(np.all(np.isfinite(r.echo)) for r in run.echoes)


def test_lost_device_is_reported_and_reopened(room):
    state = {'fail': False}

    def corrupt(block):
        if state['fail']:
            state['fail'] = False
            raise OSError('device unplugged')
        return block

    with Run(room, corrupt=corrupt) as run:
        run.wait_echoes(1)
        state['fail'] = True
        wait_for(lambda: run.engine.health.counts.get('restarts', 0) >= 1, 10, 'a reopen')
        assert run.engine.health.counts['device_error'] >= 1
        assert 'device unplugged' in run.engine.status().values['last_error']
        n = len(run.echoes)
        run.wait_echoes(n + 2)
        assert run.engine.status().level in (OK, WARN)
    assert run.engine.status().level == ERROR  # stopped
