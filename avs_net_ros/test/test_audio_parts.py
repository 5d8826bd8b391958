"""The sonar's plain-Python parts: settings, sample ring, chirp scheduler, echo cutting, health."""

import threading

from avs_net_ros.audio.echo import cut_recording, EchoFault, recording_span, search_range
from avs_net_ros.audio.health import ERROR, OK, SonarHealth, WARN
from avs_net_ros.audio.ring import RingOverrunError, SampleRing
from avs_net_ros.audio.scheduler import ChirpScheduler
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.core.acoustics import ChirpConfig, echo_window_samples, make_chirp
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.messages import EchoInfo
import numpy as np
import pytest


def test_settings_window_period_and_info():
    s = SonarSettings(max_range=6.0, reverb_guard=0.05, lead_in_samples=32)
    assert s.window == echo_window_samples(6.0, 44100, 340.0)
    # The next chirp never comes before the window plus the guard has passed.
    assert s.period_samples == s.window + int(np.ceil(0.05 * 44100))
    assert SonarSettings(max_range=6.0, max_rate=2.0).period_samples == 22050
    info = s.info('sim', latency_samples=300)
    parsed = EchoInfo.from_dict(info)  # the agreed echo info keys are all there
    assert parsed.window_samples == s.window and parsed.lead_in_samples == 32
    assert info['alignment']['method'] == 'matched_filter'
    assert info['alignment']['latency_samples'] == 300
    assert info['chirp']['f_end'] == 20000.0 and info['backend'] == 'sim'
    # While the latency is unknown, chirps are spaced beyond the whole search reach.
    assert s.acquisition_period_samples > s.max_latency_samples + s.window - 32


@pytest.mark.parametrize('kwargs, words', [
    ({'max_range': 0.0}, 'max_range'),
    ({'channel_map': (1, 1)}, 'channel_map'),
    ({'gain': float('nan')}, 'gain'),
    ({'window_samples': 100, 'lead_in_samples': -1}, 'lead_in_samples'),
    ({'clip_level': 1.5}, 'clip_level'),
])
def test_settings_reject_bad_values_by_name(kwargs, words):
    with pytest.raises(AvsInputError, match=words):
        SonarSettings(**kwargs)


def test_ring_wraps_and_reports_overrun():
    ring = SampleRing(100, 2)
    data = np.arange(2 * 250, dtype=np.float32).reshape(250, 2)
    for i in range(0, 250, 30):
        ring.write(data[i:i + 30])
    assert ring.written == 250
    np.testing.assert_array_equal(ring.read(160, 250), data[160:250].T)
    with pytest.raises(RingOverrunError):
        ring.read(100, 200)  # frames 100..149 were overwritten
    with pytest.raises(ValueError, match='only 250 frames written'):
        ring.read(200, 260)
    assert not ring.wait_for(300, timeout=0.02)
    assert ring.wait_for(250, timeout=0.0)


def _run_scheduler(sched, total, block=64, requests=()):
    """Drive ``sched`` like an audio callback; ``requests`` = {block index: tag}."""
    out = []
    requests = dict(requests)
    for b in range(total // block):
        if b in requests:
            sched.request(requests[b])
        buf = np.full((block, 2), np.nan, np.float32)
        sched.fill(buf, b * block)
        out.append(buf)
    return np.concatenate(out)


def test_scheduler_places_chirps_at_known_samples_and_paces_them():
    emission = np.tile(np.arange(1, 101, dtype=np.float32)[:, None], (1, 2))
    sched = ChirpScheduler(emission, period=1000, max_request_age=10_000, first_sample=0)
    # A request every block (faster than allowed): chirps must still be >= period apart.
    out = _run_scheduler(sched, 6400, requests={b: b for b in range(100)})
    starts = [e.sample for e in sched.emissions]
    # Exactly one period apart, even mid-block.
    assert starts == [0, 1000, 2000, 3000, 4000, 5000, 6000]
    for s in starts:
        if s + 100 <= out.shape[0]:
            np.testing.assert_array_equal(out[s:s + 100, 0], emission[:, 0])
    silent = np.ones(out.shape[0], bool)
    for s in starts:
        silent[s:s + 100] = False
    assert not np.any(out[silent])  # nothing but the chirps is played
    # The newest frame wins: the chirp at 1000 carries the tag of block 15 (960-1023).
    tags = [e.tag for e in sched.emissions]
    assert tags[:3] == [0, 15, 31] and sched.superseded > 0


def test_scheduler_chirp_spans_blocks_and_drops_stale_requests():
    emission = np.ones((150, 1), np.float32)
    sched = ChirpScheduler(emission, period=500, max_request_age=100, first_sample=30)
    out = _run_scheduler(sched, 640, requests={0: 'a'})
    assert [e.sample for e in sched.emissions] == [30]
    assert np.all(out[30:180, 0] == 1) and not np.any(out[180:, 0]) and not np.any(out[:30])
    # A request older than max_request_age when the next slot opens (500) gets no chirp.
    sched2 = ChirpScheduler(emission, period=500, max_request_age=100)
    _run_scheduler(sched2, 1280, requests={0: 'a', 1: 'b'})
    assert [e.tag for e in sched2.emissions] == ['a'] and sched2.stale == 1


def _recording(settings, latency, echoes=((400, 0.3),), noise=0.0, seed=0):
    """Return a (2, n) recording: chirp written at ``before``, heard ``latency`` later."""
    before, after = recording_span(settings)
    chirp = settings.chirp_waveform()
    x = np.random.default_rng(seed).normal(0, noise, (2, before + after)).astype(np.float32)
    onset = before + latency
    x[:, onset:onset + chirp.size] += chirp
    for delay, gain in echoes:
        x[0, onset + delay:onset + delay + chirp.size] += gain * chirp
        x[1, onset + delay + 7:onset + delay + 7 + chirp.size] += gain * chirp
    return x


def test_cut_is_independent_of_device_latency():
    s = SonarSettings(max_range=4.0, lead_in_samples=50, max_latency=0.1)
    chirp = s.chirp_waveform()
    cuts = [cut_recording(_recording(s, lat), chirp, s) for lat in (0, 256, 1029, 2562)]
    assert [c.latency for c in cuts] == [0, 256, 1029, 2562]
    for c in cuts:
        assert c.echo.shape == (2, s.window) and c.echo.dtype == np.float32
        np.testing.assert_array_equal(c.echo, cuts[0].echo)
    # The direct path sits at the lead-in, the echo 400 samples (7 more on the right) later.
    e = cuts[0].echo
    np.testing.assert_allclose(e[:, 50:50 + chirp.size], np.stack([chirp, chirp]), atol=1e-6)
    np.testing.assert_allclose(e[0, 450:450 + chirp.size], 0.3 * chirp, atol=1e-6)
    np.testing.assert_allclose(e[1, 457:457 + chirp.size], 0.3 * chirp, atol=1e-6)


def test_cut_with_known_latency_searches_only_around_it():
    s = SonarSettings(max_range=4.0, max_latency=0.1)
    x = _recording(s, 300)
    lo, hi = search_range(s, latency=300, tolerance=8)
    # from well before (for the median) to one chirp past latency + tol (to see a late chirp)
    assert hi == 309 + s.chirp.num_samples and lo == 0
    assert cut_recording(x, s.chirp_waveform(), s, latency=302, tolerance=8).latency == 300
    with pytest.raises(EchoFault, match='expected at 900') as e:
        cut_recording(x, s.chirp_waveform(), s, latency=900, tolerance=8)
    assert e.value.kind == 'no_direct_path'


def test_cut_rejects_a_direct_path_just_later_than_the_known_latency():
    # PulseAudio under load moved its latency by 33 samples: the narrow search then ended on
    # a side lobe and the echo was published 33 samples off. It must be refused instead.
    s = SonarSettings(max_range=4.0, max_latency=0.1)
    x = _recording(s, 300 + 33)
    with pytest.raises(EchoFault, match='333 samples after emission, expected at 300') as e:
        cut_recording(x, s.chirp_waveform(), s, latency=300, tolerance=32)
    assert e.value.kind == 'no_direct_path'
    assert cut_recording(x, s.chirp_waveform(), s, latency=300 + 30, tolerance=32).latency == 333


def test_cut_faults_name_the_problem():
    s = SonarSettings(max_range=4.0, max_latency=0.05)
    chirp = s.chirp_waveform()
    x = _recording(s, 100)
    x[1, 500] = np.nan
    with pytest.raises(EchoFault, match='NaN') as e:
        cut_recording(x, chirp, s)
    assert e.value.kind == 'nan'
    noise = np.random.default_rng(1).normal(0, 0.1, x.shape).astype(np.float32)
    with pytest.raises(EchoFault, match='no direct-path chirp') as e:
        cut_recording(noise, chirp, s)
    assert e.value.kind == 'no_direct_path'
    x = _recording(s, 100)
    x[1] = 0
    with pytest.raises(EchoFault, match='right microphone') as e:
        cut_recording(x, chirp, s)
    assert e.value.kind == 'silent'


def test_cut_reports_clipping_and_applies_gain():
    loud = ChirpConfig(amplitude=1.0)
    s = SonarSettings(chirp=loud, max_range=4.0, max_latency=0.05, gain=2.0)
    x = np.clip(_recording(s, 100) * 1.5, -1, 1)
    cut = cut_recording(x, make_chirp(loud), s)
    assert cut.clipped > 0
    before = s.lead_in_samples
    raw = x[:, before + 100 - s.lead_in_samples:][:, :s.window]
    np.testing.assert_allclose(cut.echo, 2.0 * raw, rtol=1e-6)
    quiet = cut_recording(_recording(SonarSettings(max_range=4.0, max_latency=0.05), 100),
                          make_chirp(ChirpConfig()), SonarSettings(max_range=4.0,
                                                                   max_latency=0.05))
    assert quiet.clipped == 0.0


def test_health_levels_and_counters():
    h = SonarHealth(recent=0.2)
    assert h.status().level == ERROR  # not running yet
    h.set_state('running')
    assert h.status().level == OK
    h.count('echoes', n=3)
    h.count('no_direct_path', 'no direct-path chirp found')
    st = h.status({'backend': 'sim'})
    assert st.level == WARN and 'without a direct path' in st.message
    assert st.values['echoes'] == '3' and st.values['no_direct_path'] == '1'
    assert st.values['last_error'] == 'no direct-path chirp found'
    assert st.values['backend'] == 'sim'
    threading.Event().wait(0.25)
    assert h.status().level == OK  # the fault is no longer recent; the count stays
    assert h.status().values['no_direct_path'] == '1'
    h.set_state('lost', 'no audio block for 1.2 s')
    st = h.status()
    assert st.level == ERROR and 'lost: no audio block' in st.message


def test_scheduler_set_period_counts_from_the_last_chirp():
    emission = np.ones((10, 1), np.float32)
    sched = ChirpScheduler(emission, period=5000, max_request_age=10_000)
    _run_scheduler(sched, 128, requests={0: 'a'})
    assert [e.sample for e in sched.emissions] == [0]
    sched.set_period(300)  # e.g. the latency became known: the next slot is 0 + 300
    _run_scheduler_from(sched, 128, 640, requests={2: 'b'})
    assert [e.sample for e in sched.emissions] == [0, 300]


def _run_scheduler_from(sched, start, stop, block=64, requests=()):
    requests = dict(requests)
    for b in range(start // block, stop // block):
        if b in requests:
            sched.request(requests[b])
        sched.fill(np.zeros((block, 1), np.float32), b * block)
