"""Stamp pairing with message_filters' TimeSynchronizer / ApproximateTimeSynchronizer rules."""

from avs_net_ros.runtime.pairing import Pairer, StampSynchronizer
import pytest
from ros_fixtures import header


class Msg:
    """A stamped message with a label, enough for the synchronizer."""

    def __init__(self, stamp_ns, label=''):
        self.header = header(stamp_ns)
        self.label = label

    def __repr__(self):
        return f'Msg({self.label})'


MS = 1_000_000


def test_exact_pairs_equal_stamps_whatever_the_order():
    sync = StampSynchronizer(2, queue_size=5)
    got = []
    sync.register_callback(lambda a, b: got.append((a.label, b.label)))
    assert sync.add(0, Msg(10 * MS, 'f10')) == []
    assert sync.add(0, Msg(43 * MS, 'f43')) == []
    assert sync.add(1, Msg(11 * MS, 'e11')) == []  # 1 ms off: no exact match
    out = sync.add(1, Msg(10 * MS, 'e10'))
    assert [(a.label, b.label) for a, b in out] == [('f10', 'e10')]
    sync.add(1, Msg(43 * MS, 'e43'))
    assert got == [('f10', 'e10'), ('f43', 'e43')]
    assert sync.pending() == [0, 1]  # matched messages are removed, e11 waits


def test_queue_size_bounds_memory_dropping_oldest_stamp():
    sync = StampSynchronizer(2, queue_size=3)
    for i in range(100):
        sync.add(0, Msg(i * MS))
    assert sync.pending() == [3, 0]
    assert sync.add(1, Msg(50 * MS)) == []  # evicted long ago
    assert len(sync.add(1, Msg(98 * MS))) == 1
    assert sync.pending() == [2, 1]


def test_approximate_takes_closest_within_slop_strictly():
    sync = StampSynchronizer(2, queue_size=10, slop=0.010)
    for t in (100, 104, 109):
        sync.add(0, Msg(t * MS, f'f{t}'))
    out = sync.add(1, Msg(106 * MS, 'e106'))
    assert [(a.label, b.label) for a, b in out] == [('f104', 'e106')]  # 2 ms beats 3 ms
    # spread must be strictly below slop: 10 ms apart does not pair
    assert sync.add(1, Msg(119 * MS, 'e119')) == []
    out = sync.add(1, Msg(112 * MS, 'e112'))
    assert [(a.label, b.label) for a, b in out] == [('f109', 'e112')]
    assert sync.pending() == [1, 1]


def test_three_inputs_exact():
    sync = StampSynchronizer(3, queue_size=4)
    sync.add(0, Msg(5, 'a'))
    sync.add(2, Msg(5, 'c'))
    assert sync.pending() == [1, 0, 1]
    (a, b, c), = sync.add(1, Msg(5, 'b'))
    assert (a.label, b.label, c.label) == ('a', 'b', 'c')


def test_bad_settings_are_rejected():
    for args in ((1, 5), (2, 0), (2, 5, -0.1)):
        with pytest.raises(ValueError, match='StampSynchronizer needs'):
            StampSynchronizer(*args)


def test_pairer_backend_and_callback():
    got = []
    own = Pairer(2, 5, 0.0, lambda a, b: got.append((a.label, b.label)),
                 prefer_message_filters=False)
    assert own.backend == 'avs_net_ros.runtime.pairing'
    own.add(1, Msg(7, 'e'))
    own.add(0, Msg(7, 'f'))
    assert got == [('f', 'e')]


def test_same_pairs_as_message_filters():
    """Where message_filters is installed, both backends pair a stream identically."""
    pytest.importorskip('message_filters')
    stream = [(0, 0), (1, 2), (0, 33), (1, 35), (0, 66), (0, 100), (1, 99), (1, 140)]
    results = []
    for prefer in (True, False):
        got = []
        p = Pairer(2, 5, 0.004, lambda a, b, got=got: got.append((a.label, b.label)), prefer)
        for i, t in stream:
            p.add(i, Msg(t * MS, f'{i}:{t}'))
        results.append(got)
    assert results[0] == results[1] and results[0]
