"""Live replay evaluation: play a bag into the running node graph, record, score, time it.

1. The graph starts in its own process (``avs_net_ros.ros.bringup``: use_sim:=false
   use_emitter:=false use_sim_time:=true) with the models under test.
2. The bag's camera, camera_info and echoes play with /clock (``ros2 bag play
   --clock`` where installed, ``player.BagPlayer`` otherwise).
3. The nodes' depth/metric, depth/pseudo_dense, depth/relative, depth/scale and /diagnostics
   are recorded (raw CDR) into a new bag next to the input's ground truth.
4. That bag is scored like any other (``recorded.score_recorded``), and the system figures the
   offline path cannot see are added: output rate, latency (camera frame published -> metric
   depth received), dropped frames, echoes without a pseudo-dense result, node diagnostics.
"""

import os
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

from avs_net_ros.eval.bagio import BagWriter, typestore
from avs_net_ros.eval.offline import EvalResult
from avs_net_ros.eval.recorded import score_recorded
from avs_net_ros.eval.topics import BagTopics
from avs_net_ros.messages import stamp_to_ns
from avs_net_ros.ros.session import (DIAGNOSTICS_TYPE, GraphSession, Recorder,
                                     write_depth_params)
import numpy as np
from rosbags.rosbag2 import Reader

#: Seconds ``ros2 bag play`` waits before playing, so that the node has matched its new
#: publishers before the first best-effort frame (it took 2.4 s here between processes).
ROS2_PLAY_DELAY_S = 4.0


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
        path: input bag (camera, camera_info, echoes and ground truth).
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
    with GraphSession(args, log_path, domain_id, 'avs_replay', record_prefix=prefix) as graph:
        node = graph.node
        env = dict(os.environ)
        env['ROS_DOMAIN_ID'] = str(domain_id)
        graph.record()
        recorder = graph.recorder
        play_topics = [tp.image, tp.camera_info, tp.echoes]
        with Reader(path) as r:
            have = {c.topic for c in r.connections}
        play_topics = [t for t in play_topics if t in have]
        ros2 = shutil.which('ros2')
        player = BagPlayer(node, path, play_topics, rate, stamp_topics=(tp.image, tp.echoes))
        graph.wait_active(startup_timeout)  # depth_inference: models warm, subscribed
        player.wait_for_subscribers([tp.image, tp.echoes], timeout=10.0)
        # Our publishers seeing the node's subscriptions does not mean the node's side has
        # matched ours yet (best-effort camera data sent before that is lost): wait until the
        # node's diagnostics count our publishers on its subscriptions.
        matched = [name for name, topic in (('image', tp.image), ('echo', tp.echoes))
                   if topic in play_topics]
        graph.wait_until(lambda: all(
            int(recorder.diagnostic_values('depth_inference').get(f'{name}_publishers', 0)) > 0
            for name in matched), startup_timeout,
            f'count the player on its {" and ".join(matched)} subscriptions on /diagnostics')
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
        graph.settle(tp.metric, settle_s, tick=player.run_clock_on)
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
