"""Export the disparity network of a self-supervised checkpoint as a relative ONNX model.

    python -m training.selfsup.export --checkpoint artifacts/selfsup/best.pt --out selfsup.onnx

The graph takes RGB in [0, 1] (normalisation inside) and outputs ``relative``, the disparity
in [1 / max_depth, 1 / min_depth]; its contract metadata says ``relative_output: disparity``,
so ``MetricDepthPipeline`` inverts it before scaling. Parity with PyTorch is checked as for
every export (``training.export.export_onnx``).
"""

import argparse
from typing import Optional, Tuple

from avs_net_ros.core.contract import KIND_RELATIVE, ModelContract

import torch
from torch import nn

from training.config import config_from_dict
from training.export import export_onnx
from training.models.monodepth import DisparityNet, SelfSupervisedNet
from training.selfsup.config import SelfSupConfig, SelfSupModelConfig


def disparity_contract(config: SelfSupModelConfig) -> ModelContract:
    """Return the contract of a disparity network built from ``config``."""
    return ModelContract(kind=KIND_RELATIVE, image_size=tuple(config.image_size),
                         relative_output='disparity')


def load_disparity_net(path: str) -> Tuple[DisparityNet, SelfSupModelConfig]:
    """Rebuild the disparity network of a self-supervised trainer checkpoint.

    Raises:
        ValueError: the checkpoint was not written by the self-supervised trainer.

    """
    state = torch.load(path, map_location='cpu', weights_only=False)
    if 'pose_backbone' not in state.get('config', {}).get('model', {}):
        raise ValueError(f'{path} is not a self-supervised checkpoint (no pose network in its '
                         f'config); export supervised models with training.export')
    config = config_from_dict(state['config'], SelfSupConfig)
    net = SelfSupervisedNet(config.model)
    net.load_state_dict(state['model'])
    return net.depth.eval(), config.model


def export_disparity(net: nn.Module, config: SelfSupModelConfig, path: str,
                     tolerance: float = 1e-3) -> float:
    """Export ``net`` with the disparity contract; return the max abs diff to PyTorch."""
    return export_onnx(net, disparity_contract(config), path, tolerance=tolerance)


def main(argv: Optional[list] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--checkpoint', required=True, help='best.pt or last.pt of a run')
    p.add_argument('--out', required=True, help='ONNX file to write')
    p.add_argument('--tolerance', type=float, default=1e-3,
                   help='largest ONNX Runtime difference from PyTorch, relative')
    args = p.parse_args(argv)
    net, config = load_disparity_net(args.checkpoint)
    export_disparity(net, config, args.out, args.tolerance)


if __name__ == '__main__':
    main()
