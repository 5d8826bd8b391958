"""Training configuration: dataclasses filled from YAML, unknown keys rejected by name.

Defaults are ZoeDepth's (its ``config_zoedepth.json`` and model code, isl-org/ZoeDepth) unless
a comment says otherwise.
"""

from dataclasses import asdict, dataclass, field, fields, is_dataclass
import typing
from typing import Any, Dict, List, Optional, Tuple

import yaml

VARIANTS = ('av', 'v', 'relative')
#: What a relative model learns (``model.relative_output``): 'depth' up to a scale (per-image
#: scale-invariant loss, median scaling), or 'affine_disparity', disparity up to a scale and a
#: shift, trained as MiDaS and Depth Anything are (scale-and-shift-invariant loss; scaled by
#: scale-and-shift).
RELATIVE_OUTPUTS = ('depth', 'affine_disparity')
ECHO_SCALES = ('none', 'aux', 'anchor')


@dataclass
class ModelConfig:
    """The network: which variant, backbones, and ZoeDepth head settings."""

    variant: str = 'av'  # 'av' audio-visual, 'v' visual-only, 'relative' relative depth
    # Relative models only: 'depth' (depth up to a scale, the per-image scale-invariant loss)
    # or 'affine_disparity' (disparity up to a scale and a shift, MiDaS's scale-and-shift-
    # invariant loss L_ssi with gradient matching; see training/losses.py).
    relative_output: str = 'depth'
    image_size: Tuple[int, int] = (256, 256)
    backbone: str = 'tf_efficientnet_lite3'
    backbone_weights: Optional[str] = None  # local file; nothing is downloaded
    backbone_kwargs: Dict[str, Any] = field(default_factory=dict)
    features: int = 64  # MiDaS-small decoder width
    # Normalisation inside the graph; None = what the backbone's weights expect (0.5/0.5 for
    # the tf_efficientnet_lite family, ZoeDepth's choice too).
    mean: Optional[Tuple[float, float, float]] = None
    std: Optional[Tuple[float, float, float]] = None
    echo_backbone: str = 'resnet18'
    echo_weights: Optional[str] = None
    echo_channels: int = 2
    # 'resnet': the paper's spectrogram CNN (timm ``echo_backbone``); 'tof': the time-of-flight
    # encoder (temporal convolutions along range, a range coordinate, attention pooling).
    echo_encoder: str = 'resnet'
    echo_width: int = 64  # channels of the 'tof' encoder's temporal convolutions
    echo_freq_bands: int = 32  # 'tof': frequency rows are averaged down to this many bands
    # How the echo sets the metric scale: 'none' (only through the fused bottleneck, the
    # paper), 'aux' (plus an auxiliary loss on a global echo log-scale), 'anchor' (aux, and
    # M_p is rescaled so its geometric mean is the echo's scale: the image gives structure).
    echo_scale: str = 'none'
    attention_heads: int = 8
    attention_dropout: float = 0.1
    n_bins: int = 64
    bin_embedding_dim: int = 128
    bin_centers_type: str = 'normed'
    n_attractors: Tuple[int, ...] = (16, 8, 4, 1)
    # ZoeDepth's config says alpha 1000, but its attractor layers call the attractor function
    # without alpha or gamma, so every ZoeDepth head runs with alpha 300, gamma 2 (and the
    # 'inv' attractor whatever attractor_type says). These defaults are what its layers do,
    # so ZoeDepth-trained heads behave the same here; set 1000 to get what its config states.
    attractor_alpha: float = 300.0
    attractor_gamma: int = 2
    attractor_kind: str = 'mean'
    attractor_type: str = 'inv'
    min_temp: float = 0.0212
    max_temp: float = 50.0
    min_depth: float = 1e-3
    max_depth: float = 30.0

    def __post_init__(self) -> None:
        """Reject unknown variants and sizes the network cannot take."""
        if self.echo_encoder not in ('resnet', 'tof'):
            raise ValueError(f"model.echo_encoder must be 'resnet' or 'tof', got "
                             f'{self.echo_encoder!r}')
        if self.echo_scale not in ECHO_SCALES:
            raise ValueError(f'model.echo_scale must be one of {ECHO_SCALES}, got '
                             f'{self.echo_scale!r}')
        if self.variant not in VARIANTS:
            raise ValueError(f'model.variant must be one of {VARIANTS}, got {self.variant!r}')
        if self.relative_output not in RELATIVE_OUTPUTS:
            raise ValueError(f'model.relative_output must be one of {RELATIVE_OUTPUTS}, got '
                             f'{self.relative_output!r}')
        h, w = self.image_size
        if h % 32 or w % 32 or h <= 0 or w <= 0:
            raise ValueError(f'model.image_size must be positive multiples of 32, got '
                             f'{self.image_size}')


@dataclass
class DataConfig:
    """Which datasets: ``kind`` names a builder in ``training.data``; ``args`` go to it."""

    kind: str = 'sim'
    train: Dict[str, Any] = field(default_factory=dict)
    val: Dict[str, Any] = field(default_factory=dict)
    # Named test sets for evaluation, e.g. {'in_distribution': {...}, 'zero_shot': {...}};
    # each may set its own 'kind' and 'max_depth' (the evaluation mask).
    test: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    workers: int = 0


@dataclass
class OptimConfig:
    """AdamW with ZoeDepth's parameter groups and its OneCycle schedule."""

    lr: float = 0.000161
    weight_decay: float = 0.01
    encoder_lr_factor: float = 10.0  # backbone lr = lr / 10
    decoder_lr_factor: float = 1.0  # ZoeDepth's midas_lr_factor (config value 1)
    div_factor: float = 1.0
    final_div_factor: float = 10000.0
    pct_start: float = 0.7
    three_phase: bool = False
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    clip_grad: float = 0.1


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 5
    max_steps: Optional[int] = None  # stop early (schedule still spans max_steps)
    batch_size: int = 16  # global; split across DDP ranks as ZoeDepth does
    silog_beta: float = 0.15
    # Weight of MiDaS's multi-scale gradient matching term in the scale-and-shift-invariant
    # loss (relative models with model.relative_output 'affine_disparity'; MiDaS: 0.5).
    ssi_grad_weight: float = 0.5
    # Weight of the auxiliary echo scale loss, |echo log-scale - mean log gt| per image (AV
    # models with model.echo_scale 'aux' or 'anchor').
    echo_scale_weight: float = 10.0
    amp: bool = True  # only takes effect on CUDA
    seed: int = 43
    out_dir: str = 'artifacts/train'
    log_every: int = 10
    checkpoint_every: int = 0  # steps; 0 = only at the end of each epoch
    augment: bool = True  # horizontal flip p=0.5 (image, depth, and swapped ears)
    threads: Optional[int] = None  # torch CPU threads (1 is fastest on a busy small CPU)


def _build(cls: type, values: Optional[Dict[str, Any]], where: str) -> Any:
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'unknown config key(s) in {where}: {", ".join(unknown)} '
                         f'(known: {", ".join(sorted(known))})')
    kwargs = {}
    for name, v in values.items():
        hint = hints[name]
        if is_dataclass(hint):
            kwargs[name] = _build(hint, v, f'{where}.{name}')
        elif v is not None and typing.get_origin(hint) in (tuple, typing.Union):
            kwargs[name] = tuple(v) if isinstance(v, (list, tuple)) else v
        else:
            kwargs[name] = v
    return cls(**kwargs)


def config_from_dict(values: Dict[str, Any], cls: type = TrainConfig) -> Any:
    """Build a TrainConfig (or another config dataclass) from nested dicts (as from YAML)."""
    return _build(cls, values, 'config')


def load_config(path: str, overrides: Optional[List[str]] = None,
                cls: type = TrainConfig) -> Any:
    """Load a YAML config into ``cls``; ``overrides`` are ``dotted.key=yaml_value`` strings."""
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    for item in overrides or []:
        key, sep, raw = item.partition('=')
        if not sep:
            raise ValueError(f'override {item!r} is not key=value')
        node = values
        parts = key.split('.')
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return config_from_dict(values, cls)


def config_to_dict(config: Any) -> Dict[str, Any]:
    """Return plain nested dicts (for checkpoints and logs)."""
    return asdict(config)
