"""Check that ONNX files follow the avs_net_ros model contract and can run.

Usage: avs_validate_model MODEL.onnx [MODEL.onnx ...] [--run]

Prints each model's contract (kind, sizes, echo settings) or the list of problems, and with
``--run`` feeds it one input of the declared shapes through ONNX Runtime. Exits non-zero if any
model fails.
"""

import argparse
import sys
from typing import List, Optional

from avs_net_ros.core.contract import ECHO_INPUT, IMAGE_INPUT, read_onnx_contract
from avs_net_ros.core.errors import ModelContractError
import numpy as np


def describe(path: str, run: bool, providers: List[str]) -> None:
    """Print the contract of ``path``; raise on a broken model."""
    c = read_onnx_contract(path)
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


def main(argv: Optional[List[str]] = None) -> int:
    """Validate the models named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('models', nargs='+', help='ONNX files')
    parser.add_argument('--run', action='store_true', help='also run one inference')
    parser.add_argument('--providers', nargs='+', default=['cuda', 'cpu'],
                        help='execution providers in order of preference')
    args = parser.parse_args(argv)
    failed = 0
    for path in args.models:
        try:
            describe(path, args.run, args.providers)
        except (ModelContractError, FileNotFoundError) as e:
            print(f'FAILED {e}', file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
