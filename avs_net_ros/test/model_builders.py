"""Small contract-following ONNX models that the tests build themselves (torch is test-only).

The networks are tiny and deterministic so that tests can recompute their output in numpy:

- AVS-Net stand-in: depth = min_depth + softplus(conv(normalised image)) * echo_gain, where
  echo_gain = 1 + mean(spectrogram) for the AV kind and 1 for the V kind.
- Relative stand-in: the same conv on the image, as depth or disparity.
- Masked relative stand-in: disparity 0 (no depth) where the red channel is below 0.5, so
  tests can check that invalid pixels come out as NaN.

They are not AVS-Net; they exist to test the runtime, the nodes and the tools against real
ONNX Runtime sessions with real contract metadata.
"""

import os
from typing import Dict, Optional, Tuple

from avs_net_ros.core.contract import (DEPTH_OUTPUT, ECHO_INPUT, EchoContract, IMAGE_INPUT,
                                       KIND_AV, KIND_RELATIVE, KIND_V, ModelContract,
                                       RELATIVE_OUTPUT)
from avs_net_ros.core.spectrogram import EchoFeatureConfig
import onnx
import torch
from torch import nn


class TinyDepthNet(nn.Module):
    """Image (and optionally spectrogram) -> one-channel positive map."""

    def __init__(self, with_echo: bool, offset: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 1, kernel_size=3, padding=1)
        self.with_echo = with_echo
        self.offset = offset

    def forward(self, image: torch.Tensor, spec: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        x = (image - 0.5) / 0.5
        y = nn.functional.softplus(self.conv(x)) + self.offset
        if self.with_echo:
            y = y * (1.0 + spec.mean(dim=(1, 2, 3), keepdim=True))
        return y


def _export(module: nn.Module, args: Tuple[torch.Tensor, ...], names, output: str,
            metadata: Dict[str, str], path: str) -> str:
    module.eval()
    torch.onnx.export(module, args, path, input_names=list(names), output_names=[output],
                      dynamic_axes={n: {0: 'batch'} for n in list(names) + [output]},
                      opset_version=17, dynamo=False)
    model = onnx.load(path)
    for k, v in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, path)
    return path


def echo_features(spec_size=(16, 16), echo_max_depth=6.0, sample_rate=44100,
                  speed_of_sound=340.0) -> EchoFeatureConfig:
    """Echo settings of the test models (a short window keeps tests fast)."""
    from avs_net_ros.core.acoustics import echo_window_samples
    return EchoFeatureConfig(sample_rate=sample_rate,
                             window_samples=echo_window_samples(echo_max_depth, sample_rate,
                                                                speed_of_sound),
                             spec_size=spec_size)


def build_avs_model(path: str, kind: str = KIND_AV, image_size=(32, 32), spec_size=(16, 16),
                    min_depth: float = 0.1, max_depth: float = 12.0,
                    echo_max_depth: float = 6.0, lead_in: int = 0) -> str:
    """Export an AVS-Net stand-in of ``kind`` (AV or V) to ``path``."""
    h, w = image_size
    net = TinyDepthNet(with_echo=(kind == KIND_AV), offset=min_depth)
    img = torch.rand(1, 3, h, w)
    echo = None
    if kind == KIND_AV:
        feats = echo_features(spec_size, echo_max_depth)
        echo = EchoContract(feats, echo_max_depth, 340.0, lead_in)
        args, names = (img, torch.rand(1, 2, *spec_size)), (IMAGE_INPUT, ECHO_INPUT)
    else:
        args, names = (img,), (IMAGE_INPUT,)
    contract = ModelContract(kind, image_size, min_depth, max_depth, echo)
    return _export(net, args, names, DEPTH_OUTPUT, contract.to_metadata(), path)


class SlowDepthNet(TinyDepthNet):
    """``TinyDepthNet`` plus a chain of large matrix products that changes nothing but time.

    The chain depends on the input (ONNX Runtime cannot fold it away) and adds 0 to the output
    within float rounding (1e-30 times a bounded value).
    """

    def __init__(self, with_echo: bool, offset: float, size: int, steps: int) -> None:
        super().__init__(with_echo, offset)
        g = torch.Generator().manual_seed(1)
        self.register_buffer('a', torch.randn(size, size, generator=g) / size ** 0.5)
        self.steps = steps

    def forward(self, image: torch.Tensor, spec: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        z = self.a * image.mean()
        for _ in range(self.steps):
            z = torch.tanh(z @ self.a)
        return super().forward(image, spec) + 1e-30 * z.mean()


def build_slow_avs_model(path: str, size: int = 1024, steps: int = 30) -> str:
    """Export an AV stand-in (``build_avs_model``'s contract) that takes long to run.

    About 2 * steps * size^3 floating-point operations per run (60 GFLOP by default, about a
    second on a 2-core CPU): enough to see what a node does while an echo is processed.
    """
    h, w = 32, 32
    feats = echo_features((16, 16), 6.0)
    contract = ModelContract(KIND_AV, (h, w), 0.1, 12.0, EchoContract(feats, 6.0, 340.0, 0))
    net = SlowDepthNet(True, 0.1, size, steps)
    return _export(net, (torch.rand(1, 3, h, w), torch.rand(1, 2, 16, 16)),
                   (IMAGE_INPUT, ECHO_INPUT), DEPTH_OUTPUT, contract.to_metadata(), path)


def build_relative_model(path: str, output: str = 'depth', image_size=(24, 40)) -> str:
    """Export a relative-depth stand-in whose output is ``output`` ('depth'/'disparity')."""
    net = TinyDepthNet(with_echo=False, offset=0.05)
    contract = ModelContract(KIND_RELATIVE, image_size, relative_output=output)
    return _export(net, (torch.rand(1, 3, *image_size),), (IMAGE_INPUT,), RELATIVE_OUTPUT,
                   contract.to_metadata(), path)


class RedDisparity(nn.Module):
    """Disparity 4 * max(red - 0.5, 0): zero, i.e. no depth, where red < 0.5."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.relu(image[:, :1] - 0.5) * 4.0 + image[:, 1:2] * 0.0


def build_masked_relative_model(path: str, image_size=(24, 40)) -> str:
    """Export the masked relative stand-in (``RedDisparity``, output disparity) to ``path``."""
    contract = ModelContract(KIND_RELATIVE, tuple(image_size), relative_output='disparity')
    return _export(RedDisparity(), (torch.rand(1, 3, *image_size),), (IMAGE_INPUT,),
                   RELATIVE_OUTPUT, contract.to_metadata(), path)


def build_model_set(folder: str) -> Dict[str, str]:
    """Build AV, V and relative (depth, disparity, masked) models in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    return {
        'av': build_avs_model(os.path.join(folder, 'avs_av.onnx'), KIND_AV),
        'v': build_avs_model(os.path.join(folder, 'avs_v.onnx'), KIND_V),
        'relative': build_relative_model(os.path.join(folder, 'relative.onnx')),
        'relative_disparity': build_relative_model(
            os.path.join(folder, 'relative_disparity.onnx'), 'disparity'),
        'masked': build_masked_relative_model(os.path.join(folder, 'relative_masked.onnx')),
    }
