"""A run of the node graph observed from this process: start, wait, record, settle, stop.

``GraphSession`` starts bringup (``avs_net_ros.ros.bringup``) in a child process, waits until its
lifecycle nodes are active, records the outputs (raw CDR with their receive time) and stops it;
``write_depth_params`` writes depth_inference's parameters for evaluating a set of models.
Live replay (``ros.replay``) and the demo (``tools.demo_graph``) share it.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from avs_net_ros.eval.bagio import IMAGE_TYPE, typestore

#: Outputs of depth_inference (relative to depth_topic_prefix) and their types.
OUTPUTS = {'metric': IMAGE_TYPE, 'pseudo_dense': IMAGE_TYPE, 'relative': IMAGE_TYPE,
           'scale': 'std_msgs/msg/Float32'}
DIAGNOSTICS_TYPE = 'diagnostic_msgs/msg/DiagnosticArray'


def write_depth_params(path: str, models: Dict[str, str], providers: List[str],
                       echo_wait: float) -> str:
    """Write depth_inference's parameter file for evaluating ``models``; return ``path``.

    ``models``: 'av' (the avs_model, AV or V), optional 'v' (fallback) and 'relative'.
    """
    import yaml

    params = {'avs_model': models['av'], 'relative_model': models.get('relative', ''),
              'visual_model': models.get('v', ''), 'providers': list(providers),
              # Echo frames are held for their echo and published with their own scale, not a
              # filtered one, so that each output equals the offline result of that frame.
              'echo_wait': float(echo_wait), 'scale_time_constant': 0.0,
              'publish_pseudo_dense': True, 'publish_relative': bool(models.get('relative')),
              'diagnostics_period': 0.5,
              'fallback': 'visual_model' if models.get('v') else
              ('last_scale' if models.get('relative') else 'none')}
    with open(path, 'w') as f:
        yaml.safe_dump({'/**/depth_inference': {'ros__parameters': params}}, f)
    return path


def interrupt(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """Stop ``process`` as Ctrl-C does (SIGINT), SIGKILL after ``timeout`` s; return its status.

    SIGINT lets a node process deactivate and destroy its nodes in order (``spin``).
    """
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Recorder:
    """Record raw messages of the graph's outputs with their wall receive time.

    Subscribes to ``prefix``/{metric, pseudo_dense, relative, scale}, /diagnostics and any
    ``extra`` {topic: message type} (e.g. the simulated robot's camera and ground truth).
    """

    def __init__(self, node: Any, prefix: str, extra: Optional[Dict[str, str]] = None,
                 enabled: bool = True) -> None:
        """Subscribe on ``node``; messages are kept only while ``enabled`` is true."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from avs_net_ros.ros.player import message_class

        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.lock = threading.Lock()
        self.enabled = enabled
        self.messages: List[tuple] = []   # (wall monotonic, topic, msgtype, raw)
        self.topics = {}
        subs = [(f'{prefix}/{role}', t) for role, t in OUTPUTS.items()]
        subs += [('/diagnostics', DIAGNOSTICS_TYPE)] + list((extra or {}).items())
        for topic, msgtype in subs:
            self.topics[topic.rsplit('/', 1)[-1] if topic.startswith(prefix + '/')
                        or topic == '/diagnostics' else topic] = topic
            node.create_subscription(message_class(msgtype), topic,
                                     self._callback(topic, msgtype), qos, raw=True)

    def _callback(self, topic: str, msgtype: str) -> Any:
        def cb(raw: bytes) -> None:
            t = time.monotonic()
            with self.lock:
                if self.enabled:
                    self.messages.append((t, topic, msgtype, bytes(raw)))
        return cb

    def diagnostic_values(self, name_prefix: str) -> Dict[str, str]:
        """Return the key/values of the newest recorded status whose name starts so ({})."""
        ts = typestore()
        with self.lock:
            diags = [m for m in self.messages if m[2] == DIAGNOSTICS_TYPE]
        for _, _, msgtype, raw in reversed(diags):
            for status in ts.deserialize_cdr(raw, msgtype).status:
                if status.name.startswith(name_prefix):
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def count(self, topic: str) -> int:
        """Return how many messages of ``topic`` were recorded."""
        with self.lock:
            return sum(1 for m in self.messages if m[1] == topic)

    def snapshot(self) -> List[tuple]:
        """Return a copy of the recorded (time, topic, msgtype, raw) tuples."""
        with self.lock:
            return list(self.messages)


class GraphSession:
    """One observed run of the node graph: bringup in a child process, recorded from here.

    Use as a context manager: the graph starts with its output in ``log_path``, rclpy is
    initialised in this process on the same ``domain_id`` (a private context), ``node`` is
    spun in a background thread and ``recorder`` subscribes to the outputs under
    ``record_prefix`` (plus ``record_extra``), keeping them while recording is on. On exit the
    graph gets SIGINT (then SIGKILL) and the context is shut down. DDS stays on this machine
    (``bringup.keep_local``). ``wait_active`` learns that the graph's lifecycle nodes are
    configured and active from their ``get_state`` services; ``settle`` waits out late
    outputs. Live replay (``ros.replay``) and the demo (``tools.demo_graph``) both run the
    graph through it.
    """

    def __init__(self, arguments: List[str], log_path: str, domain_id: int,
                 node_name: str = 'avs_graph_client', record_prefix: str = '/depth',
                 record_extra: Optional[Dict[str, str]] = None) -> None:
        """Prepare to run bringup with launch ``arguments`` (``name:=value``)."""
        self.arguments = list(arguments)
        self.record_prefix = record_prefix
        self.record_extra = dict(record_extra or {})
        self.recorder: Optional[Recorder] = None
        self.log_path = log_path
        self.domain_id = int(domain_id)
        self.node_name = node_name
        self.process: Optional[subprocess.Popen] = None
        self.node: Any = None
        self._log: Any = None
        self._context: Any = None
        self._executor: Any = None
        self.lifecycle: Any = None

    def managed_nodes(self) -> List[str]:
        """Fully qualified names of the lifecycle nodes that bringup activates."""
        from avs_net_ros.ros.bringup import split_arguments
        from avs_net_ros.ros.graph import resolve

        return [r.fully_qualified_name for r in resolve(split_arguments(self.arguments)[0])
                if r.autostart]

    def wait_active(self, timeout: float) -> None:
        """Wait until every managed node reports 'active' (models loaded, subscribed).

        Raises:
            RuntimeError: the graph exited, or a node was not active within ``timeout``.

        """
        from avs_net_ros.ros.lifecycle import ACTIVE, LifecycleError

        try:
            self.lifecycle.wait_for_state(self.managed_nodes(), ACTIVE, timeout,
                                          alive=self.check_alive)
        except LifecycleError as e:
            raise RuntimeError(f'the node graph is not running: {e}; see {self.log_path}'
                               ) from e

    def __enter__(self) -> 'GraphSession':
        """Start the graph and the local node."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from avs_net_ros.ros.bringup import keep_local
        from avs_net_ros.ros.lifecycle import LifecycleClient

        env = dict(os.environ)
        keep_local(env)
        env['ROS_DOMAIN_ID'] = str(self.domain_id)
        # the graph runs the code this process runs (a source tree, or another install on the
        # path): the folder holding this avs_net_ros goes first on the child's path
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env['PYTHONPATH'] = os.pathsep.join(
            [here] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        keep_local()
        self._context = Context()
        rclpy.init(context=self._context, domain_id=self.domain_id)
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        self._log = open(self.log_path, 'w')
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'avs_net_ros.ros.bringup', *self.arguments], env=env,
            stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self.node = rclpy.create_node(self.node_name, context=self._context)
            self._executor = SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self.node)
            threading.Thread(target=self._executor.spin, daemon=True).start()
            self.lifecycle = LifecycleClient(self.node)
            self.recorder = Recorder(self.node, self.record_prefix, self.record_extra,
                                     enabled=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def check_alive(self) -> None:
        """Raise RuntimeError (pointing at the log) if the graph has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f'the node graph exited with status {self.process.returncode}; '
                               f'see {self.log_path}')

    def wait_until(self, ready: Any, timeout: float, what: str) -> None:
        """Poll ``ready()`` until true; raise RuntimeError if the graph dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f'the node graph did not {what} within {timeout:.0f} s; see '
                           f'{self.log_path}')

    def record(self, on: bool = True) -> None:
        """Start (or stop) keeping the recorded outputs."""
        self.recorder.enabled = on

    def settle(self, topic: str, settle_s: float, tick: Optional[Callable[[], Any]] = None
               ) -> None:
        """Wait until no new message of ``topic`` arrived for ``settle_s`` (late outputs).

        ``tick`` runs on every poll (e.g. keeping a replay's /clock going).
        """
        last, quiet = -1, time.monotonic()
        while time.monotonic() - quiet < settle_s:
            if tick is not None:
                tick()
            n = self.recorder.count(topic)
            if n != last:
                last, quiet = n, time.monotonic()
            time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        """Stop the graph (SIGINT, then SIGKILL after 10 s) and this process's ROS context."""
        import rclpy

        if self.recorder is not None:
            self.recorder.enabled = False
        if self.process is not None:
            interrupt(self.process)
        if self._log is not None:
            self._log.close()
        if self._executor is not None:
            self._executor.shutdown()
        if self._context is not None:
            rclpy.try_shutdown(context=self._context)
