"""Third-party-style ONNX models (no avs_net_ros metadata) and scenes with a known depth.

A scene encodes its metric depth D in the red channel: red = round(255 * r) with inverse
depth 1/D = Q_MAX * red / 255, so D is known exactly for every pixel, and the green and blue
channels hold unrelated values (feeding the wrong channel gives a wrong map).

- ``build_foreign_model``: a MiDaS-like or Depth-Anything-like graph. It first undoes the
  normalisation its family expects (mean/std, pixel range, channel order, constants baked in
  the graph), then outputs ``A * r + B``: an exact affine function of the inverse depth, i.e.
  affine-invariant disparity. Fed with another normalisation, its output is no longer affine
  in 1/D. Input/output names, fixed or dynamic size and output rank follow the family.
- ``build_exact_avs_model``: a contract-following AVS-Net stand-in (V or AV) whose depth is
  exactly D (the metric reference), or a fixed multiple of it (a wrong scale); the AV one adds
  0 x the spectrogram's mean.

Not MiDaS or Depth Anything: graphs with their interfaces and preprocessing, so the runtime's
handling of such files can be checked against known numbers with real ONNX Runtime sessions.
"""

from typing import Optional, Sequence, Tuple

from avs_net_ros.core.contract import (DEPTH_OUTPUT, ECHO_INPUT, IMAGE_INPUT, KIND_AV, KIND_V,
                                       ModelContract)
from avs_net_ros.core.contract import EchoContract
from avs_net_ros.core.foreign import IMAGENET_MEAN, IMAGENET_STD
import numpy as np
import onnx
import torch
from torch import nn

Q_MAX = 2.0          # inverse depth (1/m) of a red value of 255
A, B = 3.0, 0.25     # the foreign graph's output: A * red / 255 + B


def scene(height: int, width: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Return (rgb uint8, depth D in metres) with D encoded in the red channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    red = (13 + (xx * 7 + yy * 3) % 243).astype(np.uint8)  # 13..255: D in 0.5..9.8 m
    rgb = np.stack([red, rng.integers(0, 256, (height, width)),
                    rng.integers(0, 256, (height, width))], axis=-1).astype(np.uint8)
    depth = (1.0 / (Q_MAX * red.astype(np.float64) / 255.0)).astype(np.float32)
    return rgb, depth


class _AffineDisparity(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float], channel_order: str,
                 pixel_range: float, rank: int) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.red = 0 if channel_order == 'RGB' else 2
        self.pixel_range = pixel_range
        self.rank = rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = (x * self.std + self.mean) / self.pixel_range  # back to [0, 1]
        red = pixels[:, self.red:self.red + 1]
        out = A * red + B
        return out[:, 0] if self.rank == 3 else out


def build_foreign_model(path: str, family: str = 'midas',
                        size: Optional[Tuple[int, int]] = (256, 256),
                        mean: Sequence[float] = IMAGENET_MEAN,
                        std: Sequence[float] = IMAGENET_STD, channel_order: str = 'RGB',
                        pixel_range: float = 1.0) -> str:
    """Export a third-party-style affine-disparity model without any metadata.

    ``family`` 'midas': input 'input.1', output 'disparity' (B, 1, H, W); 'depth_anything':
    input 'pixel_values', output 'predicted_depth' (B, H, W). ``size`` None gives dynamic
    height and width (and batch).
    """
    names = {'midas': ('input.1', 'disparity', 4),
             'depth_anything': ('pixel_values', 'predicted_depth', 3)}[family]
    net = _AffineDisparity(mean, std, channel_order, pixel_range, names[2]).eval()
    h, w = size or (28, 42)
    axes = {names[0]: {0: 'batch'}, names[1]: {0: 'batch'}}
    if size is None:
        axes[names[0]].update({2: 'height', 3: 'width'})
        axes[names[1]].update({names[2] - 2: 'height', names[2] - 1: 'width'})
    torch.onnx.export(net, (torch.rand(1, 3, h, w),), path, input_names=[names[0]],
                      output_names=[names[1]], dynamic_axes=axes, opset_version=17,
                      dynamo=False)
    model = onnx.load(path)
    assert not model.metadata_props  # a third-party file: nothing of ours in it
    return path


class _ExactDepth(nn.Module):
    def __init__(self, with_echo: bool, scale: float = 1.0) -> None:
        super().__init__()
        self.with_echo = with_echo
        self.scale = scale

    def forward(self, image: torch.Tensor, spec: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        depth = self.scale / (Q_MAX * image[:, :1])
        if self.with_echo:
            depth = depth + 0.0 * spec.mean(dim=(1, 2, 3), keepdim=True)
        return depth


def build_exact_avs_model(path: str, image_size: Tuple[int, int], kind: str = KIND_V,
                          scale: float = 1.0) -> str:
    """Export a contract-following AVS-Net stand-in whose depth is ``scale`` x the scene's D."""
    from model_builders import _export, echo_features

    img = torch.rand(1, 3, *image_size) * 0.9 + 0.05
    echo = None
    if kind == KIND_AV:
        echo = EchoContract(echo_features((16, 16), 6.0), 6.0, 340.0, 0)
        args, names = (img, torch.rand(1, 2, 16, 16)), (IMAGE_INPUT, ECHO_INPUT)
    else:
        args, names = (img,), (IMAGE_INPUT,)
    contract = ModelContract(kind, tuple(image_size), 0.1, 12.0, echo)
    return _export(_ExactDepth(kind == KIND_AV, scale), args, names, DEPTH_OUTPUT,
                   contract.to_metadata(), path)
