"""The sonar engine: one continuous duplex stream, chirps on request, echoes on a worker thread.

Data flow:

1. The backend calls ``process_block`` from its audio callback for every block: the scheduler
   writes any due chirp into the output block and the input block goes into the sample ring.
   Nothing there waits or takes a lock.
2. ``request(tag)`` (from a camera-frame callback) asks for a chirp; the scheduler places it at
   the next allowed output sample and queues an ``Emission``.
3. The worker thread takes each emission, waits (with a timeout) until the ring holds the
   recording around it, aligns on the direct path, cuts the echo and calls ``on_echo``.
4. The same thread watches the stream: a stream that stops delivering blocks or reports an
   error is closed and reopened every ``reconnect_period`` until it works again.

Backends implement ``start(settings, process_block)``, ``stop()``, ``is_alive()`` and have a
``name``; see ``duplex.SoundDeviceBackend`` and ``simroom.SimulatedRoomBackend``.
"""

from collections import deque
from dataclasses import dataclass
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional

from avs_net_ros.audio.echo import cut_recording, EchoFault, recording_span
from avs_net_ros.audio.health import HealthStatus, SonarHealth
from avs_net_ros.audio.ring import RingOverrunError, SampleRing
from avs_net_ros.audio.scheduler import ChirpScheduler, Emission
from avs_net_ros.audio.settings import SonarSettings

import numpy as np

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EchoResult:
    """One published echo.

    Attributes:
        tag: The tag passed to ``request`` (the camera frame header).
        echo: (2, window) float32, row 0 left.
        emission_sample: Output sample the chirp was written at.
        onset_sample: Input sample of the direct path (same clock).
        latency: onset_sample - emission_sample: the device round trip (+ speaker-microphone
            flight time).
        peak_ratio: Matched-filter confidence.
        clipped: Fraction of clipped samples in the window.

    """

    tag: Any
    echo: np.ndarray
    emission_sample: int
    onset_sample: int
    latency: int
    peak_ratio: float
    clipped: float


class _Stream:
    """Ring and scheduler of one opened stream (a reopen starts a new one)."""

    def __init__(self, settings: SonarSettings, emission: np.ndarray, warmup: int) -> None:
        before, after = recording_span(settings)
        capacity = max(4 * (before + after), 2 * settings.sample_rate)
        self.ring = SampleRing(capacity, settings.input_channels)
        self.scheduler = ChirpScheduler(
            emission, settings.acquisition_period_samples,
            int(settings.max_request_age * settings.sample_rate),
            first_sample=max(before, warmup))
        self.frames = 0
        self.xruns = 0
        self.last_block: Optional[float] = None
        #: Device latency once found (the direct-path search then narrows to it).
        self.locked_latency: Optional[int] = None
        self.misses = 0


class SonarEngine:
    """Runs a sonar on ``backend`` with ``settings``; echoes go to ``on_echo``."""

    #: Latency changes up to this many samples are not reported as new echo settings.
    LATENCY_TOLERANCE = 2
    #: Once the latency is known, the direct path is searched this many samples around it.
    LOCK_TOLERANCE = 32
    #: Consecutive misses in the narrow search after which the latency is searched anew.
    LOCK_MISSES = 3

    def __init__(self, settings: SonarSettings, backend: Any,
                 on_echo: Callable[[EchoResult], None],
                 on_info: Optional[Callable[[Dict[str, Any]], None]] = None, *,
                 emission: Optional[np.ndarray] = None, warmup: float = 0.0,
                 first_block_timeout: float = 5.0,
                 stall_timeout: float = 1.0, reconnect_period: float = 1.0,
                 log: Optional[Callable[[int, str], None]] = None) -> None:
        """Prepare (nothing is opened until ``start``).

        Args:
            settings: Sonar settings.
            backend: Audio backend (see module docstring).
            on_echo: Called on the worker thread with each echo.
            on_info: Called with the echo settings dict whenever it changes (settings, latency).
            emission: What to play per chirp, (samples, output channels); default the chirp
                on ``settings.output_channels``. The matched filter always uses the chirp.
            warmup: Seconds of stream audio before the first chirp of each (re)opened
                stream (a new PulseAudio stream's timing settles during its first second).
            first_block_timeout: Seconds a new stream may take to deliver its first block
                (PulseAudio streams stall about 1.2 s at start).
            stall_timeout: Seconds without a block after which a running stream is lost.
            reconnect_period: Seconds between attempts to reopen a lost stream.
            log: ``log(level, message)`` with logging levels; default the module logger.

        """
        self.settings = settings
        self.backend = backend
        self.on_echo = on_echo
        self.on_info = on_info
        self._emission = emission
        self.warmup = float(warmup)
        self.first_block_timeout = first_block_timeout
        self.stall_timeout = stall_timeout
        self.reconnect_period = reconnect_period
        self._log = log or (lambda level, msg: _log.log(level, msg))
        self.health = SonarHealth()
        self.latency: Optional[int] = None
        self._chirp = settings.chirp_waveform()
        self._stream: Optional[_Stream] = None
        self._opened_at = 0.0
        self._stop = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._emitted: Deque[int] = deque(maxlen=1000)
        self._reported_latency: Optional[int] = None

    # -- audio callback side -------------------------------------------------------------------

    def _make_process(self, stream: _Stream) -> Callable[[np.ndarray, np.ndarray, bool], None]:
        def process_block(indata: np.ndarray, outdata: np.ndarray, xrun: bool) -> None:
            start = stream.frames
            stream.scheduler.fill(outdata, start)
            stream.ring.write(indata)
            stream.frames = start + indata.shape[0]
            if xrun:
                stream.xruns += 1
            stream.last_block = time.monotonic()
        return process_block

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the stream and start the worker.

        Raises:
            Whatever the backend raises when it cannot open (e.g. ``AudioDeviceError`` naming
            the devices that exist).

        """
        self._open()
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name='sonar-worker', daemon=True)
        self._worker.start()
        self._emit_info()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker and close the stream (bounded by ``timeout``)."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None
        self._close()
        self.health.set_state('stopped')

    def request(self, tag: Any) -> None:
        """Ask for a chirp on behalf of ``tag`` (e.g. a camera frame header); never blocks."""
        stream = self._stream
        if stream is None:
            self.health.count('requests_while_down')
            return
        stream.scheduler.request(tag)

    def update_settings(self, settings: SonarSettings) -> None:
        """Apply new settings; a reopen happens if the stream's format changed."""
        with self._lock:
            old, self.settings = self.settings, settings
            self._chirp = settings.chirp_waveform()
            reopen = (old.sample_rate != settings.sample_rate
                      or old.input_channels != settings.input_channels
                      or old.num_output_channels != settings.num_output_channels
                      or old.chirp != settings.chirp or old.window != settings.window
                      or old.lead_in_samples != settings.lead_in_samples
                      or old.max_latency != settings.max_latency)
            stream = self._stream
            if not reopen and stream is not None:
                stream.scheduler.set_period(settings.acquisition_period_samples
                                            if stream.locked_latency is None
                                            else settings.period_samples)
                stream.scheduler.max_request_age = int(settings.max_request_age
                                                       * settings.sample_rate)
        if reopen and stream is not None:
            self._close()
            self.latency = self._reported_latency = None
            self._open()
        self._emit_info()

    def info(self) -> Dict[str, Any]:
        """Return the current echo settings (``messages.ECHO_INFO_KEYS`` and more)."""
        return self.settings.info(self.backend.name, self._reported_latency)

    def status(self) -> HealthStatus:
        """Return the health status with the live stream figures."""
        stream = self._stream
        extra: Dict[str, object] = {'backend': self.backend.name,
                                    'rate_limit_hz': f'{self.settings.rate_limit:.2f}',
                                    'latency_samples': self.latency}
        if stream is not None:
            s = stream.scheduler
            extra.update(chirps_requested=s.requests, chirps_emitted=s.emitted,
                         requests_superseded=s.superseded, requests_stale=s.stale,
                         stream_frames=stream.frames)
        return self.health.status(extra)

    @property
    def frames(self) -> int:
        """Frames processed by the current stream (0 when down)."""
        stream = self._stream
        return 0 if stream is None else stream.frames

    def emitted_samples(self) -> List[int]:
        """Output samples of the last chirps the worker took from the current stream."""
        return list(self._emitted)

    # -- internals -----------------------------------------------------------------------------

    def _open(self) -> None:
        s = self.settings
        emission = self._emission if self._emission is not None else s.emission()
        stream = _Stream(s, emission, int(self.warmup * s.sample_rate))
        self._emitted.clear()
        self.health.set_state('starting', f'opening {self.backend.name}')
        self.backend.start(s, self._make_process(stream))
        self._stream = stream
        self._opened_at = time.monotonic()
        self.health.set_state('running')

    def _close(self) -> None:
        self._stream = None
        try:
            self.backend.stop()
        except Exception as e:  # noqa: B902 - closing must not raise into the worker
            self._log(logging.WARNING, f'closing the audio stream failed: {e}')

    def _emit_info(self) -> None:
        if self.on_info is not None:
            self.on_info(self.info())

    def _stream_problem(self, stream: _Stream) -> Optional[str]:
        if not self.backend.is_alive():
            return getattr(self.backend, 'error', None) or 'the stream stopped'
        now = time.monotonic()
        if stream.last_block is None:
            if now - self._opened_at > self.first_block_timeout:
                return f'no audio block within {self.first_block_timeout:g} s of opening'
        elif now - stream.last_block > self.stall_timeout:
            return f'no audio block for {now - stream.last_block:.1f} s'
        return None

    def _run(self) -> None:
        next_retry = 0.0
        reported_xruns = 0
        while not self._stop.is_set():
            stream = self._stream
            if stream is None:
                if time.monotonic() >= next_retry:
                    next_retry = time.monotonic() + self.reconnect_period
                    self._reopen()
                    reported_xruns = 0
                else:
                    self._stop.wait(0.01)
                continue
            problem = self._stream_problem(stream)
            if problem is not None:
                self._lost(problem)
                next_retry = time.monotonic() + self.reconnect_period
                continue
            if stream.xruns > reported_xruns:
                n = stream.xruns - reported_xruns
                reported_xruns = stream.xruns
                self.health.count('xrun', f'{n} xrun(s) (input overflow / output underflow)', n)
                self._log(logging.WARNING, f'audio stream reported {n} xrun(s)')
            try:
                emission = stream.scheduler.emissions.popleft()
            except IndexError:
                self._stop.wait(0.01)
                continue
            self._emitted.append(emission.sample)
            self._handle(stream, emission)

    def _reopen(self) -> None:
        try:
            self._close()
            self._open()
        except Exception as e:  # noqa: B902 - any backend failure means: retry later
            self.health.set_state('lost', f'reopen failed: {e}')
            self.health.count('device_error', str(e))
            self._stream = None
            return
        self.health.count('restarts')
        self.latency = self._reported_latency = None
        self._log(logging.INFO, f'audio stream reopened on {self.backend.name}')
        self._emit_info()

    def _lost(self, problem: str) -> None:
        self._log(logging.ERROR, f'audio device lost ({problem}); reopening every '
                  f'{self.reconnect_period:g} s')
        self.health.count('device_error', problem)
        self._close()
        self.health.set_state('lost', problem)

    def _handle(self, stream: _Stream, emission: Emission) -> None:
        s = self.settings
        locked, tol = stream.locked_latency, self.LOCK_TOLERANCE
        before, after = recording_span(s, locked, tol)
        start, stop = emission.sample - before, emission.sample + after
        wait = max(0, stop - stream.ring.written) / s.sample_rate + self.stall_timeout
        if not stream.ring.wait_for(stop, wait, alive=lambda: not self._stop.is_set()):
            return  # stopping, or a stall the watchdog reports next round
        try:
            rec = stream.ring.read(start, stop)[list(s.channel_map)]
        except RingOverrunError as e:
            self.health.count('overrun', str(e))
            self._log(logging.WARNING, f'echo lost: {e}')
            return
        try:
            cut = cut_recording(rec, self._chirp, s, locked, tol)
        except EchoFault as e:
            self.health.count(e.kind, str(e))
            self._log(logging.WARNING, str(e))
            if e.kind == 'no_direct_path' and locked is not None:
                stream.misses += 1
                if stream.misses >= self.LOCK_MISSES:
                    self._log(logging.WARNING, f'no direct path at the known latency of '
                              f'{locked} samples {stream.misses} times; searching anew')
                    stream.locked_latency = None
                    stream.scheduler.set_period(s.acquisition_period_samples)
            return
        stream.misses = 0
        if locked is None:
            stream.locked_latency = cut.latency
            stream.scheduler.set_period(s.period_samples)
        if cut.clipped > 0:
            self.health.count('clipped', f'{100 * cut.clipped:.2f} % of the echo window '
                              f'at or above {s.clip_level:g} full scale')
            self._log(logging.WARNING, f'clipped echo: {100 * cut.clipped:.2f} % of samples '
                      f'at full scale; lower the chirp amplitude or the input gain')
        self.latency = cut.latency
        old = self._reported_latency
        # A sample of matched-filter jitter is not a new latency worth republishing.
        if old is None or abs(cut.latency - old) > self.LATENCY_TOLERANCE:
            if old is not None:
                self._log(logging.INFO, f'device latency changed from {old} to '
                          f'{cut.latency} samples')
            self._reported_latency = cut.latency
            self._emit_info()
        self.health.count('echoes')
        self.on_echo(EchoResult(emission.tag, cut.echo, emission.sample,
                                emission.sample + cut.latency, cut.latency,
                                cut.peak_ratio, cut.clipped))
