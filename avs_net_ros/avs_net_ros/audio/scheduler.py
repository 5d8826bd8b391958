"""Chirp scheduling on the stream's sample clock.

Requests (one per camera frame) come from any thread; the audio callback calls ``fill`` for
each output block. The hand-off is two ``collections.deque`` objects, whose append/popleft are
atomic, so the callback never takes a lock:

- requests: maxlen 1, so a newer frame replaces one still waiting (the echo belongs to the
  newest frame);
- emissions: every chirp placed, with the output sample it starts at, for the worker thread.

A chirp starts at the first sample of a block once ``period`` samples have passed since the
previous one, never earlier, so echoes of one chirp never overlap the next chirp's window.
"""

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Emission:
    """A chirp placed in the output stream.

    Attributes:
        tag: What requested it (e.g. the camera frame header), handed back with the echo.
        sample: Output sample index at which the chirp starts.
        requested_sample: Output sample index when the request was made.

    """

    tag: Any
    sample: int
    requested_sample: int


class ChirpScheduler:
    """Places ``emission`` in the output at most once per ``period`` samples, on request."""

    def __init__(self, emission: np.ndarray, period: int, max_request_age: int,
                 first_sample: int = 0) -> None:
        """Set up with ``emission`` (samples, channels) played per chirp.

        ``max_request_age`` (samples): older requests are dropped when a slot opens.
        ``first_sample``: no chirp before this output sample (stream warm-up, lead-in).
        """
        e = np.asarray(emission, np.float32)
        if e.ndim != 2 or e.shape[0] == 0:
            raise ValueError(f'emission must be (samples, channels), got {e.shape}')
        if period < e.shape[0]:
            raise ValueError(f'chirp period {period} is shorter than the emission '
                             f'({e.shape[0]} samples)')
        self.emission = e
        self.period = int(period)
        self.max_request_age = int(max_request_age)
        self._requests: Deque[Tuple[Any, int]] = deque(maxlen=1)
        self.emissions: Deque[Emission] = deque(maxlen=64)
        self._next_allowed = int(first_sample)
        self._active: Optional[int] = None
        self._last_start: Optional[int] = None
        #: Samples the callback has produced (the clock requests are stamped with).
        self.clock = 0
        self.requests = 0
        self.superseded = 0
        self.stale = 0
        self.emitted = 0

    def set_period(self, period: int) -> None:
        """Change the period, counted from the last chirp (any thread; a single store each)."""
        self.period = int(period)
        if self._last_start is not None:
            self._next_allowed = self._last_start + self.period

    def request(self, tag: Any) -> None:
        """Ask for a chirp for ``tag``; any thread. A waiting request is superseded."""
        self.requests += 1
        if self._requests:
            self.superseded += 1
        self._requests.append((tag, self.clock))

    def fill(self, out: np.ndarray, start: int) -> None:
        """Write the output block that starts at sample ``start`` (audio callback)."""
        frames = out.shape[0]
        out.fill(0.0)
        end = start + frames
        if self._active is None and self._requests and end > self._next_allowed:
            try:
                tag, asked = self._requests.popleft()
            except IndexError:  # taken between the check and the pop: nothing to do
                pass
            else:
                at = max(start, self._next_allowed)
                if at - asked > self.max_request_age:
                    self.stale += 1
                else:
                    self._active = self._last_start = at
                    self._next_allowed = at + self.period
                    self.emitted += 1
                    self.emissions.append(Emission(tag, at, asked))
        if self._active is not None:
            n = self.emission.shape[0]
            lo = max(start, self._active)
            hi = min(end, self._active + n)
            if hi > lo:
                ch = min(out.shape[1], self.emission.shape[1])
                out[lo - start:hi - start, :ch] = \
                    self.emission[lo - self._active:hi - self._active, :ch]
            if self._active + n <= end:
                self._active = None
        self.clock = end
