"""Helpers for the ROS tests: a real rclpy context on a private domain, and test messages.

Every context keeps DDS traffic on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, the
package's Fast DDS profile: shared memory plus UDP on 127.0.0.1) and uses a domain id from the
range 90-99 that the ROS tests own. Waiting is always on a condition with a timeout.
"""

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List

from avs_net_msgs.msg import EchoFrame
from avs_net_ros.core.acoustics import echo_window_samples
from avs_net_ros.messages import array_to_image, echo_to_frame, EchoInfo, ns_to_stamp
from avs_net_ros.ros.spin import NodeSpinner
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

#: The package's folder (package.xml, config/, the Python package) and the repository root
#: above it (scripts/, training/, benchmarks/ and the message package beside it).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(ROOT)
FASTDDS_PROFILE = os.path.join(ROOT, 'config', 'fastdds_localhost.xml')
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
#: Echo settings of test/model_builders' AV model (44.1 kHz, 6 m window at 340 m/s).
TEST_SAMPLE_RATE = 44100
TEST_WINDOW = echo_window_samples(6.0, TEST_SAMPLE_RATE, 340.0)


def ros_env(domain_id: int) -> Dict[str, str]:
    """Return a copy of os.environ for a ROS process on ``domain_id``, loopback only.

    Each test module uses its own domain ids (ROS nodes 90-99, audio/emitter 80-89, eval
    20-29, demo 30-39) so that modules never see each other's traffic.
    """
    if not 0 <= domain_id <= 101:
        raise ValueError(f'ROS_DOMAIN_ID must be in 0..101 here, got {domain_id}')
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               FASTRTPS_DEFAULT_PROFILES_FILE=FASTDDS_PROFILE,
               RMW_IMPLEMENTATION='rmw_fastrtps_cpp', PYTHONUNBUFFERED='1',
               RCUTILS_LOGGING_BUFFERED_STREAM='0',
               PYTHONPATH=os.pathsep.join([ROOT, REPO] + [p for p in sys.path if p]))
    return env


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = 'condition',
             period: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(period)


class Collector:
    """Thread-safe list of the messages received on one topic."""

    def __init__(self) -> None:
        self.msgs: List[Any] = []
        self.times: List[float] = []  # time.monotonic() at arrival
        self.lock = threading.Lock()

    def __call__(self, msg: Any) -> None:
        """Store ``msg`` and when it came."""
        with self.lock:
            self.msgs.append(msg)
            self.times.append(time.monotonic())

    def timed(self) -> List[Any]:
        """Return (arrival time, message) pairs so far."""
        with self.lock:
            return list(zip(self.times, self.msgs))

    def snapshot(self) -> List[Any]:
        """Return a copy of the messages so far."""
        with self.lock:
            return list(self.msgs)

    def clear(self) -> None:
        """Forget the messages so far."""
        with self.lock:
            self.msgs.clear()
            self.times.clear()

    def __len__(self) -> int:
        """Messages so far."""
        with self.lock:
            return len(self.msgs)


class RosHarness:
    """A private rclpy context with a tester node, each node spun on a thread of its own."""

    def __init__(self, domain_id: int) -> None:
        """Initialise rclpy on ``domain_id`` (loopback only) and start spinning."""
        for k, v in ros_env(domain_id).items():
            if k.startswith(('ROS_', 'FASTRTPS', 'RMW')):
                os.environ[k] = v
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.tester = Node('avs_tester', context=self.context)
        # one executor thread per node, like the nodes' own processes (avs_net_ros.ros.spin)
        self.spinner = NodeSpinner(self.context)
        self.nodes: List[Node] = []
        self._spin(self.tester)

    def _spin(self, node: Node) -> None:
        self.spinner.add(node)

    def _stop(self, node: Node) -> None:
        self.spinner.remove(node)

    def add(self, node: Node) -> Node:
        """Spin ``node`` too (it must use ``self.context``)."""
        self.nodes.append(node)
        self._spin(node)
        return node

    def remove(self, node: Node) -> None:
        """Stop spinning ``node`` and destroy it."""
        self.nodes.remove(node)
        self._stop(node)

    def publisher(self, msg_type: Any, topic: str, qos: Any = RELIABLE) -> Any:
        """Create a publisher on the tester node."""
        return self.tester.create_publisher(msg_type, topic, qos)

    def collect(self, msg_type: Any, topic: str, qos: Any = RELIABLE) -> Collector:
        """Subscribe the tester node to ``topic`` and return the Collector."""
        c = Collector()
        self.tester.create_subscription(msg_type, topic, c, qos)
        return c

    def close(self) -> None:
        """Stop spinning, destroy the nodes and shut the context down."""
        for node in list(self.nodes):
            self.remove(node)
        self._stop(self.tester)
        rclpy.shutdown(context=self.context)


def overrides(**params: Any) -> List[Parameter]:
    """Return rclpy Parameters for ``parameter_overrides``."""
    return [Parameter(k, value=v) for k, v in params.items()]


def header(stamp_ns: int, frame_id: str = 'camera_optical') -> Header:
    """Return a Header with ``stamp_ns`` and ``frame_id``."""
    h = Header(frame_id=frame_id)
    ns_to_stamp(stamp_ns, h.stamp)
    return h


def make_frame(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Return a deterministic (H, W, 3) uint8 RGB image."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3),
                                                dtype=np.uint8)


def make_echo(seed: int, samples: int = 2000, gain: float = 0.1) -> np.ndarray:
    """Return a deterministic (2, samples) float32 echo."""
    rng = np.random.default_rng(1000 + seed)
    return (rng.standard_normal((2, samples)) * gain).astype(np.float32)


def image_msg(rgb: np.ndarray, stamp_ns: int, encoding: str = 'rgb8') -> Image:
    """Return an Image of ``rgb`` with a camera header."""
    return array_to_image(rgb, encoding, header(stamp_ns))


def echo_info(sample_rate: int = TEST_SAMPLE_RATE, channels: int = 2,
              window: int = TEST_WINDOW) -> EchoInfo:
    """Return the echo settings of the test models (44.1 kHz, 6 m window, two microphones)."""
    return EchoInfo(sample_rate=sample_rate, channels=channels, window_samples=window,
                    lead_in_samples=0, speed_of_sound=340.0, max_range=6.0,
                    chirp_start_hz=20.0, chirp_end_hz=20000.0, chirp_duration=0.003,
                    chirp_method='linear', backend='test')


def echo_msg(echo: np.ndarray, stamp_ns: int, **info: Any) -> EchoFrame:
    """Return an ``echoes`` EchoFrame with the camera frame's stamp (``echo_info(**info)``)."""
    return echo_to_frame(echo, echo_info(channels=echo.shape[0], window=echo.shape[1], **info),
                         header(stamp_ns, 'speaker_link'))


def camera_info_msg(stamp_ns: int, height: int = 48, width: int = 64) -> CameraInfo:
    """Return a pinhole CameraInfo for the test frames."""
    info = CameraInfo(header=header(stamp_ns), height=height, width=width,
                      distortion_model='plumb_bob')
    f = 0.8 * width
    info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def wait_matched(pub: Any, count: int = 1, timeout: float = 10.0) -> None:
    """Wait until ``pub`` has ``count`` subscribers (DDS discovery)."""
    wait_for(lambda: pub.get_subscription_count() >= count, timeout,
             f'{count} subscriber(s) on {pub.topic_name}')


SENSOR_QOS = qos_profile_sensor_data


def half_dark_frame(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Return a frame whose left half has red < 0.5 (no depth from the masked model)."""
    rgb = make_frame(seed, height, width)
    rgb[:, :width // 2, 0] = rgb[:, :width // 2, 0] // 4
    rgb[:, width // 2:, 0] = 160 + rgb[:, width // 2:, 0] // 3
    return rgb


def publish_until(pub: Any, msg: Any, predicate: Callable[[], Any], timeout: float = 10.0,
                  what: str = 'a reaction', period: float = 0.25) -> Any:
    """Publish ``msg`` (again every ``period`` s) until ``predicate`` holds.

    Best-effort (sensor-data) topics may drop a message, most often the first one after a
    subscription appears; repeating it is how a camera behaves anyway.
    """
    end = time.monotonic() + timeout
    while True:
        pub.publish(msg)
        try:
            return wait_for(predicate, min(period, max(0.0, end - time.monotonic())), what)
        except AssertionError:
            if time.monotonic() >= end:
                raise AssertionError(f'timed out after {timeout} s waiting for {what}') from None
