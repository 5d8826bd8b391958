"""AVS-Net's first stage (pseudo-dense metric depth M_p) and the relative-depth model.

Module boundaries and shapes (B = batch, image H x W, features F = 64, bottleneck D = 8F):

    image (B,3,H,W) in [0,1] -> normalise (in the graph)
      -> MidasNet.encode        [l1 (F,H/4), l2 (2F,H/8), l3 (4F,H/16), l4 (D,H/32)]
    echo_spec (B,2,Hs,Ws) -> EchoEncoder -> (B,D,H/32,W/32)          (AV only)
      -> CrossModalAttention(l4, echo) -> fused l4                     (AV only)
      -> MidasNet.decode        relative (B,1,H,W), out_conv (B,32,H,W), r4..r1
      -> MetricBinsHead         depth M_p (B,1,H,W) in [min_depth, max_depth] (normed bins)

The visual-only variant (V) is the same network without the echo encoder and the attention:
its bottleneck goes to the decoder unchanged. The relative model is MidasNet alone with a
softplus output: a positive depth known up to scale, or (``model.relative_output``
'affine_disparity') a positive disparity known up to a scale and a shift, as MiDaS predicts
(MiDaS ends in ReLU; softplus keeps every pixel invertible).
"""

import math
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from training.config import ModelConfig
from training.models.cross_attention import CrossModalAttention
from training.models.echo_encoder import EchoEncoder, TimeOfFlightEncoder
from training.models.metric_bins import MetricBinsHead
from training.models.midas import backbone_mean_std, MidasNet


class _Normalize(nn.Module):
    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def image_normalisation(backbone: nn.Module, mean=None, std=None) -> nn.Module:
    """Return the in-graph normalisation: ``mean``/``std``, else what the backbone expects."""
    b_mean, b_std = backbone_mean_std(backbone)
    return _Normalize(mean or b_mean, std or b_std)


def midas_core(config, output_activation: str) -> Tuple[MidasNet, nn.Module]:
    """Return the MiDaS-small network of a model config and its input normalisation.

    ``config`` needs backbone, features, backbone_weights, backbone_kwargs, mean and std.
    """
    core = MidasNet(config.backbone, config.features, config.backbone_weights,
                    output_activation, config.backbone_kwargs)
    return core, image_normalisation(core.pretrained, config.mean, config.std)


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f'image must be (B, 3, H, W), got {tuple(image.shape)}')


class AVSNet(nn.Module):
    """Audio-visual (``takes_echo``) or visual-only metric depth network."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.variant not in ('av', 'v'):
            raise ValueError(f"AVSNet variant must be 'av' or 'v', got {config.variant!r}")
        self.config = config
        self.takes_echo = config.variant == 'av'
        self.core, self.normalize = midas_core(config, 'relu')
        btl = self.core.output_channels[0]
        if self.takes_echo:
            scale_head = config.echo_scale != 'none'
            init = math.log(math.sqrt(config.min_depth * config.max_depth))
            if config.echo_encoder == 'tof':
                if not scale_head:
                    raise ValueError("the 'tof' echo encoder needs model.echo_scale 'aux' or "
                                     "'anchor' (its scale head is its training signal)")
                self.echo_encoder = TimeOfFlightEncoder(
                    btl, config.echo_channels, config.echo_freq_bands, config.echo_width,
                    init_log_scale=init)
            else:
                self.echo_encoder = EchoEncoder(btl, config.echo_channels, config.echo_backbone,
                                                config.echo_weights, scale_head, init)
            self.fusion = CrossModalAttention(btl, config.attention_heads,
                                              config.attention_dropout)
        self.head = MetricBinsHead(
            self.core.output_channels, n_bins=config.n_bins,
            bin_embedding_dim=config.bin_embedding_dim, n_attractors=config.n_attractors,
            attractor_alpha=config.attractor_alpha, attractor_gamma=config.attractor_gamma,
            attractor_kind=config.attractor_kind, attractor_type=config.attractor_type,
            min_temp=config.min_temp, max_temp=config.max_temp, min_depth=config.min_depth,
            max_depth=config.max_depth, bin_centers_type=config.bin_centers_type)

    def forward(self, image: torch.Tensor,
                echo_spec: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Return {'depth', 'bin_centers', 'relative'}; ``echo_spec`` is required for AV only.

        Raises:
            ValueError: an echo spectrogram is missing (AV) or given (V), or bad shapes.

        """
        _check_image(image)
        if self.takes_echo and echo_spec is None:
            raise ValueError('the audio-visual model needs echo_spec (B, 2, Hs, Ws)')
        if not self.takes_echo and echo_spec is not None:
            raise ValueError('the visual-only model takes no echo_spec')
        layers = self.core.encode(self.normalize(image))
        log_scale = None
        if self.takes_echo:
            if echo_spec.ndim != 4 or echo_spec.shape[1] != self.config.echo_channels:
                raise ValueError(f'echo_spec must be (B, {self.config.echo_channels}, Hs, Ws), '
                                 f'got {tuple(echo_spec.shape)}')
            l4 = layers[3]
            echo, log_scale = self.echo_encoder(echo_spec, l4.shape[-2:])
            layers = [*layers[:3], self.fusion(l4, echo)]
        dec = self.core.decode(layers)
        head_in = (layers[3], dec.blocks, dec.out_conv, dec.relative)
        if image.device.type == 'cuda' and torch.is_autocast_enabled('cuda'):
            # The log-binomial divides by temperatures down to 0.02: keep the head in fp32.
            with torch.autocast('cuda', enabled=False):
                out = self.head(head_in[0].float(), [b.float() for b in head_in[1]],
                                head_in[2].float(), head_in[3].float())
        else:
            out = self.head(*head_in)
        out['relative'] = dec.relative
        if self.takes_echo and log_scale is not None:
            out['echo_log_scale'] = log_scale
            if self.config.echo_scale == 'anchor':
                out['depth'] = anchor_scale(out['depth'], log_scale, self.config.min_depth,
                                            self.config.max_depth)
        return out


def anchor_scale(depth: torch.Tensor, log_scale: torch.Tensor, min_depth: float,
                 max_depth: float) -> torch.Tensor:
    """Rescale each (1, H, W) map so its geometric mean is ``exp(log_scale)``, clamped."""
    log_mean = torch.log(depth.clamp_min(min_depth)).mean(dim=(1, 2, 3))
    gain = torch.exp(log_scale - log_mean).view(-1, 1, 1, 1)
    return (depth * gain).clamp(min_depth, max_depth)


class RelativeDepthNet(nn.Module):
    """MiDaS-small with a softplus output: depth up to a scale, or affine-invariant disparity."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.takes_echo = False
        #: 'depth' or 'affine_disparity' (training.config.RELATIVE_OUTPUTS)
        self.relative_output = config.relative_output
        self.core, self.normalize = midas_core(config, 'softplus')

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'relative': (B, 1, H, W)}, positive (``relative_output`` says what it is)."""
        _check_image(image)
        return {'relative': self.forward_normalized(self.normalize(image))}

    def forward_normalized(self, image: torch.Tensor) -> torch.Tensor:
        """Return the relative map of an image already normalised with ``normalize``'s mean/std.

        What a graph without the normalisation computes (``training.export --foreign``: MiDaS's
        convention, where the caller normalises).
        """
        return self.core(image) + 1e-3


def build_model(config: ModelConfig) -> nn.Module:
    """Build the network a config's ``variant`` names."""
    if config.variant == 'relative':
        return RelativeDepthNet(config)
    return AVSNet(config)


def parameter_groups(model: nn.Module, lr: float, encoder_lr_factor: float,
                     decoder_lr_factor: float) -> list:
    """Split parameters into ZoeDepth's groups: backbone, decoder, and the rest (head).

    Learning rates: backbone lr / encoder_lr_factor, decoder lr / decoder_lr_factor, rest lr.

    The echo encoder and the attention are new modules outside the MiDaS core, so like
    ZoeDepth's head they take the full lr. ``encoder_lr_factor <= 0`` freezes the backbone.
    """
    model = getattr(model, 'module', model)
    encoder, decoder, rest = [], [], []
    for name, p in model.named_parameters():
        if name.startswith('core.pretrained.') or name.startswith('core.reassemble.'):
            if encoder_lr_factor <= 0:
                p.requires_grad_(False)
                continue
            encoder.append(p)
        elif name.startswith('core.'):
            decoder.append(p)
        else:
            rest.append(p)
    groups = []
    if encoder:
        groups.append({'params': encoder, 'lr': lr / encoder_lr_factor, 'name': 'encoder'})
    groups.append({'params': decoder, 'lr': lr / decoder_lr_factor, 'name': 'decoder'})
    if rest:
        groups.append({'params': rest, 'lr': lr, 'name': 'head'})
    return groups
