"""depth_inference node: camera frames + binaural echoes -> metric depth (REP 118).

Topics (relative names; remap them):

- in: ``image`` (sensor_msgs/Image rgb8/bgr8/mono8, sensor-data QoS, depth 1),
  ``camera_info`` and ``echoes`` (avs_net_msgs/EchoFrame: samples with their sample rate,
  channels and chirp settings, stamped with the camera frame's stamp).
- out: ``depth/metric`` (32FC1 metres, NaN = invalid, camera header), ``depth/pseudo_dense``
  (AVS-Net's M_p on echo frames), ``depth/relative`` (optional), ``depth/scale``
  (std_msgs/Float32, the scale applied to the published frame), ``depth/camera_info`` (the
  camera's CameraInfo with the depth image's header) and ``/diagnostics``.

Lifecycle (``lifecycle``): unconfigured after start; ``configure`` loads and warms the models
(FAILURE naming a missing model file, a broken contract or a bad parameter, reported on
/diagnostics too); ``activate`` subscribes and enables the outputs; ``deactivate`` unsubscribes
and publishes nothing more; ``cleanup`` releases the models. /diagnostics runs in every state.

Threads: subscription callbacks only store messages and pair echoes with frames by stamp
(``Pairer``), then wake a worker thread (``worker.WakeableWorker``), which runs the models and
publishes; the node's executor thread is never blocked by inference (see ``spin``). Two
workers: one for echo frames (the whole pipeline, the longer run) and one for camera frames
(relative model and filtered scale), so the camera-rate output goes on while an echo is being
processed. Each only ever takes the newest pending item; older ones are dropped and counted,
so no queue grows.
Echo frames go through the whole pipeline; other frames are scaled with the filtered scale or
the fallback (see ``depth_engine``). A frame can be held up to ``echo_wait`` seconds for its
echo so that echo frames are published with their own, exact, result. Published metric stamps
strictly increase.
"""

from collections import OrderedDict
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from avs_net_msgs.msg import EchoFrame
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.core.foreign import (CHANNEL_ORDERS, FIELDS as FOREIGN, ForeignModelSpec,
                                      IMAGENET_MEAN, IMAGENET_STD, PARAM_PREFIX)
from avs_net_ros.core.scale import AUTO_SCALE, RELATIVE_OUTPUTS, SCALE_METHODS
from avs_net_ros.core.spectrogram import validate_echo
from avs_net_ros.messages import (array_to_image, frame_to_echo, header_copy, image_to_rgb,
                                  stamp_to_ns)
from avs_net_ros.ros.lifecycle import ACTIVE, LifecycleMixin, state_of
from avs_net_ros.ros.params import check_choices, declare_parameters, ParamSpec
from avs_net_ros.ros.spin import run_node
from avs_net_ros.ros.worker import WakeableWorker
from avs_net_ros.runtime.depth_engine import DepthEngine, DepthOutput, FALLBACKS
from avs_net_ros.runtime.pairing import Pairer
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from avs_net_ros.runtime.session import gpu_provider_options
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import (HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32

NODE_NAME = 'depth_inference'
_FOREIGN_ONLY = (' Only for a relative model without avs_net_ros metadata (with relative_output'
                 '; config/foreign/ has examples).')

PARAMS = (
    ParamSpec('avs_model', '', 'Path of the AVS-Net ONNX model (audio-visual avs_av, or '
              'visual-only avs_v). Required.'),
    ParamSpec('relative_model', '', 'Path of the relative-depth ONNX model whose output is '
              'put on a metric scale; empty = publish AVS-Net depth itself.'),
    ParamSpec('relative_output', '', FOREIGN['output'] + " Empty = read it from the model's "
              'metadata; a model without avs_net_ros metadata (a third-party file) needs it.',
              choices=('',) + RELATIVE_OUTPUTS),
    *(ParamSpec(PARAM_PREFIX + name, default, FOREIGN[name] + _FOREIGN_ONLY, choices=choices,
                value_range=value_range)
      for name, default, choices, value_range in (
          ('input_size', [0, 0], None, None),
          ('short_side', 0, None, (0, 16384)),
          ('size_multiple', 1, None, (1, 1024)),
          ('mean', list(IMAGENET_MEAN), None, None),
          ('std', list(IMAGENET_STD), None, None),
          ('channel_order', 'RGB', CHANNEL_ORDERS, None),
          ('pixel_range', 1.0, None, (1e-6, 65535.0)),
          ('input_name', '', None, None),
          ('output_name', '', None, None))),
    ParamSpec('visual_model', '', 'Path of the visual-only AVS-Net (avs_v) used by the '
              "'visual_model' fallback; empty = none."),
    ParamSpec('providers', ['CUDAExecutionProvider', 'CPUExecutionProvider'],
              'ONNX Runtime execution providers in order of preference (short names cuda, '
              'tensorrt, cpu work); unavailable ones are skipped and the active ones logged.'),
    ParamSpec('intra_op_threads', 0, 'ONNX Runtime intra-op threads per session; 0 = ONNX '
              "Runtime's default.", value_range=(0, 256)),
    ParamSpec('intra_op_spinning', False, "Let ONNX Runtime's idle intra-op threads spin-wait "
              'for work; off, they sleep: slightly slower on an idle CPU, much faster when '
              'other processes share the cores (README, Latency).'),
    ParamSpec('gpu_device_id', 0, 'GPU index for the CUDA and TensorRT providers.',
              value_range=(0, 64)),
    ParamSpec('trt_fp16', False, 'Let TensorRT run layers in fp16 where it keeps the range '
              '(the model file stays float32).'),
    ParamSpec('trt_engine_cache_dir', '', 'Folder where TensorRT keeps its built engines; '
              'empty = no cache, so every start rebuilds them (minutes for the default model).'),
    ParamSpec('trt_workspace_gib', 2.0, "TensorRT's scratch memory limit per engine (GiB).",
              value_range=(0.0625, 1024.0)),
    ParamSpec('cudnn_conv_algo_search', 'EXHAUSTIVE', "The CUDA provider's cuDNN convolution "
              'algorithm search: EXHAUSTIVE (benchmarks them on the first run), HEURISTIC or '
              'DEFAULT.', choices=('EXHAUSTIVE', 'HEURISTIC', 'DEFAULT')),
    ParamSpec('scale_method', AUTO_SCALE, 'How the relative map is fitted to the pseudo-dense '
              'metric map: auto = scale_shift for an affine_disparity relative output, median '
              '(what the paper uses) otherwise.', choices=(AUTO_SCALE,) + SCALE_METHODS),
    ParamSpec('fallback', 'visual_model', 'What to publish when no usable echo came for '
              'echo_timeout: visual_model (scale from the visual-only AVS-Net), last_scale '
              '(keep the last filtered scale) or none (publish nothing).', choices=FALLBACKS),
    ParamSpec('echo_timeout', 1.0, 'Seconds (by frame stamps) without a usable echo after '
              'which the node falls back; also the oldest scale the filter keeps.',
              value_range=(0.01, 3600.0)),
    ParamSpec('scale_time_constant', 0.5, 'Time constant (s) of the exponential moving '
              'average that smooths per-echo scales in log space; 0 = no smoothing.',
              value_range=(0.0, 3600.0)),
    ParamSpec('scale_max_jump', 1.5, 'A per-echo scale more than this factor away from the '
              'filtered one is an outlier.', value_range=(1.0001, 1000.0)),
    ParamSpec('scale_outlier_patience', 3, 'Consecutive agreeing outliers after which the '
              'filter restarts at their median (the scene changed).', value_range=(1, 1000)),
    ParamSpec('pair_queue_size', 10, 'Messages per input kept while waiting for a stamp '
              'match, and frames held by echo_wait (bounds memory; keep it above echo_wait x '
              'camera rate).', value_range=(1, 1000)),
    ParamSpec('pair_slop', 0.0, 'Largest stamp difference (s) for an echo to pair with a '
              'frame; 0 = exact stamps (the chirp emitter stamps echoes with the stamp of '
              'the frame).', value_range=(0.0, 10.0)),
    ParamSpec('echo_wait', 0.0, 'Seconds a frame is held for its echo before it is '
              'published with the filtered scale; 0 = publish every frame at once (lowest '
              'latency; echoes then only refresh the scale). Set above the echo round trip '
              '(e.g. 0.3) in bag evaluation so echo frames get their exact result.',
              value_range=(0.0, 10.0)),
    ParamSpec('echo_reliability', 'reliable', 'QoS reliability of the echoes subscription '
              '(best_effort also matches reliable publishers).',
              choices=('reliable', 'best_effort')),
    ParamSpec('publish_pseudo_dense', True, 'Publish depth/pseudo_dense on echo frames.'),
    ParamSpec('publish_relative', False, 'Publish depth/relative (the relative model as '
              'depth).'),
    ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages (steady '
              'clock, so they keep coming while a replayed bag is paused).',
              value_range=(0.05, 3600.0)),
)

_OUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)


def _seconds(ns: int) -> float:
    return ns * 1e-9


class _Echo:
    """A checked echo waiting for its frame; ``header`` is all the pairing reads."""

    __slots__ = ('header', 'samples', 'sample_rate')

    def __init__(self, header: Any, samples: np.ndarray, sample_rate: int) -> None:
        self.header, self.samples, self.sample_rate = header, samples, sample_rate


class DepthInferenceNode(LifecycleMixin, LifecycleNode):
    """Publishes metric depth for camera frames, scaled by AVS-Net from binaural echoes.

    A lifecycle node (see ``lifecycle``): construction declares the parameters and starts the
    diagnostics; ``configure`` loads and warms the models and starts the worker (FAILURE,
    naming the problem, for a missing model file, a broken contract or a bad parameter);
    ``activate`` subscribes and enables the outputs; ``deactivate`` unsubscribes and drops
    pending frames; ``cleanup`` stops the worker and releases the models.
    """

    def __init__(self, **kwargs: Any) -> None:
        """Declare parameters and start diagnostics; the node is unconfigured."""
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, check=False)
        self._lock = threading.Lock()
        self.pipeline: Optional[MetricDepthPipeline] = None
        self.engine: Optional[DepthEngine] = None
        self._worker: Optional[WakeableWorker] = None  # camera frames
        self._echo_worker: Optional[WakeableWorker] = None  # echo frames
        self._publish_lock = threading.Lock()  # the two workers publish in stamp order
        self._pairer: Optional[Pairer] = None
        self._inputs: List[Any] = []
        self._outputs: List[Any] = []
        self.pub_relative = None
        self._active = False
        self._reset()
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(self.params['diagnostics_period'], self.publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _reset(self) -> None:
        """Forget frames, pairs, counters and errors (a new configuration starts afresh)."""
        with self._lock:
            self._frames: 'OrderedDict[int, Tuple[Image, float]]' = OrderedDict()
            self._pair: Optional[Tuple[Image, Tuple[np.ndarray, int]]] = None
            self._pair_ns = -1  # stamp of the newest pair: older frames need not wait
            self._camera_info: Optional[CameraInfo] = None
            self._info = None
            self._last_published_ns = -1
            self._last_frame_ns: Optional[int] = None
            self.counters: Dict[str, int] = dict.fromkeys(
                ('frames_in', 'duplicate_frames', 'echoes_in', 'echoes_rejected',
                 'images_rejected', 'pairs', 'dropped_frames', 'dropped_pairs',
                 'published_metric', 'published_echo_frames', 'no_output_frames',
                 'worker_errors'), 0)
            self.last_error = ''
            self.last_inference_ms = float('nan')

    # -- lifecycle transitions (see lifecycle.LifecycleMixin) -------------------------------

    def _configure(self) -> None:
        """Load and warm the models, create the outputs and start the worker.

        Raises:
            FileNotFoundError: a model file is missing (its path is named).
            ModelContractError: a model breaks the ONNX contract.
            ValueError: a parameter is missing or has a value outside its choices.

        """
        p = self.params
        check_choices(PARAMS, p)
        if not p['avs_model']:
            raise ValueError('parameter avs_model (path of the AVS-Net ONNX model) is not set')
        providers = list(p['providers'])
        options = gpu_provider_options(
            p['gpu_device_id'], p['trt_fp16'], p['trt_engine_cache_dir'], p['trt_workspace_gib'],
            p['cudnn_conv_algo_search'])
        common = {'providers': providers, 'intra_op_threads': p['intra_op_threads'],
                  'intra_op_spinning': p['intra_op_spinning'], 'provider_options': options}
        foreign = ForeignModelSpec.from_params(p, source='depth_inference parameters')
        self.pipeline = MetricDepthPipeline(
            p['avs_model'], p['relative_model'] or None, scale_method=p['scale_method'],
            relative_spec=foreign, **common)
        visual = MetricDepthPipeline(p['visual_model'], **common) if p['visual_model'] else None
        self.engine = DepthEngine(self.pipeline, visual, p['fallback'], p['echo_timeout'],
                                  p['scale_time_constant'], p['scale_max_jump'],
                                  p['scale_outlier_patience'])
        for pipe in (self.pipeline, visual):
            if pipe is not None:
                pipe.warm_up()
        self.get_logger().info(
            f'models loaded: avs={p["avs_model"]} ({self.pipeline.avs.contract.kind}), '
            f'relative={p["relative_model"] or "none"}{self._relative_note()}, '
            f'visual={p["visual_model"] or "none"}; '
            f'requested providers {providers}, active providers '
            f'{self.pipeline.active_providers}')
        self._reset()

        def publisher(msg_type: Any, topic: str) -> Any:
            pub = self.create_lifecycle_publisher(msg_type, topic, _OUT_QOS)
            self._outputs.append(pub)
            return pub

        self.pub_metric = publisher(Image, 'depth/metric')
        self.pub_pseudo = publisher(Image, 'depth/pseudo_dense')
        self.pub_relative = (publisher(Image, 'depth/relative') if p['publish_relative']
                             else None)
        self.pub_scale = publisher(Float32, 'depth/scale')
        self.pub_info = publisher(CameraInfo, 'depth/camera_info')
        # the frame worker also runs when a frame held for echo_wait falls due (it says when)
        self._worker = WakeableWorker(self._work_frames, 'depth_inference frames',
                                      on_error=self._on_worker_error)
        self._worker.start()
        if self.engine.uses_echo:
            self._echo_worker = WakeableWorker(self._work_pairs, 'depth_inference echoes',
                                               on_error=self._on_worker_error)
            self._echo_worker.start()

    def _relative_note(self) -> str:
        pipe = self.pipeline
        if pipe is None or pipe.relative is None:
            return ''
        how = ('third-party, fed as described by the relative_* parameters'
               if pipe.relative.foreign is not None else 'from its metadata')
        return f' ({pipe.relative_kind}, {how}; scale method {pipe.scale_method})'

    def _activate(self) -> None:
        """Subscribe to the camera and the echoes; outputs go out from now on."""
        p = self.params
        self._pairer = Pairer(2, p['pair_queue_size'], p['pair_slop'], self._on_pair)
        self.get_logger().info(f'echo/frame pairing by {self._pairer.backend}, slop '
                               f'{p["pair_slop"]} s')
        echo_qos = QoSProfile(depth=p['pair_queue_size'], history=HistoryPolicy.KEEP_LAST,
                              reliability=(ReliabilityPolicy.RELIABLE
                                           if p['echo_reliability'] == 'reliable'
                                           else ReliabilityPolicy.BEST_EFFORT))
        image_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                               reliability=qos_profile_sensor_data.reliability,
                               durability=qos_profile_sensor_data.durability)
        self._active = True
        self._inputs = [
            self.create_subscription(Image, 'image', self._on_image, image_qos),
            self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info,
                                     image_qos),
            self.create_subscription(EchoFrame, 'echoes', self._on_echo, echo_qos)]

    def _deactivate(self) -> None:
        """Unsubscribe and drop what is pending (a frame being processed is not published)."""
        self._active = False
        for sub in self._inputs:
            self.destroy_subscription(sub)
        self._inputs = []
        with self._lock:
            self._frames.clear()
            self._pair = None
            self._pair_ns = -1  # a replay that starts again must not find its frames due

    def _release(self) -> None:
        """Stop the workers, destroy the outputs and release the ONNX sessions."""
        self._stop_workers()
        for pub in self._outputs:
            self.destroy_lifecycle_publisher(pub)
        self._outputs = []
        self.pub_relative = None
        self.pipeline = self.engine = self._pairer = None

    # -- subscription side: cheap, never runs a model --------------------------------------

    def _on_image(self, msg: Image) -> None:
        t = stamp_to_ns(msg.header.stamp)
        with self._lock:
            if t in self._frames or t <= self._last_published_ns:
                self.counters['duplicate_frames'] += 1  # same stamp again: not a new frame
                return
            self.counters['frames_in'] += 1
            self._last_frame_ns = t if self._last_frame_ns is None else max(
                self._last_frame_ns, t)
            self._frames[t] = (msg, time.monotonic())
            while len(self._frames) > self.params['pair_queue_size']:
                self._frames.popitem(last=False)
                self.counters['dropped_frames'] += 1
        engine, pairer, worker = self.engine, self._pairer, self._worker
        if engine is None or worker is None:
            return  # a callback that was running while the node deactivated
        if engine.uses_echo and pairer is not None:
            pairer.add(0, msg)
        worker.wake()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_echo(self, msg: EchoFrame) -> None:
        self.counters['echoes_in'] += 1
        pipeline, pairer = self.pipeline, self._pairer
        if pipeline is None or pairer is None:
            return
        if not self.engine.uses_echo:
            self.get_logger().info('the AVS-Net model is visual-only: echoes are ignored',
                                   once=True)
            return
        try:
            samples, info = frame_to_echo(msg)
            echo = validate_echo(samples, pipeline.avs.contract.echo.features, info.sample_rate)
        except AvsInputError as e:
            self._reject('echo', f'stamp {stamp_to_ns(msg.header.stamp)} ns: {e}')
            return
        if info != self._info:
            self._info = info
            self.get_logger().info(f'echoes: {info.sample_rate} Hz, {info.channels} channels, '
                                   f'{info.window_samples} samples, backend '
                                   f'{info.backend or "unknown"}')
        pairer.add(1, _Echo(msg.header, echo, info.sample_rate))

    def _on_pair(self, image: Image, echo: '_Echo') -> None:
        with self._lock:
            self.counters['pairs'] += 1
            if self._pair is not None:
                self.counters['dropped_pairs'] += 1
            self._pair = (image, (echo.samples, echo.sample_rate))
            self._pair_ns = max(self._pair_ns, stamp_to_ns(image.header.stamp))
        for worker in (self._echo_worker, self._worker):  # frames held for it are due now
            if worker is not None:
                worker.wake()

    def _on_worker_error(self, error: BaseException) -> None:
        # not an input problem (those are AvsInputError, handled per frame): a failing model
        # run, e.g. out of GPU memory; the node keeps going and reports it
        if not self.context.ok():
            return  # shutting down: the publish of a frame in hand failed, nothing to report
        with self._lock:
            self.counters['worker_errors'] += 1
            self.last_error = f'inference failed: {type(error).__name__}: {error}'
        self.get_logger().error(self.last_error, throttle_duration_sec=1.0)

    def _reject(self, what: str, why: str) -> None:
        key = 'images_rejected' if what == 'image' else 'echoes_rejected'
        with self._lock:
            self.counters[key] += 1
            self.last_error = f'{what} rejected: {why}'
        self.get_logger().error(self.last_error, throttle_duration_sec=1.0)

    # -- worker: runs the models, newest data only ------------------------------------------

    def _take_frame(self) -> Optional[Image]:
        """Pick the camera frame to process now (the newest due one), dropping older ones."""
        with self._lock:
            deadline = time.monotonic() - self.params['echo_wait']
            # due: waited echo_wait, or older than a paired echo frame (their echo would have
            # come first)
            older = [s for s, (_, arrived) in self._frames.items()
                     if arrived <= deadline or s < self._pair_ns]
            if not older:
                return None
            newest = max(older)
            image = self._frames[newest][0]
            self.counters['dropped_frames'] += len(older) - 1
            for s in older:
                del self._frames[s]
            return image

    def _take_pair(self) -> Optional[Tuple[Image, Tuple[np.ndarray, int]]]:
        """Take the pending echo pair, if any (its frame is then not processed alone)."""
        with self._lock:
            pair, self._pair = self._pair, None
            if pair is not None:
                self._frames.pop(stamp_to_ns(pair[0].header.stamp), None)
            return pair

    def _work_frames(self) -> Optional[float]:
        """Process the due camera frame; return the seconds until the next held one is due."""
        image = self._take_frame()
        if image is not None:
            self._process(image, None)
        with self._lock:
            if not self._frames:
                return None
            oldest = min(arrived for _, arrived in self._frames.values())
        return oldest + self.params['echo_wait'] - time.monotonic()

    def _work_pairs(self) -> None:
        """Process the pending echo pair (the whole pipeline)."""
        pair = self._take_pair()
        if pair is not None:
            self._process(*pair)

    def _process(self, image: Image, echo: Optional[Tuple[np.ndarray, int]]) -> None:
        try:
            rgb = image_to_rgb(image)
        except AvsInputError as e:
            self._reject('image', str(e))
            return
        t_ns = stamp_to_ns(image.header.stamp)
        start = time.perf_counter()
        try:
            if echo is not None:
                out = self.engine.on_echo(rgb, echo[0], echo[1], _seconds(t_ns))
            else:
                out = self.engine.on_frame(rgb, _seconds(t_ns))
        except AvsInputError as e:
            self._reject('echo' if echo is not None else 'image', str(e))
            return
        self.last_inference_ms = (time.perf_counter() - start) * 1e3
        self._publish(image, out, echo is not None)

    def _stop_workers(self) -> None:
        """Stop both workers (a frame in hand finishes first)."""
        for name in ('_worker', '_echo_worker'):
            worker = getattr(self, name, None)
            if worker is not None:
                worker.stop()
                setattr(self, name, None)

    def _publish(self, image: Image, out: DepthOutput, echo_frame: bool) -> None:
        with self._publish_lock:
            self._publish_locked(image, out, echo_frame)

    def _publish_locked(self, image: Image, out: DepthOutput, echo_frame: bool) -> None:
        if not self._active:
            return  # deactivated while this frame was processed
        header = header_copy(image.header)
        t = stamp_to_ns(header.stamp)
        if echo_frame and out.pseudo_dense is not None and self.params['publish_pseudo_dense']:
            self.pub_pseudo.publish(array_to_image(out.pseudo_dense, '32FC1', header))
        if out.metric is None:
            self.counters['no_output_frames'] += 1
            return
        if t <= self._last_published_ns:
            return  # a newer frame went out already; metric stamps only increase
        self._last_published_ns = t
        if self.pub_relative is not None and out.relative is not None:
            self.pub_relative.publish(array_to_image(out.relative, '32FC1', header))
        if self._camera_info is not None:
            info = CameraInfo()
            for name in CameraInfo.get_fields_and_field_types():
                setattr(info, name, getattr(self._camera_info, name))
            info.header = header
            self.pub_info.publish(info)
        self.pub_scale.publish(Float32(data=float(out.scale)))
        self.pub_metric.publish(array_to_image(np.ascontiguousarray(out.metric, np.float32),
                                               '32FC1', header))
        self.counters['published_metric'] += 1
        if echo_frame:
            self.counters['published_echo_frames'] += 1

    def destroy_node(self) -> None:
        """Stop the workers (their current frames finish), then destroy the node."""
        self._stop_workers()
        super().destroy_node()

    # -- diagnostics -------------------------------------------------------------------------

    def diagnostic_status(self) -> DiagnosticStatus:
        """Return the node's state: lifecycle state, echo age, fallback, counters, errors.

        Not active: WARN, or ERROR with the reason when the last configure failed.
        """
        with self._lock:
            last_frame = self._last_frame_ns
            counters = dict(self.counters)
            last_error = self.last_error
        engine, pipeline, pairer = self.engine, self.pipeline, self._pairer
        state = state_of(self)
        st = DiagnosticStatus(name=f'{self.get_name()}: metric depth',
                              hardware_id=self.get_fully_qualified_name())
        values = {'lifecycle_state': state}
        if state != ACTIVE or engine is None:
            if self.failure:
                st.level, st.message = DiagnosticStatus.ERROR, f'{state}: {self.failure}'
            else:
                st.level, st.message = DiagnosticStatus.WARN, f'{state}: not publishing'
        elif last_frame is None:
            st.level, st.message = DiagnosticStatus.WARN, 'no camera frames received'
        else:
            now = _seconds(last_frame)
            values.update(engine.status(now))
            if not engine.uses_echo:
                st.level, st.message = DiagnosticStatus.OK, 'visual-only AVS-Net model'
            elif engine.echo_stale(now):
                age = engine.echo_age(now)
                what = 'no echo received yet' if age is None else (
                    f'no usable echo for {age:.2f} s (> echo_timeout '
                    f'{engine.echo_timeout} s)')
                st.level = DiagnosticStatus.WARN
                st.message = f'{what}: fallback {engine.fallback}'
            else:
                st.level, st.message = DiagnosticStatus.OK, 'metric scale from echoes'
        values.update({k: str(v) for k, v in counters.items()})
        values.update(last_error=last_error or self.failure or 'none',
                      pairing=pairer.backend if pairer is not None else 'none',
                      echo_settings=('none' if self._info is None else
                                     f'{self._info.sample_rate} Hz x {self._info.channels}, '
                                     f'{self._info.window_samples} samples'),
                      **{f'{name}_publishers': str(sub.get_publisher_count())
                         for name, sub in zip(('image', 'camera_info', 'echo'),
                                              self._inputs)},
                      providers=str(pipeline.active_providers if pipeline is not None
                                    else []),
                      last_inference_ms=f'{self.last_inference_ms:.2f}')
        st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return st

    def publish_diagnostics(self) -> None:
        """Publish ``diagnostic_status`` on /diagnostics."""
        msg = DiagnosticArray(status=[self.diagnostic_status()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


def main(args: Optional[List[str]] = None) -> int:
    """Run the node (``ros2 run avs_net_ros depth_inference``)."""
    return run_node(DepthInferenceNode, NODE_NAME, args)


if __name__ == '__main__':
    raise SystemExit(main())
