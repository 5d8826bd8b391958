"""The sonar engine on real audio servers: PulseAudio null sink and JACK dummy loopbacks.

With a loopback the recording is what was played, after the device latency. To have an echo as
well, these tests play the chirp plus a delayed, attenuated copy of it (the 'echo'); the
matched filter only knows the chirp. Each server is started and stopped (by PID) by the
fixtures in audio_fixtures.py.
"""

from audio_fixtures import (AudioServer, ECHO_DELAY, ECHO_GAIN, LOOP_SETTINGS, LoopbackSonar,
                            RIGHT_EXTRA, ROOT, run_sonar_probe)
from audio_fixtures import jack_servers_fixture, pulse_server_fixture  # noqa: F401 - fixtures
from avs_net_ros.audio.duplex import AudioDeviceError, find_device, SoundDeviceBackend
from avs_net_ros.audio.engine import SonarEngine
import numpy as np
import pytest
from scipy import signal

S = LOOP_SETTINGS


def check_echo_exact(echo):
    """Direct path at the lead-in, the 'echo' ECHO_DELAY later, gains exact, sample for sample."""
    chirp = S.chirp_waveform()
    at = S.lead_in_samples
    assert echo.shape == (2, S.window)
    np.testing.assert_allclose(echo[:, at:at + chirp.size], np.stack([chirp, chirp]),
                               atol=1e-5)
    e = at + ECHO_DELAY
    np.testing.assert_allclose(echo[0, e:e + chirp.size], ECHO_GAIN * chirp, atol=1e-5)
    e += RIGHT_EXTRA
    np.testing.assert_allclose(echo[1, e:e + chirp.size], ECHO_GAIN * chirp, atol=1e-5)


def echo_arrivals(echo):
    """Return per channel [(index, gain)] of the direct path and the strongest later arrival."""
    chirp = S.chirp_waveform()
    energy = float(np.dot(chirp, chirp))
    out = []
    for ch in echo:
        c = np.abs(signal.correlate(ch, chirp, mode='valid'))
        split = S.lead_in_samples + chirp.size
        late = split + int(np.argmax(c[split:]))
        out.append([(int(np.argmax(c[:split])), c[:split].max() / energy),
                    (late, c[late] / energy)])
    return out


def echo_structure_ok(echo):
    """Whether the direct path is at the lead-in and the 'echo' ECHO_DELAY after it."""
    for ch, extra in ((0, 0), (1, RIGHT_EXTRA)):
        (d, g), (e, h) = echo_arrivals(echo)[ch]
        if not (abs(d - S.lead_in_samples) <= 2 and abs(g - 1) < 0.1
                and abs(e - (S.lead_in_samples + ECHO_DELAY + extra)) <= 2
                and abs(h - ECHO_GAIN) < 0.05):
            return False
    return True


def test_pulse_null_sink_recording_contains_the_chirp_and_its_echo(pulse_server):
    with LoopbackSonar(SoundDeviceBackend('pulse')) as sonar:
        echoes = sonar.wait_echoes(6)
        info = sonar.engine.info()
    for r in echoes:
        assert r.peak_ratio > 1000  # the chirp stands far above the loopback's silence
        assert r.latency > 0 and r.clipped == 0 and r.echo.shape == (2, S.window)
    # Direct path at the lead-in, the 'echo' ECHO_DELAY later, with their gains. PulseAudio
    # may slip a few samples within a stream on a loaded machine (the latency then changes by
    # that much; audio_server.sh sets 100 ms client buffers, which keeps chirps intact), so
    # one slip landing inside a chirp is tolerated; JACK (below) is checked sample for
    # sample on every echo.
    intact = [echo_structure_ok(r.echo) for r in echoes]
    assert sum(intact) >= len(echoes) - 1, intact
    assert info['alignment']['latency_samples'] is not None
    assert info['backend'] == 'sounddevice'
    # Pacing: never faster than the echo window plus the reverberation guard.
    starts = [r.emission_sample for r in echoes]
    assert np.diff(starts).min() >= S.period_samples


def test_jack_dummy_echo_timing_is_independent_of_the_device_latency(jack_servers, tmp_path):
    results = {}
    for period in (256, 1024):
        server = jack_servers(period)
        results[period] = run_sonar_probe(server, 'system JACK', 0, 3,
                                          str(tmp_path / f'p{period}.npz'))
        r = results[period]
        assert len(set(r['latency'].tolist())) == 1  # deterministic within a stream
        assert np.all(r['peak_ratio'] > 1000)
        for echo in r['echoes']:
            check_echo_exact(echo)
        assert np.diff(r['emission']).min() >= S.period_samples
    lat256, lat1024 = int(results[256]['latency'][0]), int(results[1024]['latency'][0])
    # The JACK loopback lag is a whole number of periods, so it differs between the servers,
    # yet the cut echoes are identical sample for sample.
    assert lat256 % 256 == 0 and lat1024 % 1024 == 0 and lat1024 > lat256
    np.testing.assert_allclose(results[1024]['echoes'][-1], results[256]['echoes'][-1],
                               atol=1e-6)


def test_missing_device_error_names_the_devices_that_exist(pulse_server):
    with pytest.raises(AudioDeviceError) as e:
        SoundDeviceBackend('no such sound card').start(S, lambda *a: None)
    msg = str(e.value)
    assert "no audio device matches 'no such sound card'" in msg
    assert "'pulse' (ALSA" in msg  # the devices that do exist are listed
    with pytest.raises(AudioDeviceError, match='index 99 does not exist'):
        find_device(99, 2, 2)
    engine = SonarEngine(S, SoundDeviceBackend('no such sound card'), lambda r: None)
    with pytest.raises(AudioDeviceError, match='devices: '):
        engine.start()


_LOST_SERVER_CHILD = """
import sys
sys.path[:0] = ['test', '.']
from audio_fixtures import LoopbackSonar, wait_for
from avs_net_ros.audio.duplex import SoundDeviceBackend
with LoopbackSonar(SoundDeviceBackend('pulse')) as sonar:
    sonar.wait_echoes(1)
    print('echoing', flush=True)
    wait_for(lambda: sonar.engine.health.state == 'lost', 20, 'the stream to be lost')
    print('lost', sonar.engine.health.counts['device_error'], flush=True)
    n = len(sonar.echoes)
    sys.stdin.readline()  # the server is back
    sonar.wait_echoes(n + 2, timeout=30)
    print('reopened', sonar.engine.health.counts.get('restarts', 0),
          sonar.echoes[-1].peak_ratio, flush=True)
"""


@pytest.mark.slow
def test_lost_pulse_server_is_reported_and_the_stream_reopened(pulse_server, tmp_path):
    # The sonar runs in a child process: when PortAudio cannot close a stream whose server
    # died, its ALSA thread can print errors for as long as the process lives (once it flooded
    # a CI run's output until memory ran out). The child ends with the test.
    import subprocess
    import sys

    err_path = tmp_path / 'child_stderr.txt'
    with open(err_path, 'w') as err:
        proc = subprocess.Popen([sys.executable, '-c', _LOST_SERVER_CHILD], cwd=ROOT,
                                env=pulse_server.client_env(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        def child_said(word):
            line = proc.stdout.readline().split()
            assert line and line[0] == word, (line, err_path.read_text()[:3000])
            return line[1:]

        child_said('echoing')
        pulse_server.stop()  # the sound server dies under the running stream
        assert int(child_said('lost')[0]) >= 1  # reported as a device error
        # The server comes back (same socket): the engine reopens by itself.
        again = AudioServer('pulse', pulse_server.dir)
        pulse_server.pid, pulse_server._reaper = again.pid, again._reaper
        proc.stdin.write('\n')
        proc.stdin.flush()
        restarts, peak = child_said('reopened')
        assert int(restarts) >= 1 and float(peak) > 1000
        assert proc.wait(timeout=30) == 0, err_path.read_text()[:3000]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
