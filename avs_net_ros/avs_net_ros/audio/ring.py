"""A single-writer sample ring indexed by absolute sample number, safe to read from other threads.

The audio callback is the only writer: it copies each block in and then advances ``written``
(one attribute store, atomic in CPython), so it never takes a lock and never waits for a
reader. Readers copy a range out and check afterwards that the writer did not overwrite it
during the copy; if it did, they get ``RingOverrunError`` instead of torn data.
"""

import time
from typing import Callable, Optional

import numpy as np


class RingOverrunError(RuntimeError):
    """The requested samples were already overwritten (the reader fell behind)."""


class SampleRing:
    """Ring of the last ``capacity`` frames of a ``channels``-channel float32 stream."""

    def __init__(self, capacity: int, channels: int) -> None:
        """Allocate the ring (no allocation happens on write)."""
        if capacity <= 0 or channels <= 0:
            raise ValueError(f'ring needs positive capacity and channels, got {capacity}, '
                             f'{channels}')
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), np.float32)
        #: Frames written since the start (absolute index of the next frame).
        self.written = 0

    def write(self, block: np.ndarray) -> None:
        """Append a (frames, channels) block; called by the single writer only."""
        n = block.shape[0]
        if n > self.capacity:
            block = block[-self.capacity:]
            self.written += n - self.capacity
            n = self.capacity
        i = self.written % self.capacity
        first = min(n, self.capacity - i)
        self._buf[i:i + first] = block[:first]
        if first < n:
            self._buf[:n - first] = block[first:]
        self.written += n

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return frames [start, stop) as a (channels, stop - start) float32 copy.

        Raises:
            ValueError: ``stop`` is beyond what was written or the range is empty/negative.
            RingOverrunError: part of the range was overwritten before or during the copy.

        """
        if not 0 <= start < stop:
            raise ValueError(f'ring read range [{start}, {stop}) is empty or negative')
        if stop > self.written:
            raise ValueError(f'ring read up to {stop}, only {self.written} frames written')
        if stop - start > self.capacity or start < self.written - self.capacity:
            raise RingOverrunError(
                f'frames [{start}, {stop}) are no longer in the ring (written {self.written}, '
                f'capacity {self.capacity})')
        i = start % self.capacity
        n = stop - start
        first = min(n, self.capacity - i)
        out = np.empty((n, self.channels), np.float32)
        out[:first] = self._buf[i:i + first]
        if first < n:
            out[first:] = self._buf[:n - first]
        if start < self.written - self.capacity:
            raise RingOverrunError(f'frames from {start} were overwritten while being read')
        return out.T.copy()

    def wait_for(self, frame: int, timeout: float, poll: float = 0.01,
                 alive: Optional[Callable[[], bool]] = None) -> bool:
        """Wait until ``frame`` frames are written; False on timeout or when ``alive()`` fails.

        Polls instead of waiting on a condition so the writer (the audio callback) never
        touches a lock.
        """
        deadline = time.monotonic() + timeout
        while self.written < frame:
            if time.monotonic() >= deadline or (alive is not None and not alive()):
                return False
            time.sleep(poll)
        return True
