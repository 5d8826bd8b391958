"""Pair bag messages of several roles by header stamp, streaming, with bounded memory.

Messages arrive in bag (receive) order, which may differ from stamp order and between topics.
Each message of the key role waits until every other role has a message with the same stamp
(or one within ``slop_ns``, nearest first). A key message is given up as a pairing failure
once a required role has moved more than ``horizon_ns`` past it; an optional role that has
(or the end of the bag) is left out of the group instead. Other messages that no key message
can take any more are dropped as unused.
"""

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple


@dataclass
class PairingStats:
    """Counts of a pairing run."""

    paired: int = 0
    #: key messages given up
    unpaired: int = 0
    #: key messages given up, per missing role
    unpaired_key: Dict[str, int] = field(default_factory=dict)
    #: messages of other roles that no key message took
    unused: Dict[str, int] = field(default_factory=dict)
    #: key messages whose stamp was already seen (the later one is dropped)
    duplicate_key: int = 0
    #: largest |stamp difference| of a pair (ns)
    max_offset_ns: int = 0

    @property
    def failures(self) -> int:
        """Key messages that found no partner."""
        return self.unpaired

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-friendly copy."""
        return {'paired': self.paired, 'unpaired_key': dict(self.unpaired_key),
                'unused': dict(self.unused), 'duplicate_key': self.duplicate_key,
                'max_offset_s': self.max_offset_ns / 1e9, 'failures': self.failures}


class _Stream:
    def __init__(self) -> None:
        self.stamps: List[int] = []
        self.items: Dict[int, Any] = {}
        self.latest: Optional[int] = None

    def add(self, stamp: int, item: Any) -> None:
        if stamp not in self.items:
            insort(self.stamps, stamp)
        self.items[stamp] = item
        self.latest = stamp if self.latest is None else max(self.latest, stamp)

    def nearest(self, stamp: int, slop: int) -> Optional[int]:
        if stamp in self.items:
            return stamp
        if slop <= 0 or not self.stamps:
            return None
        i = bisect_left(self.stamps, stamp)
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(self.stamps):
                d = abs(self.stamps[j] - stamp)
                if d <= slop and (best is None or d < abs(best - stamp)):
                    best = self.stamps[j]
        return best

    def pop(self, stamp: int) -> Any:
        self.stamps.pop(bisect_left(self.stamps, stamp))
        return self.items.pop(stamp)


class StampPairer:
    """Group one message of each role around each key-role message by header stamp."""

    def __init__(self, key: str, others: Sequence[str], slop_ns: int = 0,
                 horizon_ns: int = 2_000_000_000, optional: Sequence[str] = ()) -> None:
        """Pair ``key`` messages with one message of each of ``others``.

        Roles in ``optional`` (a subset of ``others``) join a group when they have a message
        for its stamp, and are left out when they have none.
        """
        if slop_ns < 0 or horizon_ns < 0:
            raise ValueError('slop and horizon must be >= 0')
        self.key = key
        self.others = list(others)
        self.optional = set(optional)
        if not self.optional <= set(self.others):
            raise ValueError(f'optional roles {sorted(self.optional - set(self.others))} are '
                             f'not among {self.others}')
        self.slop = int(slop_ns)
        self.horizon = int(horizon_ns)
        self.stats = PairingStats()
        self._keys = _Stream()
        self._streams = {r: _Stream() for r in self.others}

    def add(self, role: str, stamp_ns: int, item: Any) -> List[Tuple[int, Dict[str, Any]]]:
        """Add one message; return the groups it completed as [(stamp, {role: item})]."""
        if role == self.key:
            if stamp_ns in self._keys.items:
                self.stats.duplicate_key += 1
                return []
            self._keys.add(stamp_ns, item)
        elif role in self._streams:
            self._streams[role].add(stamp_ns, item)
        else:
            raise KeyError(f'unknown role {role!r}')
        out = self._match()
        self._expire(final=False)
        return out

    def finish(self) -> List[Tuple[int, Dict[str, Any]]]:
        """End of the bag: return the groups still completable (optional roles left out).

        What is still waiting after that is counted as unpaired or unused.
        """
        out = self._match(final=True)
        self._expire(final=True)
        return out

    def _gone(self, role: str, stamp: int, final: bool) -> bool:
        """Whether ``role`` can no longer bring a message for ``stamp``."""
        latest = self._streams[role].latest
        return final or (latest is not None and latest > stamp + self.slop + self.horizon)

    def _match(self, final: bool = False) -> List[Tuple[int, Dict[str, Any]]]:
        out = []
        for stamp in list(self._keys.stamps):
            found = {}
            for r, s in self._streams.items():
                m = s.nearest(stamp, self.slop)
                if m is not None:
                    found[r] = m
                elif r not in self.optional or not self._gone(r, stamp, final):
                    break
            else:
                group = {self.key: self._keys.pop(stamp)}
                for r, m in found.items():
                    group[r] = self._streams[r].pop(m)
                    self.stats.max_offset_ns = max(self.stats.max_offset_ns, abs(m - stamp))
                self.stats.paired += 1
                out.append((stamp, group))
        return out

    def _expire(self, final: bool) -> None:
        for stamp in list(self._keys.stamps):
            missing = [r for r, s in self._streams.items() if s.nearest(stamp, self.slop) is None
                       and r not in self.optional]
            gone = [r for r in missing if self._gone(r, stamp, final)]
            if gone:
                self._keys.pop(stamp)
                self.stats.unpaired += 1
                for r in gone:
                    self.stats.unpaired_key[r] = self.stats.unpaired_key.get(r, 0) + 1
        # Partners older than any key that could still take them are dropped.
        key_latest = self._keys.latest
        oldest_key = self._keys.stamps[0] if self._keys.stamps else None
        for r, s in self._streams.items():
            while s.stamps:
                st = s.stamps[0]
                if final or (key_latest is not None and st < key_latest - self.slop - self.horizon
                             and (oldest_key is None or st < oldest_key - self.slop)):
                    s.pop(st)
                    self.stats.unused[r] = self.stats.unused.get(r, 0) + 1
                else:
                    break
