"""Evaluate a rosbag2 offline (mcap or sqlite3; no ROS install needed) and write a report.

    avs_eval_bag BAG --av AV.onnx --v V.onnx --relative midas=REL.onnx --out report_dir
    avs_eval_bag BAG --variant small=av_s.onnx,v_s.onnx --variant big=av_b.onnx,v_b.onnx ...
    avs_eval_bag BAG --recorded metric pseudo_dense     score predictions recorded in the bag
    avs_eval_bag BAG --av AV.onnx --v V.onnx --relative midas=midas_v21_small_256.onnx \
        --relative-params midas=config/foreign/midas_v21_small.yaml    a third-party model
    ... --relative da=depth_anything.onnx --relative-set da.output=affine_disparity \
        --relative-set da.short_side=518 --relative-set da.size_multiple=14

A relative model without avs_net_ros metadata (MiDaS, Depth Anything, ZoeDepth) needs its
output kind and, unless the defaults fit (graph's fixed size, ImageNet mean/std, RGB in
[0, 1], its only input, its first output), the rest of its description: from a parameter file
(--relative-params, the relative_* keys of config/foreign/*.yaml) and/or --relative-set
NAME.FIELD=VALUE options (FIELD without NAME. when there is one relative model), which win.

Runs the pipeline on every camera frame paired by header stamp with an echo and a ground-truth
depth, and writes report.md (the paper's Table 1 and Table 2 per relative model, AIDE_k),
table1/table2/aide/per_frame CSVs, results.json, aide.png and panels/ of chosen frames.
Exit status: 0 done, 2 bad input (missing topics, unreadable bag, bad model), 3 nothing scored.
"""

import argparse
from dataclasses import asdict
import os
import sys
from typing import Dict, List, Optional

from avs_net_ros.core.errors import AvsInputError, ModelContractError
from avs_net_ros.core.foreign import FIELDS, ForeignModelSpec, read_spec_file
from avs_net_ros.core.scale import AUTO_SCALE, SCALE_METHODS
from avs_net_ros.eval.bagio import bag_topics
from avs_net_ros.eval.offline import EvalConfig, evaluate_bag, EvaluationWorkerError, Variant
from avs_net_ros.eval.recorded import PREDICTION_ROLES, score_recorded
from avs_net_ros.eval.report import write_report
from avs_net_ros.eval.topics import BagTopics
from avs_net_ros.runtime.memory import keep_freed_memory


def _named(text: str, what: str) -> tuple:
    if '=' in text:
        name, value = text.split('=', 1)
    else:
        value = text
        name = os.path.splitext(os.path.basename(text.split(',')[0]))[0]
    if not name or not value:
        raise argparse.ArgumentTypeError(f'{what} must be NAME=PATH or PATH, got {text!r}')
    return name, value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog='avs_eval_bag', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    p.add_argument('bag', help='rosbag2 directory, or a .mcap / .db3 file')
    p.add_argument('--out', default=None, help='report folder (default: <bag>_eval)')
    m = p.add_argument_group('models')
    m.add_argument('--av', help='audio-visual AVS-Net ONNX model (variant "avs")')
    m.add_argument('--v', help='its visual-only twin (gives the Baseline rows)')
    m.add_argument('--variant', action='append', default=[],
                   type=lambda t: _named(t, '--variant'),
                   help='NAME=AV.onnx[,V.onnx]; repeat for several variants')
    m.add_argument('--relative', action='append', default=[],
                   type=lambda t: _named(t, '--relative'),
                   help='[NAME=]REL.onnx relative-depth model; repeat for several')
    m.add_argument('--relative-params', action='append', default=[],
                   type=lambda t: _named(t, '--relative-params'), metavar='NAME=FILE.yaml',
                   help='describe third-party relative model NAME from a parameter file '
                        '(relative_* keys, e.g. config/foreign/*.yaml)')
    m.add_argument('--relative-set', action='append', default=[], metavar='[NAME.]FIELD=VALUE',
                   help='one field of a third-party relative model description; FIELD: '
                        + '; '.join(f'{k}: {v}' for k, v in FIELDS.items()))
    m.add_argument('--providers', nargs='+', default=['cpu'],
                   help='ONNX Runtime execution providers (cuda, tensorrt, cpu)')
    m.add_argument('--threads', type=int, default=1,
                   help='ONNX Runtime threads per model run (0 = its default); frames run in '
                        'parallel instead, which is faster on CPU')
    m.add_argument('--workers', type=int, default=None,
                   help='worker processes evaluating frames at once (default: the number of '
                        'CPUs, at most 8, on CPU; none with a usable GPU provider; 0 = in this '
                        'process)')
    m.add_argument('--recorded', nargs='+', choices=PREDICTION_ROLES, default=None,
                   help='score these recorded prediction topics instead of running models')
    s = p.add_argument_group('scoring')
    s.add_argument('--max-depth', type=float, default=None,
                   help="valid ground truth <= this (m); default: the AV model's max depth "
                        '(12 with --recorded)')
    s.add_argument('--min-depth', type=float, default=1e-3)
    s.add_argument('--scale-method', default=AUTO_SCALE, choices=(AUTO_SCALE,) + SCALE_METHODS,
                   help='how relative maps are fitted to M_p; auto = scale_shift for '
                        'affine_disparity outputs, median otherwise')
    s.add_argument('--sample-rate', type=int, default=None,
                   help="check that the bag's echoes have this sample rate (Hz)")
    s.add_argument('--slop', type=float, default=0.0,
                   help='stamp tolerance (s) when pairing camera, echo and ground truth')
    s.add_argument('--max-frames', type=int, default=None)
    s.add_argument('--panels', type=int, default=4, help='number of frames drawn as panels')
    t = p.add_argument_group('topics (a --namespace prefixes the defaults)')
    t.add_argument('--namespace', default='')
    for role in ('image', 'echoes', 'ground_truth', 'metric', 'pseudo_dense',
                 'relative'):
        flags = [f'--{role.replace("_", "-")}-topic'] + (['--gt-topic']
                                                         if role == 'ground_truth' else [])
        t.add_argument(*flags, dest=f'{role}_topic', default=None)
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def topics_from_args(args: argparse.Namespace) -> BagTopics:
    """Return the topics: defaults, under --namespace, overridden by the --*-topic options."""
    base = BagTopics()
    ns = '/' + args.namespace.strip('/') if args.namespace.strip('/') else ''
    values = {k: ns + v for k, v in base.__dict__.items()}
    for k in values:
        if getattr(args, f'{k}_topic', None):
            values[k] = getattr(args, f'{k}_topic')
    return BagTopics(**values)


def variants_from_args(args: argparse.Namespace) -> List[Variant]:
    """Return the variants of --av/--v and --variant."""
    out = []
    if args.av:
        out.append(Variant('avs', args.av, args.v))
    elif args.v:
        raise AvsInputError('--v needs --av')
    for name, paths in args.variant:
        parts = paths.split(',')
        if len(parts) > 2:
            raise AvsInputError(f'--variant {name}: give AV.onnx[,V.onnx], got {paths!r}')
        out.append(Variant(name, parts[0], parts[1] if len(parts) > 1 else None))
    return out


def relative_specs_from_args(args: argparse.Namespace,
                             relatives: Dict[str, str]) -> Dict[str, ForeignModelSpec]:
    """Return the third-party model descriptions of --relative-params and --relative-set.

    Raises:
        AvsInputError: a name that is not a --relative model, a field without a name while
            there are several relative models, a malformed option, or a bad description.
        FileNotFoundError: a --relative-params file does not exist.

    """
    base: Dict[str, Dict[str, object]] = {}
    for name, path in args.relative_params:
        if name not in relatives:
            raise AvsInputError(f'--relative-params {name}=...: no --relative model is named '
                                f'{name!r} (names: {sorted(relatives)})')
        base[name] = asdict(read_spec_file(path))
    for text in args.relative_set:
        key, sep, value = text.partition('=')
        name, dot, field = key.rpartition('.')
        if not sep or not field:
            raise AvsInputError(f'--relative-set takes [NAME.]FIELD=VALUE, got {text!r}')
        if not dot:
            if len(relatives) != 1:
                raise AvsInputError(f'--relative-set {text}: say which relative model '
                                    f'(NAME.{field}=...; names: {sorted(relatives)})')
            name = next(iter(relatives))
        if name not in relatives:
            raise AvsInputError(f'--relative-set {text}: no --relative model is named '
                                f'{name!r} (names: {sorted(relatives)})')
        base.setdefault(name, {})[field] = value
    return {name: ForeignModelSpec.from_mapping(values, f'relative model {name}')
            for name, values in base.items()}


def panel_indices(bag: str, topics: BagTopics, count: int, key: str) -> List[int]:
    """Return ``count`` frame indices spread over the bag's ``key`` messages."""
    n = bag_topics(bag).get(getattr(topics.resolved(), key), ('', 0))[1]
    if count <= 0 or n <= 0:
        return []
    return sorted({int(round(i)) for i in
                   [k * (n - 1) / max(1, count - 1) for k in range(min(count, n))]})


def main(argv: Optional[List[str]] = None) -> int:
    """Run the evaluation and write the report; see the module docstring for exit codes."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    out = args.out or os.path.normpath(args.bag).rstrip(os.sep) + '_eval'
    topics = topics_from_args(args)
    try:
        if args.recorded:
            panels = panel_indices(args.bag, topics, args.panels, args.recorded[0])
            res = score_recorded(args.bag, args.recorded, topics, args.max_depth or 12.0,
                                 args.min_depth, args.slop, panels, not args.quiet,
                                 args.max_frames)
        else:
            variants = variants_from_args(args)
            if not variants:
                raise AvsInputError('give an AVS-Net model: --av AV.onnx [--v V.onnx], '
                                    '--variant NAME=AV.onnx,V.onnx, or --recorded ROLE')
            relatives: Dict[str, str] = {}
            for name, path in args.relative:
                if name in relatives:
                    raise AvsInputError(f'relative model name {name!r} given twice')
                relatives[name] = path
            cfg = EvalConfig(max_depth=args.max_depth, min_depth=args.min_depth,
                             scale_method=args.scale_method,
                             relative_specs=relative_specs_from_args(args, relatives),
                             providers=tuple(args.providers),
                             intra_op_threads=args.threads, sample_rate=args.sample_rate,
                             slop_s=args.slop, max_frames=args.max_frames,
                             panel_frames=panel_indices(args.bag, topics, args.panels, 'image'),
                             progress=not args.quiet)
            if args.workers is not None:
                if args.workers < 0:
                    raise AvsInputError(f'--workers must be 0 or more, got {args.workers}')
                cfg.workers = args.workers
            res = evaluate_bag(args.bag, variants, relatives, topics, cfg)
    except (AvsInputError, ModelContractError, FileNotFoundError, ValueError,
            EvaluationWorkerError) as e:
        print(f'avs_eval_bag: error: {e}', file=sys.stderr)
        return 2
    files = write_report(res, out, title=f'Evaluation of {os.path.basename(args.bag)}')
    if res.bag.damage:
        print(f'avs_eval_bag: warning: {res.bag.damage}; the {res.frames_scored} frame(s) read '
              f'before the damage were scored', file=sys.stderr)
    print(f'{res.frames_scored} frame(s) scored; report: {files["markdown"]}')
    if res.frames_scored == 0:
        print('avs_eval_bag: error: no frame could be scored (see the pairing figures in the '
              'report)', file=sys.stderr)
        return 3
    return 0


if __name__ == '__main__':
    sys.exit(main())
