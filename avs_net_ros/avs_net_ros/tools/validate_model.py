"""Check that ONNX files follow the avs_net_ros model contract, or can run as third-party models.

Usage: avs_validate_model MODEL.onnx [MODEL.onnx ...] [--run]
       avs_validate_model FOREIGN.onnx [--relative-params FILE.yaml] [--relative-set F=V] [--run]

Prints each model's contract (kind, sizes, echo settings) or the list of problems, and with
``--run`` feeds it one input of the declared shapes through ONNX Runtime. A file without
avs_net_ros metadata (MiDaS, Depth Anything, ZoeDepth, ...) is explained: its inputs and
outputs, what it lacks, a suggested description (a parameter file for depth_inference and
avs_eval_bag) and the options that make it usable; given a description (``--relative-params``
and/or ``--relative-set``), it is checked against the graph and, with ``--run``, fed a camera
frame as the pipeline feeds it. Exits non-zero if any model fails.
"""

import argparse
from dataclasses import asdict
import os
import sys
from typing import List, Optional

from avs_net_ros.core.contract import (contract_of, ECHO_INPUT, IMAGE_INPUT, OnnxGraph,
                                       read_onnx_graph)
from avs_net_ros.core.errors import AvsInputError, ModelContractError
from avs_net_ros.core.foreign import (FIELDS, ForeignModelSpec, read_spec_file, resolve_foreign,
                                      suggest_spec)
import numpy as np

#: Camera size the ``--run`` check of a third-party model feeds (height, width).
RUN_CAMERA = (480, 640)


def describe(path: str, run: bool, providers: List[str],
             spec: Optional[ForeignModelSpec] = None) -> None:
    """Print the contract of ``path`` (or check it against ``spec``); raise on a broken model."""
    graph = read_onnx_graph(path)
    if not graph.has_contract:
        if spec is None:
            explain_foreign(graph)
            contract_of(graph)  # raises, saying what to pass
        describe_foreign(graph, spec, run, providers)
        return
    c = contract_of(graph)
    print(f'{path}: OK, contract v{c.version}, kind {c.kind}, image {c.image_size[0]}x'
          f'{c.image_size[1]}')
    if c.max_depth is not None:
        print(f'  depth range {c.min_depth}..{c.max_depth} m')
    if c.echo is not None:
        f = c.echo.features
        print(f'  echo: {f.channels} ch @ {f.sample_rate} Hz, window {f.window_samples} samples '
              f'({c.echo.echo_max_depth} m at {c.echo.speed_of_sound} m/s), lead-in '
              f'{c.echo.lead_in_samples}; STFT n_fft {f.stft.n_fft} win {f.stft.win_length} '
              f'hop {f.stft.hop_length} power {f.stft.power}; spectrogram {f.spec_size}')
    if c.relative_output is not None:
        print(f'  relative output: {c.relative_output}')
    if run:
        from avs_net_ros.runtime.session import OnnxModel
        model = OnnxModel(path, providers)
        feeds = {IMAGE_INPUT: np.full((1, 3) + c.image_size, 0.5, np.float32)}
        if c.takes_echo:
            feeds[ECHO_INPUT] = np.ones((1, c.echo.features.channels)
                                        + c.echo.features.spec_size, np.float32)
        out = model.run(feeds)
        print(f'  ran on {model.active_providers}: output {out.shape}, range '
              f'{float(np.nanmin(out)):.4g}..{float(np.nanmax(out)):.4g}')


def _io_lines(graph: OnnxGraph) -> List[str]:
    lines = []
    for what, values in (('input', graph.inputs), ('output', graph.outputs)):
        for name, dims in values.items():
            lines.append(f'  {what} {name!r}: {graph.types.get(name, "?")} {dims}')
    return lines


def _yaml_value(v: object) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return '[' + ', '.join(_yaml_value(x) for x in v) + ']'
    return str(v)


def explain_foreign(graph: OnnxGraph) -> None:
    """Print what a file without metadata is missing and how to describe it."""
    path = graph.path
    params, notes = suggest_spec(graph)
    name = os.path.splitext(os.path.basename(path))[0]
    print(f'{path}: no avs_net_ros metadata (avs_net.* keys): not exported by this package.')
    print('\n'.join(_io_lines(graph)))
    print('  It can be the relative model once described (a third-party model). The graph '
          'cannot tell:')
    print('    - what it outputs (relative_output: depth, disparity, affine_disparity or '
          'metric_depth)')
    print('    - how to normalise the image (relative_mean, relative_std, '
          'relative_channel_order, relative_pixel_range)')
    for n in notes:
        print(f'  note: {n}')
    print('  Suggested description (save as e.g. my_model.yaml; every key is a depth_inference '
          'parameter, see config/depth_inference.yaml and config/foreign/):')
    print('    /**/depth_inference:\n      ros__parameters:')
    for k, v in params.items():
        fill = '  # REQUIRED: one of depth, disparity, affine_disparity, metric_depth' if (
            k == 'relative_output' and not v) else ''
        print(f'        {k}: {_yaml_value(v)}{fill}')
    print('  Then:')
    print(f'    avs_validate_model {path} --relative-params my_model.yaml --run')
    print(f'    ros2 launch avs_net_ros depth.launch.py relative_model:={path} '
          'relative_params_file:=my_model.yaml avs_model:=... visual_model:=...')
    print(f'    avs_eval_bag BAG --av AV.onnx --v V.onnx --relative {name}={path} '
          f'--relative-params {name}=my_model.yaml')


def describe_foreign(graph: OnnxGraph, spec: ForeignModelSpec, run: bool,
                     providers: List[str]) -> None:
    """Check ``spec`` against a file without metadata and print how it will be fed."""
    model = resolve_foreign(spec, graph)
    size = (f'{model.fixed_size[0]}x{model.fixed_size[1]}' if model.fixed_size else
            f'dynamic: shorter side {spec.short_side}, sides multiples of '
            f'{spec.size_multiple} (a {RUN_CAMERA[0]}x{RUN_CAMERA[1]} camera: '
            f'{"x".join(map(str, model.input_size(RUN_CAMERA)))})')
    print(f'{graph.path}: OK as a third-party relative model (no avs_net_ros metadata)')
    print('\n'.join(_io_lines(graph)))
    print(f'  fed: input {model.input_name!r}, {size}, {spec.channel_order} in '
          f'[0, {spec.pixel_range:g}], mean {list(spec.mean)}, std {list(spec.std)}')
    print(f'  read: output {model.output_name!r} as {spec.output}; scale method (auto) '
          f'{spec.scale_method}')
    if run:
        from avs_net_ros.runtime.pipeline import single_map
        from avs_net_ros.runtime.session import OnnxModel
        session = OnnxModel(graph.path, providers, foreign=spec)
        h, w = model.input_size(RUN_CAMERA)
        x = model.preprocess(np.full((1, 3, h, w), 0.5, np.float32))
        out = session.run({session.image_input: x})
        single_map(out, graph.path)  # one map, as the pipeline needs
        print(f'  ran on {session.active_providers}: input {list(x.shape)}, output '
              f'{list(out.shape)}, range {float(np.nanmin(out)):.4g}..'
              f'{float(np.nanmax(out)):.4g}')


def spec_from_args(args: argparse.Namespace) -> Optional[ForeignModelSpec]:
    """Return the description given by --relative-params / --relative-set, or None."""
    values = asdict(read_spec_file(args.relative_params)) if args.relative_params else {}
    for text in args.relative_set:
        key, sep, value = text.partition('=')
        if not sep:
            raise AvsInputError(f'--relative-set takes FIELD=VALUE, got {text!r}')
        values[key] = value
    return ForeignModelSpec.from_mapping(values, 'command line') if values else None


def main(argv: Optional[List[str]] = None) -> int:
    """Validate the models named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('models', nargs='+', help='ONNX files')
    parser.add_argument('--run', action='store_true', help='also run one inference')
    parser.add_argument('--providers', nargs='+', default=['cuda', 'cpu'],
                        help='execution providers in order of preference')
    parser.add_argument('--relative-params', metavar='FILE.yaml',
                        help='describe files without metadata by this parameter file '
                             '(relative_* keys, e.g. config/foreign/*.yaml)')
    parser.add_argument('--relative-set', action='append', default=[], metavar='FIELD=VALUE',
                        help='one field of that description (wins over the file); FIELD: '
                             + '; '.join(f'{k}: {v}' for k, v in FIELDS.items()))
    args = parser.parse_args(argv)
    try:
        spec = spec_from_args(args)
    except (AvsInputError, FileNotFoundError) as e:
        print(f'FAILED {e}', file=sys.stderr)
        return 2
    failed = 0
    for path in args.models:
        try:
            describe(path, args.run, args.providers, spec)
        except (ModelContractError, AvsInputError, FileNotFoundError) as e:
            print(f'FAILED {e}', file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
