"""TensorFlow-style 'same' padding fixed to the export size, so ONNX graphs pad with constants.

timm's ``tf_*`` backbones (EfficientNet-Lite, the MiDaS-small encoder) pad strided
convolutions the TensorFlow way: the padding depends on the input size, which timm's
``Conv2dSame`` computes at run time (``pad_same``: ceil of a float division). Exported as is,
every such convolution carries a chain of Shape, Div, Ceil, Sub and Cast nodes feeding a Pad
whose amounts are not constants. Two costs follow, both measured
(``benchmarks.bench_model_latency``): ONNX Runtime cannot fuse the Pad into the convolution
(a separate pass over the activation), and INT8 quantization breaks the quantized chain at
every Pad; quantizing Add nodes even quantized the float arithmetic of the padding amounts,
and the graph then computed 7x7 instead of 8x8 bottleneck tokens. A model exports at one input
size (the contract's), so the amounts are constants: ``static_same_padding`` runs the model
once at that size, records each ``Conv2dSame`` input size and, while the context lasts, makes
those convolutions pad by the recorded amounts: symmetric amounts as the convolution's own
padding, asymmetric ones (stride 2, even inputs) as the ONNX Conv's own asymmetric ``pads``
(one node: ONNX Runtime did not fuse a separate constant Pad into the Conv, and a Pad between
quantized convolutions costs a dequantize, pad and quantize). The arithmetic is the same, so
outputs are identical.
"""

import contextlib
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F


def _same_conv_class() -> type:
    from timm.layers.conv2d_same import Conv2dSame

    return Conv2dSame


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> Tuple[int, int]:
    """Return (before, after) TensorFlow 'same' padding of one axis (timm's ``pad_same``)."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _PaddedConv(torch.autograd.Function):
    """``conv2d(pad(x, pads))``, exported as one ONNX Conv with asymmetric ``pads``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                pads: Tuple[int, int, int, int], stride: Tuple[int, int],
                dilation: Tuple[int, int], groups: int) -> torch.Tensor:
        return F.conv2d(F.pad(x, pads), weight, bias, stride, 0, dilation, groups)

    @staticmethod
    def symbolic(g, x, weight, bias, pads, stride, dilation, groups):
        left, right, top, bottom = pads
        inputs = [x, weight] if bias is None or bias.node().mustBeNone() else [x, weight, bias]
        return g.op('Conv', *inputs, pads_i=[top, left, bottom, right], strides_i=list(stride),
                    dilations_i=list(dilation), group_i=groups,
                    kernel_shape_i=list(weight.type().sizes()[-2:]))


def _static_forward(conv: nn.Conv2d, pads: Tuple[int, int, int, int]):
    left, right, top, bottom = pads
    if left == right and top == bottom:
        def forward(x: torch.Tensor) -> torch.Tensor:
            return F.conv2d(x, conv.weight, conv.bias, conv.stride, (top, left),
                            conv.dilation, conv.groups)
    else:
        def forward(x: torch.Tensor) -> torch.Tensor:
            return _PaddedConv.apply(x, conv.weight, conv.bias, pads, tuple(conv.stride),
                                     tuple(conv.dilation), conv.groups)
    return forward


@contextlib.contextmanager
def static_same_padding(model: nn.Module, *inputs: torch.Tensor) -> Iterator[int]:
    """Within the context, ``model``'s 'same'-padded convolutions pad by constants.

    The amounts are those of ``model(*inputs)``; the context yields how many convolutions it
    fixed (0 for models without TensorFlow-style padding, which are left untouched). Use it
    around an export at the size of ``inputs`` only: at another size the graph would pad
    wrongly.
    """
    same = _same_conv_class()
    convs: List[nn.Conv2d] = [m for m in model.modules() if isinstance(m, same)]
    if not convs:
        yield 0
        return
    sizes: Dict[int, Tuple[int, int]] = {}

    def record(mod: nn.Module, args: tuple) -> None:
        sizes.setdefault(id(mod), tuple(args[0].shape[-2:]))

    hooks = [m.register_forward_pre_hook(record) for m in convs]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    patched = []
    try:
        for m in convs:
            if id(m) not in sizes:
                continue  # not on this input's path
            (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, m.stride, m.dilation
            top, bottom = _same_pads(sizes[id(m)][0], kh, sh, dh)
            left, right = _same_pads(sizes[id(m)][1], kw, sw, dw)
            m.forward = _static_forward(m, (left, right, top, bottom))
            patched.append(m)
        yield len(patched)
    finally:
        for m in patched:
            del m.forward
