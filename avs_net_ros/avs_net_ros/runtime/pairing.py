"""Pairing messages of several topics by header stamp, with message_filters' semantics.

message_filters is not on PyPI, so ``StampSynchronizer`` reimplements the two Python
synchronizers of ros2/message_filters (Jazzy) for headers stamped messages:

- exact (``slop`` = 0, like ``TimeSynchronizer``): a set is emitted when every input holds a
  message with the same stamp in nanoseconds;
- approximate (``slop`` > 0 s, like ``ApproximateTimeSynchronizer``): on each arrival, the
  other inputs' stamps within ``slop`` of the new one are tried closest first, and the first
  combination whose spread (max - min) is strictly below ``slop`` is emitted.

In both, every input keeps at most ``queue_size`` messages (the oldest stamp is dropped first),
emitted messages are removed, and unmatched ones wait until evicted: memory is bounded.
``Pairer`` uses the real message_filters when it is importable and this class otherwise.
"""

import itertools
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

from avs_net_ros.messages import stamp_to_ns


class StampSynchronizer:
    """Emit sets of messages, one per input, whose header stamps match."""

    def __init__(self, num_inputs: int, queue_size: int, slop: float = 0.0) -> None:
        """Pair ``num_inputs`` inputs; ``slop`` in seconds (0 = exact stamps)."""
        if num_inputs < 2 or queue_size < 1 or slop < 0:
            raise ValueError(f'StampSynchronizer needs >= 2 inputs, queue_size >= 1 and '
                             f'slop >= 0; got {num_inputs}, {queue_size}, {slop}')
        self.queue_size = int(queue_size)
        self.slop_ns = int(round(slop * 1e9))
        self.queues: List[Dict[int, Any]] = [{} for _ in range(num_inputs)]
        self._callbacks: List[Callable[..., None]] = []
        self._lock = threading.Lock()

    def register_callback(self, callback: Callable[..., None]) -> None:
        """Call ``callback(msg_0, ..., msg_n-1)`` for every matched set."""
        self._callbacks.append(callback)

    def add(self, index: int, msg: Any) -> List[Sequence[Any]]:
        """Offer ``msg`` on input ``index``; return (and signal) the sets it completed."""
        t = stamp_to_ns(msg.header.stamp)
        with self._lock:
            queue = self.queues[index]
            queue[t] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
            found = self._match_exact() if self.slop_ns == 0 else self._match_approx(index, t)
        for msgs in found:
            for cb in self._callbacks:
                cb(*msgs)
        return found

    def pending(self) -> List[int]:
        """Messages waiting on each input."""
        with self._lock:
            return [len(q) for q in self.queues]

    def _match_exact(self) -> List[Sequence[Any]]:
        common = set(self.queues[0]).intersection(*self.queues[1:])
        found = []
        for t in sorted(common):
            found.append(tuple(q.pop(t) for q in self.queues))
        return found

    def _match_approx(self, index: int, t: int) -> List[Sequence[Any]]:
        candidates = []
        for i, q in enumerate(self.queues):
            if i == index:
                continue
            near = sorted((abs(s - t), s) for s in q if abs(s - t) <= self.slop_ns)
            if not near:
                return []
            candidates.append([s for _, s in near])
        for combo in itertools.product(*candidates):
            stamps = list(combo)
            stamps.insert(index, t)
            if max(stamps) - min(stamps) < self.slop_ns:
                return [tuple(q.pop(s) for q, s in zip(self.queues, stamps))]
        return []


class Pairer:
    """Two-or-more-input pairing fed by the caller's own subscriptions.

    Uses message_filters' ``TimeSynchronizer``/``ApproximateTimeSynchronizer`` behind plain
    ``SimpleFilter`` inputs when message_filters is importable, ``StampSynchronizer`` otherwise;
    ``backend`` says which.
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None], prefer_message_filters: bool = True) -> None:
        """Build the synchronizer; ``callback`` gets one message per input."""
        mf = _message_filters() if prefer_message_filters else None
        self._own: Optional[StampSynchronizer] = None
        if mf is None:
            self._own = StampSynchronizer(num_inputs, queue_size, slop)
            self._own.register_callback(callback)
            self.backend = 'avs_net_ros.runtime.pairing'
            return
        self._inputs = [mf.SimpleFilter() for _ in range(num_inputs)]
        if slop > 0:
            self._sync = mf.ApproximateTimeSynchronizer(self._inputs, queue_size, slop)
        else:
            self._sync = mf.TimeSynchronizer(self._inputs, queue_size)
        self._sync.registerCallback(callback)
        self.backend = 'message_filters'

    def add(self, index: int, msg: Any) -> None:
        """Offer ``msg`` on input ``index``."""
        if self._own is not None:
            self._own.add(index, msg)
        else:
            self._inputs[index].signalMessage(msg)


def _message_filters() -> Optional[Any]:
    try:
        import message_filters
    except ImportError:
        return None
    return message_filters
