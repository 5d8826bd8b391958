"""The demo's node-graph runs: the simulated robot and depth_inference, recorded per pose.

One run starts the graph (``avs_net_ros.ros.bringup use_sim:=true use_emitter:=false``) in a
child process on its own ROS domain, waits until depth_inference reports the lifecycle state
active (``GraphSession.wait_active``), records camera, ground truth and the depth outputs from
this process, and stops once every pose of the trajectory has an output.
"""

import hashlib
import os
import time
from typing import Any, Dict

from avs_net_ros.tools.demo_models import say

import numpy as np


def sim_params(path: str, av_model: str, *, seed: int, poses: int, rate: float,
               width: int, height: int, family: str = 'bv2_like',
               family_config: str = '', trajectory: str = 'tour') -> str:
    """Write sim_robot's parameter file so its echoes match the AV model's contract.

    ``family_config`` (a scene-family YAML file) replaces ``family`` when given. The default
    ``trajectory`` is a tour: independent views spread over the room, so a room's figures are
    not those of one view (a walk's poses are centimetres apart).
    """
    from avs_net_ros.core.contract import read_onnx_contract
    import yaml

    echo = read_onnx_contract(av_model).echo
    if echo is None:
        raise ValueError(f'{av_model} takes no echo; the demo needs an audio-visual model')
    lead_in = int(echo.lead_in_samples)
    params = {'family': family, 'family_config': family_config, 'seed': int(seed),
              'num_poses': int(poses), 'trajectory': trajectory,
              'frame_rate': float(rate), 'width': int(width), 'height': int(height),
              'sensor_invalid': True, 'echo_noise': True, 'chirp_every': 1,
              'echo_max_range': float(echo.echo_max_depth),
              'echo_lead_in_samples': lead_in}
    with open(path, 'w') as f:
        yaml.safe_dump({'/**/sim_robot': {'ros__parameters': params}}, f)
    return path


def _key(gt_raw: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(gt_raw).tobytes()).hexdigest()


class RunRecord:
    """What one graph run published, grouped by frame stamp."""

    def __init__(self, label: str) -> None:
        """Start an empty record called ``label``."""
        self.label = label
        self.frames: Dict[int, Dict[str, Any]] = {}   # stamp -> {role: array, role_t: time}
        self.wall_s = 0.0
        self.startup_s = 0.0
        self.graph_log = ''
        self.end_t = float('inf')   # monotonic end of the recording
        self.grace_s = 0.0          # frames younger than this at the end may still be held

    def add(self, role: str, stamp: int, value: Any, t: float) -> None:
        """Store one message's content and receive time."""
        f = self.frames.setdefault(stamp, {})
        f[role] = value
        f[role + '_t'] = t

    def by_pose(self, need_echo: bool) -> Dict[str, Dict[str, Any]]:
        """Return the first complete frame of every pose (keyed by its ground truth)."""
        out: Dict[str, Dict[str, Any]] = {}
        for stamp in sorted(self.frames):
            f = self.frames[stamp]
            if not all(k in f for k in ('gt', 'rgb', 'metric')):
                continue
            if need_echo and 'pseudo_dense' not in f:
                continue
            out.setdefault(_key(f['gt']), dict(f, stamp=stamp))
        return out

    def system(self) -> Dict[str, Any]:
        """Return the figures this process could see of the run."""
        frames = [f for f in self.frames.values() if 'rgb' in f]
        outs = sorted(f['metric_t'] for f in self.frames.values() if 'metric' in f)
        lat = [1e3 * (f['metric_t'] - f['rgb_t']) for f in self.frames.values()
               if 'metric' in f and 'rgb' in f]
        cam = sorted(f['rgb_t'] for f in frames)
        return {'camera_frames': len(frames),
                # outputs of recorded camera frames; an output can also arrive for a frame
                # published just before recording began, counted on its own
                'metric_outputs': sum('metric' in f for f in frames),
                'metric_outputs_of_earlier_frames': sum('metric' in f and 'rgb' not in f
                                                        for f in self.frames.values()),
                'pseudo_dense_outputs': sum('pseudo_dense' in f for f in self.frames.values()),
                'camera_rate_hz': (len(cam) - 1) / (cam[-1] - cam[0]) if len(cam) > 1 else None,
                'output_rate_hz': (len(outs) - 1) / (outs[-1] - outs[0])
                if len(outs) > 1 else None,
                'latency_ms_median': float(np.median(lat)) if lat else None,
                'latency_ms_p95': float(np.percentile(lat, 95)) if lat else None,
                # frames still inside the node's echo wait when recording stopped don't count
                'frames_without_output': sum('metric' not in f for f in frames
                                             if f['rgb_t'] < self.end_t - self.grace_s),
                'recording_s': self.wall_s, 'startup_s': self.startup_s,
                'graph_log': self.graph_log}


def run_graph(label: str, models: Dict[str, str], sim_file: str, out_dir: str, *,
              domain_id: int, poses: int, rate: float, need_echo: bool,
              startup_timeout: float = 90.0, max_loops: float = 6.0,
              echo_wait: float = 1.5, progress: bool = True) -> RunRecord:
    """Run the simulated graph with ``models`` until every pose has an output; record it.

    Args:
        label: name of the run (files ``<out_dir>/<label>_graph.log``, params).
        models: 'av' is depth_inference's avs_model (AV or V); optional 'v', 'relative'.
        sim_file: sim_robot parameter file (``sim_params``).
        domain_id: ROS_DOMAIN_ID of the graph and of this process's recorder.
        poses, rate: the trajectory's poses and frame rate (the stop condition and time limit).
        need_echo: count a pose only when its output came with an echo (pseudo_dense).
        max_loops: give up after this many trajectory loops of recording.
        echo_wait: depth_inference's echo_wait (s) when ``need_echo`` (else 0: a visual-only
            model has nothing to wait for).

    Raises:
        RuntimeError: the graph exited, never started publishing, or published nothing.

    """
    from avs_net_ros.ros.session import GraphSession, write_depth_params
    from avs_net_ros.eval.bagio import IMAGE_TYPE, typestore
    from avs_net_ros.messages import image_to_array, image_to_rgb, stamp_to_ns
    from tqdm import tqdm

    os.makedirs(out_dir, exist_ok=True)
    echo_wait = echo_wait if need_echo else 0.0
    depth_file = write_depth_params(os.path.join(out_dir, f'{label}_depth_inference.yaml'),
                                    models, ['cpu'], echo_wait)
    args = ['use_sim:=true', 'use_emitter:=false', f'sim_params_file:={sim_file}',
            f'depth_params_file:={depth_file}']
    rec = RunRecord(label)
    rec.graph_log = os.path.join(out_dir, f'{label}_graph.log')
    rec.grace_s = echo_wait + 1.0
    topics = {'/camera/image': 'rgb', '/ground_truth/depth': 'gt', '/depth/metric': 'metric',
              '/depth/pseudo_dense': 'pseudo_dense'}
    ts = typestore()
    t0 = time.monotonic()
    extra = {'/camera/image': IMAGE_TYPE, '/ground_truth/depth': IMAGE_TYPE}
    with GraphSession(args, rec.graph_log, domain_id, f'avs_demo_{label}',
                      record_extra=extra) as graph:
        node, recorder = graph.node, graph.recorder
        graph.wait_active(startup_timeout)  # depth_inference: models loaded and warm
        graph.wait_until(lambda: node.count_publishers('/camera/image'), startup_timeout,
                         'start publishing camera/image')
        graph.record()
        graph.wait_until(lambda: recorder.count('/depth/metric') > 0, startup_timeout,
                         f'publish depth/metric (is {models["av"]} loadable?)')
        rec.startup_s = time.monotonic() - t0
        start = time.monotonic()
        limit = max_loops * poses / rate
        seen = 0
        done = 0
        with tqdm(total=poses, desc=f'graph {label}', unit='pose', disable=not progress) as bar:
            while time.monotonic() - start < limit:
                graph.check_alive()
                time.sleep(0.5)
                msgs = recorder.snapshot()
                for t, topic, msgtype, raw in msgs[seen:]:
                    role = topics.get(topic)
                    if role is None:
                        continue
                    msg = ts.deserialize_cdr(raw, msgtype)
                    value = (image_to_rgb(msg) if role == 'rgb'
                             else np.array(image_to_array(msg), dtype=np.float32))
                    rec.add(role, stamp_to_ns(msg.header.stamp), value, t)
                seen = len(msgs)
                done = len(rec.by_pose(need_echo))
                bar.update(max(0, min(done, poses) - bar.n))
                if done >= poses:
                    break
        graph.record(False)
        rec.end_t = time.monotonic()
        rec.wall_s = rec.end_t - start
    if 0 < done < poses:
        say(f'note: the {label} run covered {done} of {poses} poses in {rec.wall_s:.0f} s '
            f'(the graph is slower than {rate:g} Hz here); scoring those')
    if not rec.by_pose(need_echo):
        raise RuntimeError(f'the {label} run produced no scorable frame in {rec.wall_s:.0f} s; '
                           f'see {rec.graph_log}')
    return rec
