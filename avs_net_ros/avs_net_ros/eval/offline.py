"""Offline evaluation of a bag: run the pipeline on every stamp-paired frame and score it.

For each AVS-Net variant (an AV model and, optionally, its visual-only twin) and each relative
model, the paper's tables are filled at ground-truth resolution:

- Table 1: the first-stage pseudo-dense maps M_p (V) and M_p (AV);
- Table 2: the relative model's raw output (w/o), scaled by the visual-only M_p (Baseline),
  by the audio-visual M_p (Proposed), and by the ground truth itself (GT oracle: the same fit,
  the method's upper bound);
- AIDE_k per 1 m band of Proposed over Baseline (and of M_p (AV) over M_p (V)).

Each model runs once per frame (the relative map is paired with both the AV and the V M_p
through ``MetricDepthPipeline.combine``, so every map is exactly what ``infer`` and the depth
node produce). Frames are evaluated by ``workers`` processes at a time, each model run on one
ONNX Runtime thread: on CPU at batch 1 that gives more frames per second than intra-op threads,
and NumPy's resizing and scoring (which do not scale over threads) run in parallel too.
Results are applied in frame order, so the tables do not depend on the number of workers. The
bag is read in a background thread so reading and decoding overlap inference.
"""

from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
import multiprocessing
import os
import queue
import threading
import time
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from avs_net_ros.core.contract import KIND_AV, KIND_RELATIVE, KIND_V
from avs_net_ros.core.errors import AvsInputError, EmptyMaskError
from avs_net_ros.core.foreign import ForeignModelSpec
from avs_net_ros.core.metrics import aide_per_band, depth_metrics, GroundTruth
from avs_net_ros.core.scale import AUTO_SCALE
from avs_net_ros.eval.bagio import BagFrames, Frame, ReadReport
from avs_net_ros.eval.scoring import (Aide, ROW_BASELINE, ROW_MP_AV, ROW_MP_V, ROW_ORACLE,
                                      ROW_PROPOSED, ROW_RAW, Table, TABLE2_ROWS)
from avs_net_ros.eval.topics import BagTopics
from avs_net_ros.runtime.memory import keep_freed_memory
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from avs_net_ros.runtime.session import DEFAULT_PROVIDERS, OnnxModel, select_providers
import numpy as np

#: The AIDE entry comparing the first-stage maps themselves.
AIDE_MP = 'M_p'


@dataclass(frozen=True)
class Variant:
    """An AVS-Net variant: the audio-visual model and (for Baseline rows) its V twin."""

    name: str
    av: str
    v: Optional[str] = None


@dataclass
class EvalConfig:
    """Scoring and reading settings."""

    max_depth: Optional[float] = None      # None: the first AV model's contract max_depth
    min_depth: float = 1e-3
    scale_method: str = AUTO_SCALE         # auto: per relative model's output (core.scale)
    # Descriptions of third-party relative models (no metadata), by relative model name.
    relative_specs: Dict[str, ForeignModelSpec] = field(default_factory=dict)
    providers: Tuple[str, ...] = DEFAULT_PROVIDERS
    intra_op_threads: int = 1              # ONNX Runtime threads per model run (0 = its default)
    sample_rate: Optional[int] = None      # if set, the bag's echoes must have this rate
    slop_s: float = 0.0                    # stamp tolerance for pairing
    max_frames: Optional[int] = None
    panel_frames: Sequence[int] = ()       # frame indices to keep for PNG panels
    progress: bool = True
    prefetch: int = 4
    # Worker processes evaluating frames at once (0 or 1 = in the calling process). Processes,
    # not threads: the image-sized NumPy work runs slower in two threads than in one (GIL).
    # None: one per CPU (at most 8) on CPU; 0 when a GPU provider is usable, as each worker
    # would open its own GPU context and copy of the models.
    workers: Optional[int] = None


def default_workers(providers: Sequence[str]) -> int:
    """Return ``EvalConfig.workers``' default for ``providers`` (see there)."""
    usable, _ = select_providers(providers)
    if any(p != 'CPUExecutionProvider' for p in usable):
        return 0
    return min(8, os.cpu_count() or 1)


@dataclass
class Panel:
    """The maps of one chosen frame (for report images)."""

    index: int
    stamp_ns: int
    rgb: np.ndarray
    ground_truth: np.ndarray
    maps: Dict[str, np.ndarray]


@dataclass
class EvalResult:
    """Everything an offline (or replay) evaluation found."""

    bag: ReadReport
    max_depth: float
    min_depth: float
    variants: List[Dict[str, Any]]
    relatives: Dict[str, str]
    table1: Dict[str, Dict[str, Dict[str, Any]]] = field(default_factory=dict)
    table2: Dict[str, Dict[str, Dict[str, Dict[str, Any]]]] = field(default_factory=dict)
    aide: Dict[str, Dict[str, List[Dict[str, float]]]] = field(default_factory=dict)
    per_frame: List[Dict[str, Any]] = field(default_factory=list)
    rejected: Dict[str, int] = field(default_factory=dict)
    timing: Dict[str, float] = field(default_factory=dict)
    panels: List[Panel] = field(default_factory=list)
    system: Dict[str, Any] = field(default_factory=dict)
    recorded: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # per relative model: its output kind, how it is fed, and the scale method used
    relative_scaling: Dict[str, Dict[str, str]] = field(default_factory=dict)

    @property
    def frames_scored(self) -> int:
        """Frames that went through the pipeline and were scored."""
        return len(self.per_frame)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-friendly dict (no arrays)."""
        return {'bag': self.bag.to_dict(), 'max_depth': self.max_depth,
                'min_depth': self.min_depth, 'variants': self.variants,
                'relatives': self.relatives, 'frames_scored': self.frames_scored,
                'table1': self.table1, 'table2': self.table2, 'aide': self.aide,
                'recorded': self.recorded, 'relative_scaling': self.relative_scaling,
                'rejected': self.rejected, 'timing': self.timing,
                'system': self.system,
                'per_frame': self.per_frame}


def prefetch(items: Iterable[Any], depth: int) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, ``depth`` ahead (errors are re-raised)."""
    if depth <= 0:
        yield from items
        return
    q: 'queue.Queue[Tuple[str, Any]]' = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(('item', item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(('end', None))
        except BaseException as e:  # handed to the consumer
            q.put(('error', e))

    t = threading.Thread(target=run, daemon=True, name='bag-prefetch')
    t.start()
    try:
        while True:
            kind, value = q.get()
            if kind == 'end':
                return
            if kind == 'error':
                raise value
            yield value
    finally:
        stop.set()
        t.join(timeout=5.0)


def _progress(total: Optional[int], enabled: bool, desc: str) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, disable=not enabled, desc=desc, unit='frame')


@dataclass
class _FrameResult:
    """What was computed for one frame; applied to the tables in frame order.

    ``scores`` holds (target, row, key, result): target ('table1', variant),
    ('table2', variant, relative) or ('aide', variant, entry); key names the per-frame record.
    """

    rec: Dict[str, Any]
    scores: List[Tuple[Tuple[str, ...], str, str, Any]] = field(default_factory=list)
    panel: Optional[Panel] = None
    rejected: str = ''
    model_s: float = 0.0
    score_s: float = 0.0


class FrameEvaluator:
    """The models of every variant and relative model, and the scoring of one frame.

    Runs in the calling process or in each worker process of ``OfflineEvaluator``.
    """

    def __init__(self, variants: Sequence[Variant], relatives: Dict[str, str],
                 config: EvalConfig) -> None:
        """Load every model once with ONNX Runtime.

        Raises:
            AvsInputError: no variant, duplicate names, or a model of the wrong kind.
            ModelContractError / FileNotFoundError: from loading the models.

        """
        if not variants:
            raise AvsInputError('give at least one AVS-Net variant (an AV model)')
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise AvsInputError(f'variant names must be unique, got {names}')
        self.config = config
        self.variants = list(variants)
        self.relatives = dict(relatives)
        loaded: Dict[str, OnnxModel] = {}

        def load(path: str, kinds: Tuple[str, ...]) -> OnnxModel:
            if path not in loaded:
                loaded[path] = OnnxModel(path, tuple(config.providers),
                                         config.intra_op_threads, kinds)
            return loaded[path]

        def pipe(avs: OnnxModel, rel: Optional[OnnxModel] = None) -> MetricDepthPipeline:
            return MetricDepthPipeline(avs, rel, scale_method=config.scale_method)

        unknown = sorted(set(config.relative_specs) - set(self.relatives))
        if unknown:
            raise AvsInputError(f'third-party model descriptions for {unknown}, which are not '
                                f'relative models here ({sorted(self.relatives)})')
        rel_models = {r: OnnxModel(path, tuple(config.providers), config.intra_op_threads,
                                   (KIND_RELATIVE,), foreign=config.relative_specs.get(r))
                      for r, path in self.relatives.items()}
        self.av: Dict[str, MetricDepthPipeline] = {}
        self.v: Dict[str, MetricDepthPipeline] = {}
        self.av_rel: Dict[str, Dict[str, MetricDepthPipeline]] = {}
        self.v_rel: Dict[str, Dict[str, MetricDepthPipeline]] = {}

        def avs_net(var: Variant, path: str, kind: str) -> OnnxModel:
            model = load(path, (KIND_AV, KIND_V))
            if model.contract.kind != kind:
                raise AvsInputError(f'variant {var.name}: {path} is a {model.contract.kind} '
                                    f'model, expected {kind}')
            return model

        for var in variants:
            av = avs_net(var, var.av, KIND_AV)
            self.av[var.name] = pipe(av)
            self.av_rel[var.name] = {r: pipe(av, m) for r, m in rel_models.items()}
            if var.v:
                v = avs_net(var, var.v, KIND_V)
                self.v[var.name] = pipe(v)
                self.v_rel[var.name] = {r: pipe(v, m) for r, m in rel_models.items()}
        contract = self.av[variants[0].name].avs.contract
        self.max_depth = float(config.max_depth or contract.max_depth)
        self.min_depth = float(config.min_depth)

    def relative_scaling(self) -> Dict[str, Dict[str, str]]:
        """Per relative model: output kind, how it is fed, and the scale method used."""
        if not self.variants or not self.relatives:
            return {}
        pipes = self.av_rel[self.variants[0].name]
        return {r: {'output': p.relative_kind, 'scale_method': p.scale_method,
                    'fed': ('third-party description' if p.relative.foreign is not None
                            else 'model metadata')}
                for r, p in pipes.items()}

    def evaluate(self, frame: Frame, sample_rate: Optional[int]) -> _FrameResult:
        """Run the models on ``frame`` and score every map against its ground truth."""
        out = _FrameResult({'index': frame.index, 'stamp_ns': frame.stamp_ns})
        t0 = time.perf_counter()
        try:
            preds = self._predict(frame, sample_rate)
        except AvsInputError as e:
            out.rejected = str(e).split(';')[0][:120]
            return out
        t1 = time.perf_counter()
        out.model_s = t1 - t0
        for n in self.av:
            for r in self.relatives:
                out.rec[f'{n}/{r}/scale_av'] = preds[n][r]['scale_av']
                if 'scale_v' in preds[n][r]:
                    out.rec[f'{n}/{r}/scale_v'] = preds[n][r]['scale_v']
        gt = GroundTruth.prepare(frame.ground_truth, self.max_depth)  # shared by every map
        kw = {'max_depth': self.max_depth, 'min_depth': self.min_depth}
        maps: Dict[str, np.ndarray] = {}
        for target, row, key, pred in self._maps(preds, maps, frame.index):
            if target[0] == 'aide':
                res = aide_per_band(pred[0], pred[1], gt, **kw)
            else:
                try:
                    res = depth_metrics(pred, gt, **kw)
                except EmptyMaskError:
                    res = None
            out.scores.append((target, row, key, res))
        if frame.index in self.config.panel_frames:
            out.panel = Panel(frame.index, frame.stamp_ns, frame.rgb, frame.ground_truth, maps)
        out.score_s = time.perf_counter() - t1
        return out

    def _maps(self, preds: Dict[str, Dict[str, Any]], panel: Dict[str, np.ndarray],
              index: int) -> Iterator[Tuple[Tuple[str, ...], str, str, Any]]:
        """Yield what to score: (target, row, per-frame key, map or (V map, AV map))."""
        for var in self.variants:
            n = var.name
            p = preds[n]
            yield ('table1', n), ROW_MP_AV, f'{n}/{ROW_MP_AV}', p['mp_av']
            if 'mp_v' in p:
                yield ('table1', n), ROW_MP_V, f'{n}/{ROW_MP_V}', p['mp_v']
                yield ('aide', n, AIDE_MP), '', '', (p['mp_v'], p['mp_av'])
            for r in self.relatives:
                for row in TABLE2_ROWS:
                    if row in p[r]:
                        yield ('table2', n, r), row, f'{n}/{r}/{row}', p[r][row]
                if ROW_BASELINE in p[r]:
                    yield ('aide', n, r), '', '', (p[r][ROW_BASELINE], p[r][ROW_PROPOSED])
            if index in self.config.panel_frames and var is self.variants[0]:
                panel[ROW_MP_AV] = p['mp_av']
                if 'mp_v' in p:
                    panel[ROW_MP_V] = p['mp_v']
                if self.relatives:
                    r0 = next(iter(self.relatives))
                    for row in (ROW_BASELINE, ROW_PROPOSED):
                        if row in p[r0]:
                            panel[f'{r0} {row}'] = p[r0][row]

    def _predict(self, frame: Frame, sample_rate: Optional[int]) -> Dict[str, Dict[str, Any]]:
        # Every model runs once; ``combine`` pairs the maps as ``infer`` would, so each map is
        # exactly what the depth node publishes (same resolutions, same scale fit).
        rgb = frame.rgb
        hw = rgb.shape[:2]
        images: Dict[Tuple[int, int], np.ndarray] = {}  # resized inputs, shared by the models
        first = self.variants[0].name
        rel_raw, rel_cam, rel_gt = {}, {}, {}
        for r in self.relatives:
            pipe = self.av_rel[first][r]
            rel_raw[r] = pipe.run_relative(rgb, images)
            rel_cam[r] = pipe.relative_to_camera(rel_raw[r], hw)
            try:
                fit = pipe.fit_ground_truth(rel_raw[r], frame.ground_truth, self.max_depth,
                                            self.min_depth)
                rel_gt[r] = fit.apply(rel_cam[r])
            except EmptyMaskError:  # no valid ground truth: the frame has no oracle
                pass
        out: Dict[str, Dict[str, Any]] = {}
        for var in self.variants:
            n = var.name
            av = self.av[n]
            m_av = av.run_avs(rgb, frame.echo, sample_rate, images)
            p: Dict[str, Any] = {'mp_av': av.to_camera(m_av, hw)}
            m_v = None
            if n in self.v:
                m_v = self.v[n].run_avs(rgb, images=images)
                p['mp_v'] = av.to_camera(m_v, hw)
            for r in self.relatives:
                res_av = self.av_rel[n][r].combine(m_av, rel_raw[r], hw, p['mp_av'],
                                                   rel_cam[r])
                q = {ROW_RAW: rel_cam[r], ROW_PROPOSED: res_av.metric,
                     'scale_av': res_av.scale}
                if r in rel_gt:
                    q[ROW_ORACLE] = rel_gt[r]
                if m_v is not None:
                    res_v = self.v_rel[n][r].combine(m_v, rel_raw[r], hw, p['mp_v'],
                                                     rel_cam[r])
                    q[ROW_BASELINE] = res_v.metric
                    q['scale_v'] = res_v.scale
                p[r] = q
            out[n] = p
        return out


class EvaluationWorkerError(RuntimeError):
    """A worker process of the offline evaluation died."""


_WORKER: Optional[FrameEvaluator] = None


def _worker_init(variants: Sequence[Variant], relatives: Dict[str, str],
                 config: EvalConfig) -> None:
    global _WORKER
    keep_freed_memory()
    _WORKER = FrameEvaluator(variants, relatives, config)


def _worker_evaluate(frame: Frame, sample_rate: Optional[int]) -> _FrameResult:
    return _WORKER.evaluate(frame, sample_rate)


class OfflineEvaluator:
    """Evaluate frames (here or in worker processes) and collect the tables in frame order."""

    def __init__(self, variants: Sequence[Variant], relatives: Dict[str, str],
                 config: EvalConfig = EvalConfig()) -> None:
        """Load the models here (they are checked, and used when there are no workers).

        Raises:
            AvsInputError: no variant, duplicate names, or a model of the wrong kind.
            ModelContractError / FileNotFoundError: from loading the models.

        """
        self.local = FrameEvaluator(variants, relatives, config)
        self.config = config
        self.variants = self.local.variants
        self.relatives = self.local.relatives
        self.max_depth, self.min_depth = self.local.max_depth, self.local.min_depth
        self.table1 = {var.name: Table() for var in variants}
        self.table2 = {var.name: {r: Table() for r in self.relatives} for var in variants}
        self.aide = {var.name: {k: Aide() for k in [AIDE_MP, *self.relatives]}
                     for var in variants}
        self.per_frame: List[Dict[str, Any]] = []
        self.rejected: Dict[str, int] = {}
        self.panels: List[Panel] = []
        self.model_s = 0.0
        self.score_s = 0.0
        workers = default_workers(config.providers) if config.workers is None else config.workers
        self.workers = workers if workers > 1 else 0
        self._pool: Optional[ProcessPoolExecutor] = None
        self._pending: Deque[Future] = deque()
        self.startup_s = 0.0

    def add(self, frame: Frame, sample_rate: Optional[int]) -> None:
        """Evaluate one frame, in a worker process when there are workers.

        At most two frames per worker are in flight, which bounds memory; finished frames are
        applied to the tables in the order they were added.
        """
        if not self.workers:
            self._apply(self.local.evaluate(frame, sample_rate))
            return
        self.start_workers()
        self._pending.append(self._pool.submit(_worker_evaluate, frame, sample_rate))
        self._drain(len(self._pending) > 2 * self.workers)

    def start_workers(self) -> float:
        """Start the worker processes and wait until each has loaded the models.

        Returns the seconds it took (0 when already started or without workers); ``add``
        calls it when needed, ``evaluate_bag`` first, to time the frames alone.
        """
        if not self.workers or self._pool is not None:
            return 0.0
        t0 = time.perf_counter()
        # spawn, not fork: ONNX Runtime's and rclpy's threads do not survive a fork
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context('spawn'),
            initializer=_worker_init, initargs=(self.variants, self.relatives, self.config))
        barrier = [self._pool.submit(time.sleep, 0.2) for _ in range(self.workers)]
        for fut in barrier:
            fut.result()
        self.startup_s = time.perf_counter() - t0
        return self.startup_s

    def _apply(self, res: _FrameResult) -> None:
        if res.rejected:
            self.rejected[res.rejected] = self.rejected.get(res.rejected, 0) + 1
            return
        for target, row, key, score in res.scores:
            if target[0] == 'aide':
                self.aide[target[1]][target[2]].acc.add(score)
                continue
            table = (self.table1[target[1]] if target[0] == 'table1'
                     else self.table2[target[1]][target[2]])
            table.add_metrics(row, score)
            if score is not None:
                res.rec[key] = {k: score[k] for k in ('abs_rel', 'delta1', 'rmse')}
        if res.panel is not None:
            self.panels.append(res.panel)
        self.model_s += res.model_s
        self.score_s += res.score_s
        self.per_frame.append(res.rec)

    def _drain(self, block: bool) -> None:
        while self._pending and (block or self._pending[0].done()):
            try:
                res = self._pending.popleft().result()
            except BrokenProcessPool as e:
                raise EvaluationWorkerError(
                    f'an evaluation worker process died ({e}); out of memory? Evaluate in one '
                    'process with workers=0 (avs_eval_bag --workers 0)') from e
            self._apply(res)
            block = len(self._pending) > 2 * self.workers

    def finish(self) -> None:
        """Apply every frame still in flight and stop the worker processes."""
        try:
            while self._pending:
                self._drain(True)
        finally:
            if self._pool is not None:
                self._pending.clear()
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def result(self, report: ReadReport, wall_s: float) -> EvalResult:
        """Collect the tables, AIDE and timing (applies any queued scores first)."""
        self.finish()
        n = len(self.per_frame)
        res = EvalResult(
            bag=report, max_depth=self.max_depth, min_depth=self.min_depth,
            variants=[{'name': v.name, 'av': v.av, 'v': v.v} for v in self.variants],
            relatives=self.relatives, per_frame=self.per_frame, rejected=self.rejected,
            panels=self.panels, relative_scaling=self.local.relative_scaling())
        for var in self.variants:
            res.table1[var.name] = self.table1[var.name].result()
            res.table2[var.name] = {r: t.result() for r, t in self.table2[var.name].items()}
            res.aide[var.name] = {k: a.result() for k, a in self.aide[var.name].items()
                                  if a.acc.result()}
        res.timing = {'wall_s': wall_s, 'workers': self.workers,
                      'worker_startup_s': self.startup_s,
                      'intra_op_threads': self.config.intra_op_threads,
                      # summed over the worker processes
                      'models_s': self.model_s, 'scoring_s': self.score_s,
                      'frames_per_s': n / wall_s if wall_s > 0 else 0.0}
        return res


def evaluate_bag(path: str, variants: Sequence[Variant], relatives: Dict[str, str],
                 topics: BagTopics = BagTopics(), config: EvalConfig = EvalConfig()
                 ) -> EvalResult:
    """Evaluate the bag at ``path`` offline; see the module docstring.

    Raises:
        BagReadError / BagTopicsError: the bag cannot be opened or lacks needed topics.
        AvsInputError: the bag's echoes are not at ``config.sample_rate``, or it has none.

    """
    evaluator = OfflineEvaluator(variants, relatives, config)
    try:
        evaluator.start_workers()  # not part of the frames' timing (reported apart)
        return _run(evaluator, path, topics, config)
    finally:
        evaluator.finish()


def _run(evaluator: OfflineEvaluator, path: str, topics: BagTopics, config: EvalConfig
         ) -> EvalResult:
    need = ('ground_truth', 'echoes')
    t0 = time.perf_counter()
    with BagFrames(path, topics, key='image', need=need, slop_s=config.slop_s) as bag:
        info = bag.report.echo_info
        sample_rate = info.sample_rate if info is not None else config.sample_rate
        if sample_rate is None:
            raise AvsInputError(f'{path} has no echo on {bag.topics.echoes} to give the echo '
                                f'sample rate; pass it (--sample-rate)')
        if info is not None and config.sample_rate and config.sample_rate != sample_rate:
            raise AvsInputError(f"--sample-rate {config.sample_rate} contradicts the bag's "
                                f'echoes ({sample_rate} Hz)')
        est = bag.message_count('image')
        if config.max_frames:
            est = min(est, config.max_frames) if est else config.max_frames
        with _progress(est, config.progress, 'evaluate') as bar:
            for frame in prefetch(bag, config.prefetch):
                evaluator.add(frame, sample_rate)
                bar.update(1)
                if config.max_frames and bar.n >= config.max_frames:
                    break
    return evaluator.result(bag.report, time.perf_counter() - t0)
