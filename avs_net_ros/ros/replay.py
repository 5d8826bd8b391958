"""Live replay evaluation: play a bag into the running node graph, record, score, time it.

1. The graph starts in its own process (``avs_net_ros.ros.bringup``: use_sim:=false
   use_emitter:=false use_sim_time:=true) with the models under test.
2. The bag's camera, camera_info, echoes and echoes/info play with /clock (``ros2 bag play
   --clock`` where installed, ``player.BagPlayer`` otherwise).
3. The nodes' depth/metric, depth/pseudo_dense, depth/relative, depth/scale and /diagnostics
   are recorded (raw CDR) into a new bag next to the input's ground truth.
4. That bag is scored like any other (``recorded.score_recorded``), and the system figures the
   offline path cannot see are added: output rate, latency (camera frame published -> metric
   depth received), dropped frames, echoes without a pseudo-dense result, node diagnostics.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from avs_net_ros.eval.bagio import BagWriter, IMAGE_TYPE, typestore
from avs_net_ros.eval.offline import EvalResult
from avs_net_ros.eval.recorded import score_recorded
from avs_net_ros.eval.topics import BagTopics
from avs_net_ros.messages import stamp_to_ns
import numpy as np
from rosbags.rosbag2 import Reader

#: Outputs of depth_inference (relative to depth_topic_prefix) and their types.
OUTPUTS = {'metric': IMAGE_TYPE, 'pseudo_dense': IMAGE_TYPE, 'relative': IMAGE_TYPE,
           'scale': 'std_msgs/msg/Float32'}
DIAGNOSTICS_TYPE = 'diagnostic_msgs/msg/DiagnosticArray'
#: Seconds ``ros2 bag play`` waits before playing, so that the node has matched its new
#: publishers before the first best-effort frame (it took 2.4 s here between processes).
ROS2_PLAY_DELAY_S = 4.0


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


class GraphProcess:
    """The node graph (``avs_net_ros.ros.bringup``) in a child process, plus a local node.

    Use as a context manager: the graph starts with its output in ``log_path``, rclpy is
    initialised in this process on the same ``domain_id`` (a private context) and ``node`` is
    spun in a background thread; on exit the graph gets SIGINT (then SIGKILL) and the context is
    shut down. DDS stays on this machine (``bringup.keep_local``). ``wait_active`` learns that
    the graph's lifecycle nodes are configured and active from their ``get_state`` services.
    """

    def __init__(self, arguments: List[str], log_path: str, domain_id: int,
                 node_name: str = 'avs_graph_client') -> None:
        """Prepare to run bringup with launch ``arguments`` (``name:=value``)."""
        self.arguments = list(arguments)
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

    def __enter__(self) -> 'GraphProcess':
        """Start the graph and the local node."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from avs_net_ros.ros.bringup import keep_local
        from avs_net_ros.ros.lifecycle import LifecycleClient

        env = dict(os.environ)
        keep_local(env)
        env['ROS_DOMAIN_ID'] = str(self.domain_id)
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

    def __exit__(self, *exc: Any) -> None:
        """Stop the graph (SIGINT, then SIGKILL after 10 s) and this process's ROS context."""
        import rclpy

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        if self._executor is not None:
            self._executor.shutdown()
        if self._context is not None:
            rclpy.try_shutdown(context=self._context)


def _percentile(values: List[float], q: float) -> Optional[float]:
    return float(np.percentile(values, q)) if values else None


def replay_bag(path: str, out_dir: str, models: Dict[str, str],
               topics: BagTopics = BagTopics(), *, domain_id: int = 20, rate: float = 1.0,
               providers: List[str] = ('cpu',), echo_wait: float = 0.5,
               max_depth: Optional[float] = None, startup_timeout: float = 90.0,
               settle_s: float = 3.0, progress: bool = True,
               panel_frames: List[int] = ()) -> EvalResult:
    """Replay ``path`` through the node graph and score what it publishes.

    Args:
        path: input bag (camera, camera_info, echoes, echoes/info and ground truth).
        out_dir: folder for the recorded bag (``replay_bag``) and the graph's log.
        models: 'av' (required), 'v' and 'relative' ONNX paths.
        topics: the bag's topic names (played under the same names).
        domain_id: ROS_DOMAIN_ID of the graph and of this process's player/recorder.
        rate: playback speed factor.
        echo_wait: depth_inference's echo_wait (s): frames wait this long for their echo.
        max_depth: scoring range; default the AV model's contract max_depth.
        settle_s: seconds to wait after the last output for late results.

    Raises:
        RuntimeError: the graph exited or never subscribed.

    """
    from avs_net_ros.core.contract import read_onnx_contract
    from avs_net_ros.ros.player import BagPlayer
    from tqdm import tqdm

    tp = topics.resolved()
    if max_depth is None:
        max_depth = float(read_onnx_contract(models['av']).max_depth)
    os.makedirs(out_dir, exist_ok=True)
    record_path = os.path.join(out_dir, 'replay_bag')
    if os.path.exists(record_path):
        shutil.rmtree(record_path)
    params = write_depth_params(os.path.join(out_dir, 'depth_inference_replay.yaml'),
                                models, list(providers), echo_wait)
    prefix = tp.metric.rsplit('/', 1)[0] or '/depth'
    args = ['use_sim:=false', 'use_emitter:=false', 'use_sim_time:=true',
            f'depth_params_file:={params}', f'image_topic:={tp.image}',
            f'camera_info_topic:={tp.camera_info}', f'echoes_topic:={tp.echoes}',
            f'depth_topic_prefix:={prefix}']
    log_path = os.path.join(out_dir, 'graph.log')
    with GraphProcess(args, log_path, domain_id, 'avs_replay') as graph:
        node = graph.node
        env = dict(os.environ)
        env['ROS_DOMAIN_ID'] = str(domain_id)
        recorder = Recorder(node, prefix)
        play_topics = [tp.image, tp.camera_info, tp.echoes, tp.echo_info]
        with Reader(path) as r:
            have = {c.topic for c in r.connections}
        play_topics = [t for t in play_topics if t in have]
        ros2 = shutil.which('ros2')
        player = BagPlayer(node, path, play_topics, rate, stamp_topics=(tp.image, tp.echoes))
        graph.wait_active(startup_timeout)  # depth_inference: models warm, subscribed
        player.wait_for_subscribers([tp.image, tp.echoes], timeout=10.0)
        # Our publishers seeing the node's subscriptions does not mean the node's side has
        # matched ours yet (best-effort camera data sent before that is lost): wait until the
        # node's diagnostics say that the latched echoes/info reached it.
        if player.publish_latched():
            graph.wait_until(lambda: recorder.diagnostic_values('depth_inference').get(
                'echo_info') == 'received', startup_timeout,
                f'report receiving {tp.echo_info} on /diagnostics')
        time.sleep(0.5)
        if ros2:  # a real ROS 2 install: its own player (latency then is not measured)
            played = time.monotonic()
            # --delay: its new publishers must be matched before the first best-effort frame;
            # --wait-for-all-acked: it must not exit before the reliable echoes are delivered
            subprocess.run([ros2, 'bag', 'play', path, '--clock', '--rate', str(rate),
                            '--delay', str(ROS2_PLAY_DELAY_S), '--wait-for-all-acked', '3000',
                            '--disable-keyboard-controls', '--topics', *play_topics],
                           env=env, check=True)
            wall = time.monotonic() - played - ROS2_PLAY_DELAY_S
            player.sent = {t: {} for t in player.sent}
        else:
            with tqdm(total=len(player.messages), desc='replay', unit='msg',
                      disable=not progress) as bar:
                wall = player.play(bar.update)
        # Wait for late outputs: until nothing new arrived for settle_s.
        last, quiet = -1, time.monotonic()
        while time.monotonic() - quiet < settle_s:
            player.run_clock_on()
            n = recorder.count(tp.metric)
            if n != last:
                last, quiet = n, time.monotonic()
            time.sleep(0.05)
    system = _system_figures(player, recorder, tp, wall, rate)
    _write_recording(record_path, path, tp, recorder)
    roles = ['metric', 'pseudo_dense'] + (['relative'] if models.get('relative') else [])
    res = score_recorded(record_path, roles, tp, max_depth=max_depth, progress=progress,
                         panel_frames=panel_frames)
    res.system = system
    res.system['graph_log'] = log_path
    res.system['player'] = 'ros2 bag play' if ros2 else 'avs_net_ros.ros.player'
    return res


def _stamps(recorder: Recorder, topic: str) -> Dict[int, float]:
    ts = typestore()
    out = {}
    for t, top, msgtype, raw in recorder.messages:
        if top == topic:
            out[stamp_to_ns(ts.deserialize_cdr(raw, msgtype).header.stamp)] = t
    return out


def _system_figures(player: Any, recorder: Recorder, tp: BagTopics, wall: float,
                    rate: float) -> Dict[str, Any]:
    frames = player.stamps.get(tp.image, [])
    echoes = player.stamps.get(tp.echoes, [])
    metric = _stamps(recorder, tp.metric)
    pseudo = _stamps(recorder, tp.pseudo_dense)
    sent = player.sent.get(tp.image, {})
    latency = [1e3 * (metric[s] - sent[s]) for s in metric if s in sent]
    times = sorted(metric.values())
    out_rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else None
    sent_times = sorted(sent.values())
    in_rate = ((len(sent_times) - 1) / (sent_times[-1] - sent_times[0])
               if len(sent_times) > 1 and sent_times[-1] > sent_times[0] else None)
    fig: Dict[str, Any] = {
        'playback_rate': rate, 'replay_wall_s': wall,
        'camera_frames_played': len(frames), 'echoes_played': len(echoes),
        'metric_outputs': len(metric), 'pseudo_dense_outputs': len(pseudo),
        'camera_rate_hz': in_rate, 'output_rate_hz': out_rate,
        'latency_ms_median': _percentile(latency, 50),
        'latency_ms_p95': _percentile(latency, 95),
        'latency_ms_max': max(latency) if latency else None,
        'dropped_frames': len(set(frames) - set(metric)),
        'echoes_without_pseudo_dense': len(set(echoes) - set(pseudo)),
        'outputs_for_unknown_frames': len(set(metric) - set(frames)),
    }
    fig.update(_diagnostics(recorder))
    return fig


def _diagnostics(recorder: Recorder) -> Dict[str, Any]:
    ts = typestore()
    last = None
    for _, top, msgtype, raw in recorder.messages:
        if msgtype == DIAGNOSTICS_TYPE:
            last = ts.deserialize_cdr(raw, msgtype)
    if last is None:
        return {}
    out = {}
    for status in last.status:
        if 'depth' in status.name:
            out['node_status'] = f'{status.name}: {status.message}'
            for kv in status.values:
                out[f'node {kv.key}'] = kv.value
    return out


def _write_recording(record_path: str, path: str, tp: BagTopics, recorder: Recorder) -> None:
    """Write the recorded outputs plus the input's ground truth and images into a bag."""
    with BagWriter(record_path, 'mcap', tp) as w:
        with Reader(path) as r:
            conns = [c for c in r.connections if c.topic in (tp.ground_truth, tp.image)]
            for c, t, raw in r.messages(connections=conns):
                w.write_raw(c.topic, c.msgtype, bytes(raw), t)
        for t, topic, msgtype, raw in recorder.messages:
            w.write_raw(topic, msgtype, raw, int(t * 1e9))  # receive time (monotonic)


def temp_out_dir() -> str:
    """Return a fresh folder for a replay's files."""
    return tempfile.mkdtemp(prefix='avs_replay_')


def compare_with_offline(offline: EvalResult, replay: EvalResult, variant: str,
                         relative: Optional[str] = None) -> Dict[str, Any]:
    """Compare per-frame metrics of a replay with the offline evaluation of the same frames.

    Pairs ``metric`` with the offline Proposed row of ``relative`` (or M_p (AV) without a
    relative model) and ``pseudo_dense`` with M_p (AV), by stamp. Returns the number of common
    frames and the largest absolute difference of each compared figure.
    """
    from avs_net_ros.eval.scoring import ROW_MP_AV, ROW_PROPOSED

    off = {r['stamp_ns']: r for r in offline.per_frame}
    pairs = {'metric': f'{variant}/{relative}/{ROW_PROPOSED}' if relative
             else f'{variant}/{ROW_MP_AV}', 'pseudo_dense': f'{variant}/{ROW_MP_AV}'}
    diffs: Dict[str, float] = {}
    common = 0
    for rec in replay.per_frame:
        o = off.get(rec['stamp_ns'])
        if o is None:
            continue
        common += 1
        for role, key in pairs.items():
            if rec.get(role) is None or o.get(key) is None:
                continue
            for m in ('abs_rel', 'delta1', 'rmse'):
                d = abs(rec[role][m] - o[key][m])
                name = f'{role} {m}'
                diffs[name] = max(diffs.get(name, 0.0), d)
    return {'frames_compared': common, 'offline_frames': len(off),
            'replay_frames': len(replay.per_frame),
            'max_abs_difference': diffs}
