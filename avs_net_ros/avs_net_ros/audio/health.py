"""Health of the sonar: fault counters, recent faults and the overall status.

The worker thread and the node record events here (never the audio callback, whose xrun
counter the engine copies in). ``status()`` gives a level (OK / WARN / ERROR), a one-line
message and key-value pairs: what the node publishes as diagnostic_msgs/DiagnosticStatus.
"""

from collections import deque
from dataclasses import dataclass, field
import threading
import time
from typing import Deque, Dict, Optional, Tuple

OK, WARN, ERROR = 0, 1, 2

#: Faults that make the status WARN while they are recent, with how they read in the message.
FAULTS = {
    'no_direct_path': 'chirp(s) without a direct path',
    'nan': 'recording(s) with NaN samples',
    'silent': 'echo(es) with a silent channel',
    'clipped': 'clipped echo(es)',
    'xrun': 'stream xrun(s)',
    'overrun': 'recording(s) overwritten before the worker read them',
    'stalled': 'stall(s) of the audio stream',
    'device_error': 'audio device error(s)',
}


@dataclass
class HealthStatus:
    """Overall status: ``level`` is OK, WARN or ERROR."""

    level: int
    message: str
    values: Dict[str, str] = field(default_factory=dict)


class SonarHealth:
    """Counts events and remembers the recent faults (thread-safe)."""

    def __init__(self, recent: float = 5.0) -> None:
        """Faults younger than ``recent`` seconds make the status WARN."""
        self.recent = float(recent)
        self.counts: Dict[str, int] = {}
        self._events: Deque[Tuple[float, str]] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self.state = 'stopped'
        self.state_message = ''
        self.last_error: Optional[str] = None

    def count(self, kind: str, message: Optional[str] = None, n: int = 1) -> None:
        """Record ``n`` events of ``kind``; faults (``FAULTS``) also keep ``message``."""
        if n <= 0:
            return
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + n
            if kind in FAULTS:
                self._events.append((time.monotonic(), kind))
                if message:
                    self.last_error = message

    def set_state(self, state: str, message: str = '') -> None:
        """Set the stream state: 'running' is healthy, anything else is an error."""
        with self._lock:
            self.state = state
            self.state_message = message

    def recent_faults(self) -> Dict[str, int]:
        """Return {fault kind: count} over the last ``recent`` seconds."""
        cutoff = time.monotonic() - self.recent
        out: Dict[str, int] = {}
        with self._lock:
            for t, kind in self._events:
                if t >= cutoff:
                    out[kind] = out.get(kind, 0) + 1
        return out

    def status(self, extra: Optional[Dict[str, object]] = None) -> HealthStatus:
        """Return the overall status with every counter as a key-value."""
        recent = self.recent_faults()
        with self._lock:
            values = {k: str(v) for k, v in sorted(self.counts.items())}
            state, state_message, last_error = self.state, self.state_message, self.last_error
        values['state'] = state
        if last_error:
            values['last_error'] = last_error
        for k, v in (extra or {}).items():
            values[k] = str(v)
        if state != 'running':
            return HealthStatus(ERROR, f'audio stream {state}' + (
                f': {state_message}' if state_message else ''), values)
        if recent:
            parts = [f'{n} {FAULTS[k]}' for k, n in sorted(recent.items())]
            return HealthStatus(WARN, f'last {self.recent:g} s: ' + ', '.join(parts), values)
        return HealthStatus(OK, 'chirping', values)
