"""Frame triplets (previous, current, next) for self-supervised training on sequences.

Frames are ordered by time within a location (BV2 location folder, BV1 date folder). A frame
gets a triplet when the frames ``interval`` positions before and after it in that order exist.
By default neighbours must come from the same split, so training never reads a validation or
test frame; ``cross_split=True`` lets them come from any split of the same location (the real
BV2 splits are interleaved short runs, so few triplets survive otherwise). Positions count all
frames of the location in the chosen pool, so a gap in the recording shortens nothing silently:
a neighbour whose index differs by more than ``interval`` times ``max_gap`` is rejected.
"""

from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets.common import Record, sort_records


def triplet_index(records: Sequence[Record], interval: int = 20,
                  pool: Sequence[Record] = (), cross_split: bool = False,
                  max_gap: float = 1.5) -> List[Tuple[int, Record, Record]]:
    """Return (position in ``records``, previous, next) for every frame that has neighbours.

    ``pool`` holds the records neighbours may come from when ``cross_split`` is True (for
    example all splits of the dataset); ``records`` is always part of it.
    """
    if interval < 1:
        raise AvsInputError(f'triplet interval must be >= 1, got {interval}')
    candidates = list(records) + (list(pool) if cross_split else [])
    by_loc: Dict[str, List[Record]] = defaultdict(list)
    seen = set()
    for r in sort_records(candidates):
        key = (r.location, r.index, r.time)
        if key not in seen:
            seen.add(key)
            by_loc[r.location].append(r)
    position = {(r.location, r.index, r.time): i
                for loc in by_loc.values() for i, r in enumerate(loc)}
    out = []
    for i, r in enumerate(records):
        seq = by_loc[r.location]
        p = position[(r.location, r.index, r.time)]
        if p - interval < 0 or p + interval >= len(seq):
            continue
        prev, nxt = seq[p - interval], seq[p + interval]
        if abs(nxt.index - prev.index) > 2 * interval * max_gap:
            continue
        out.append((i, prev, nxt))
    return out
