"""Play a rosbag2 into a running ROS graph with rclpy, where ``ros2 bag play`` is missing.

Messages are published as the bag's raw CDR bytes (no conversion), in bag-time order, paced
by their bag timestamps (scaled by ``rate``), with ``/clock`` published before each message and
at ``clock_hz`` while waiting (``ros2 bag play --clock``), so nodes with use_sim_time follow
the bag. Topics whose connections offered transient-local QoS (latched, e.g. /tf_static) are
published transient-local. The wall time at which each message left is kept for latency
figures.
"""

import importlib
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from avs_net_ros.eval.bagio import typestore
from avs_net_ros.eval.topics import normalize
from avs_net_ros.messages import stamp_to_ns
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader


def message_class(msgtype: str) -> Any:
    """Return the rclpy message class of 'pkg/msg/Name'."""
    pkg, kind, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{pkg}.{kind}'), name)
    except (ImportError, AttributeError) as e:
        raise ImportError(f'message type {msgtype} is not installed: {e}') from e


class BagPlayer:
    """Publish selected topics of a bag, paced by bag time, plus /clock."""

    def __init__(self, node: Any, path: str, topics: Optional[Sequence[str]] = None,
                 rate: float = 1.0, clock_hz: float = 100.0,
                 stamp_topics: Sequence[str] = (), latch_lead_s: float = 0.5) -> None:
        """Load the messages of ``topics`` (all if None) from the bag and create publishers.

        ``stamp_topics`` are Image-like topics whose header stamps are recorded with the wall
        time each message was published (``sent``).

        Raises:
            ValueError: rate <= 0, or a requested topic is not in the bag.

        """
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        if rate <= 0:
            raise ValueError(f'rate must be positive, got {rate}')
        self.node = node
        self.rate = rate
        self.clock_period = 1.0 / clock_hz if clock_hz > 0 else None
        want = None if topics is None else {normalize(t) for t in topics}
        ts = typestore()
        self.messages: List[Tuple[int, str, bytes]] = []
        self.publishers: Dict[str, Any] = {}
        self.stamps: Dict[str, List[int]] = {normalize(t): [] for t in stamp_topics}
        self.sent: Dict[str, Dict[int, float]] = {t: {} for t in self.stamps}
        self._latched: set = set()
        with Reader(path) as reader:
            have = {c.topic for c in reader.connections}
            if want is not None and want - have:
                raise ValueError(f'{path} lacks the topic(s) {sorted(want - have)} to play; '
                                 f'it has {sorted(have)}')
            conns = [c for c in reader.connections if want is None or c.topic in want]
            for c in conns:
                if c.topic in self.publishers:
                    continue
                latched = any(q.durability == QosDurability.TRANSIENT_LOCAL
                              for q in c.ext.offered_qos_profiles)
                if latched:
                    self._latched.add(c.topic)
                qos = QoSProfile(depth=1 if latched else 10,
                                 reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                                 else DurabilityPolicy.VOLATILE)
                self.publishers[c.topic] = node.create_publisher(
                    message_class(c.msgtype), c.topic, qos)
            for c, t, raw in reader.messages(connections=conns):
                raw = bytes(raw)
                self.messages.append((int(t), c.topic, raw))
                if c.topic in self.stamps:
                    msg = ts.deserialize_cdr(raw, c.msgtype)
                    self.stamps[c.topic].append(stamp_to_ns(msg.header.stamp))
        self.messages.sort(key=lambda m: m[0])
        # Latched messages recorded before the data (e.g. /tf_static at time 0) go out
        # ``latch_lead_s`` before the data starts, so late subscribers have them first.
        first = next((t for t, topic, _ in self.messages if topic not in self._latched), None)
        if first is not None:
            self.messages = sorted(((max(t, first) if topic in self._latched else t, topic, raw)
                                    for t, topic, raw in self.messages), key=lambda m: m[0])
        self._lead = [m for m in self.messages if m[1] in self._latched and m[0] == first]
        self.messages = [m for m in self.messages if not (m[1] in self._latched
                                                          and m[0] == first)]
        self.latch_lead_s = latch_lead_s
        self._clock_pub = node.create_publisher(Clock, '/clock', 10)
        self._clock_msg = Clock()

    def wait_for_subscribers(self, topics: Sequence[str], timeout: float = 60.0) -> None:
        """Block until each of ``topics`` has a subscriber (the graph is up).

        Raises:
            TimeoutError: naming the topics nobody subscribed to.

        """
        deadline = time.monotonic() + timeout
        missing = list(topics)
        while time.monotonic() < deadline:
            missing = [t for t in topics
                       if self.publishers[normalize(t)].get_subscription_count() == 0]
            if not missing:
                return
            time.sleep(0.05)
        raise TimeoutError(f'no subscriber appeared on {missing} within {timeout:.0f} s; is '
                           f'the node graph running on the same ROS_DOMAIN_ID?')

    def _publish_clock(self, bag_ns: int) -> None:
        self._clock_msg.clock.sec, self._clock_msg.clock.nanosec = divmod(int(bag_ns), 10 ** 9)
        self._clock_pub.publish(self._clock_msg)

    def publish_latched(self) -> bool:
        """Publish the latched messages (e.g. /tf_static) now; return whether there are any."""
        for t_bag, topic, raw in self._lead:
            self._publish_clock(t_bag)
            self.publishers[topic].publish(raw)
        return bool(self._lead)

    def play(self, progress: Optional[Callable[[int], None]] = None) -> float:
        """Publish every message at its bag time; return the wall seconds it took."""
        if self.publish_latched():
            time.sleep(self.latch_lead_s)
        if not self.messages:
            return 0.0
        t0_bag = self.messages[0][0]
        start = time.monotonic()
        index = dict.fromkeys(self.stamps, 0)
        for t_bag, topic, raw in self.messages:
            due = start + (t_bag - t0_bag) / 1e9 / self.rate
            while True:
                now = time.monotonic()
                if now >= due:
                    break
                if self.clock_period:
                    self._publish_clock(t0_bag + int((now - start) * self.rate * 1e9))
                    time.sleep(min(self.clock_period, due - now))
                else:
                    time.sleep(due - now)
            self._publish_clock(t_bag)
            self.publishers[topic].publish(raw)
            if topic in self.stamps:
                stamp = self.stamps[topic][index[topic]]
                index[topic] += 1
                self.sent[topic][stamp] = time.monotonic()
            if progress is not None:
                progress(1)
        self._publish_clock(self.messages[-1][0])
        self._end = (time.monotonic(), self.messages[-1][0])
        return time.monotonic() - start

    def run_clock_on(self) -> None:
        """Publish /clock past the bag's end, following the wall clock at the play rate.

        Nodes on use_sim_time only run their timers while /clock moves; after the last
        message this lets them finish the frames still in hand (e.g. held for echo_wait).
        """
        end = getattr(self, '_end', None)
        if end is not None:
            self._publish_clock(end[1] + int((time.monotonic() - end[0]) * self.rate * 1e9))
