"""Worker threads and per-node executor threads (avs_net_ros.ros.worker, avs_net_ros.ros.spin).

The spinning test runs real rclpy nodes over DDS (loopback only, domain 98): a slow callback in
one node must not delay another node's subscription, and a subscription must take every message
of a stream while /clock floods the process (what lost camera frames in bag replay).
"""

import threading
import time

from avs_net_ros.ros.worker import WakeableWorker
import pytest
from ros_fixtures import RosHarness, wait_for

DOMAIN_ID = 98


def test_worker_folds_wakes_into_runs_and_never_overlaps():
    running, runs, overlaps = [0], [0], [0]
    gate = threading.Event()

    def job():
        running[0] += 1
        overlaps[0] += running[0] > 1
        gate.wait(5)
        runs[0] += 1
        running[0] -= 1

    w = WakeableWorker(job, 'test worker')
    w.start()
    w.wake()
    wait_for(lambda: running[0] == 1, 5, 'the first run')
    for _ in range(9):
        w.wake()  # while a run is going on: folded into one more run
    time.sleep(0.1)
    gate.set()
    wait_for(lambda: runs[0] >= 2, 5, 'two runs')
    time.sleep(0.2)
    assert runs[0] == 2 and overlaps[0] == 0
    assert w.stop() and not w.running


def test_worker_polls_with_a_period_and_survives_a_failing_job():
    calls, errors = [], []

    def job():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError('first run fails')

    w = WakeableWorker(job, 'test poller', period=0.02, on_error=errors.append)
    w.start()
    wait_for(lambda: len(calls) >= 5, 5, 'five polled runs')
    assert w.stop()
    assert len(errors) == 1 and 'first run fails' in str(errors[0])
    with pytest.raises(ValueError, match='period'):
        WakeableWorker(job, 'bad', period=0.0)


def test_worker_runs_again_when_the_job_asks():
    calls = []

    def job():  # like depth_inference: "a held frame falls due in 50 ms"
        calls.append(time.monotonic())
        return 0.05 if len(calls) < 3 else None

    w = WakeableWorker(job, 'test deadline')
    w.start()
    w.wake()
    wait_for(lambda: len(calls) == 3, 5, 'two runs without a wake')
    time.sleep(0.2)
    assert w.stop() and len(calls) == 3
    assert 0.04 <= calls[1] - calls[0] and 0.04 <= calls[2] - calls[1]


@pytest.mark.slow
def test_each_node_spins_on_its_own_thread_and_takes_every_message():
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data, QoSProfile
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Int32

    ros = RosHarness(DOMAIN_ID)
    try:
        slow = ros.add(Node('slow_node', context=ros.context))
        fast = ros.add(Node('fast_node', context=ros.context))
        slow_started = threading.Event()

        def block(msg):
            slow_started.set()
            time.sleep(1.0)  # a long callback in another node

        got = []
        slow.create_subscription(Int32, 'block', block, 10)
        fast.create_subscription(Int32, 'stream', lambda m: got.append(m.data),
                                 QoSProfile(depth=1, reliability=qos_profile_sensor_data
                                            .reliability))
        pub_block = ros.publisher(Int32, 'block')
        pub = ros.publisher(Int32, 'stream')
        clock = ros.publisher(Clock, '/clock', 10)
        wait_for(lambda: pub.get_subscription_count() and pub_block.get_subscription_count(),
                 10, 'subscribers')
        time.sleep(0.3)
        pub_block.publish(Int32(data=1))
        wait_for(slow_started.is_set, 5, 'the slow callback to start')
        for i in range(20):  # 20 messages at 20 Hz with /clock at 200 Hz alongside
            for _ in range(10):
                clock.publish(Clock())
                time.sleep(0.005)
            pub.publish(Int32(data=i))
        wait_for(lambda: len(got) == 20, 5, 'all 20 messages')
        assert got == list(range(20))
    finally:
        ros.close()


_SIGNALLED_PROCESS = """
from avs_net_ros.ros.spin import init_process, spin_nodes
import rclpy
from rclpy.node import Node
from rclpy.signals import get_current_signal_handlers_options, SignalHandlerOptions

init_process()
assert get_current_signal_handlers_options() == SignalHandlerOptions.NO


class Ticking(Node):
    def __init__(self):
        super().__init__('ticking')
        self.create_timer(0.01, lambda: None)

    def destroy_node(self):
        print('destroyed', flush=True)
        super().destroy_node()


node = Ticking()
print('ready', flush=True)
spin_nodes([node])
rclpy.try_shutdown()
print('shut down', flush=True)
"""


@pytest.mark.parametrize('sig', ['SIGINT', 'SIGTERM'])
def test_a_signal_stops_the_nodes_in_order_without_rclpy_signal_handlers(sig):
    import signal
    import subprocess
    import sys

    from ros_fixtures import ROOT, ros_env

    proc = subprocess.Popen([sys.executable, '-c', _SIGNALLED_PROCESS], cwd=ROOT,
                            env=ros_env(DOMAIN_ID), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == 'ready'
        time.sleep(0.3)  # the timer is firing
        proc.send_signal(getattr(signal, sig))
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert out.split() == ['destroyed', 'shut', 'down'], out
