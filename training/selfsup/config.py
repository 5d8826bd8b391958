"""Configuration of the self-supervised trainer (dataclasses from YAML, as ``training.config``).

Defaults are Monodepth2's (nianticlabs/monodepth2, ``options.py``) unless a comment says
otherwise; the top-level keys are those of the supervised ``TrainConfig`` so that the same
trainer loop, checkpoints and logs serve both.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from training.config import DataConfig, load_config, OptimConfig


@dataclass
class SelfSupModelConfig:
    """The disparity and pose networks."""

    image_size: Tuple[int, int] = (192, 640)  # (H, W), multiples of 32
    backbone: str = 'resnet18'  # timm encoder of the disparity network
    backbone_weights: Optional[str] = None  # local ImageNet weights; nothing is downloaded
    backbone_kwargs: Dict[str, Any] = field(default_factory=dict)
    features: int = 64  # MiDaS-small decoder width
    mean: Optional[Tuple[float, float, float]] = None  # None: what the backbone expects
    std: Optional[Tuple[float, float, float]] = None
    pose_backbone: str = 'resnet18'  # timm encoder of the pose network (6 input channels)
    pose_backbone_weights: Optional[str] = None
    pose_features: int = 256  # width of the pose decoder
    # The pose decoder's output is multiplied by this (Monodepth2: 0.01). It sets the initial
    # motion against the initial depth (sigmoid 0.5 ~ 2 x min_depth): when the first
    # translations are far smaller than depth / (depth-to-baseline ratio of the data), the
    # disparity runs into the sigmoid's upper end and loses its structure.
    pose_scale: float = 0.01
    scales: int = 4  # disparity scales (strides 1, 2, 4, 8)
    min_depth: float = 0.1  # the disparity range: sigmoid -> [1 / max_depth, 1 / min_depth]
    max_depth: float = 100.0

    @property
    def variant(self) -> str:
        """Name of the model kind (the trainer's progress bar and checks)."""
        return 'selfsup'

    def __post_init__(self) -> None:
        """Reject sizes and ranges the networks cannot take."""
        h, w = self.image_size
        if h % 32 or w % 32 or h <= 0 or w <= 0:
            raise ValueError(f'model.image_size must be positive multiples of 32, got '
                             f'{self.image_size}')
        if not 1 <= self.scales <= 4:
            raise ValueError(f'model.scales must be 1 to 4, got {self.scales}')
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError(f'need 0 < model.min_depth < model.max_depth, got '
                             f'{self.min_depth}, {self.max_depth}')


@dataclass
class LossConfig:
    """Monodepth2's loss settings."""

    ssim_weight: float = 0.85  # photometric error = 0.85 SSIM distance + 0.15 L1
    smoothness_weight: float = 1e-3  # edge-aware smoothness, divided by 2**scale
    automask: bool = True  # auto-mask pixels the unwarped source explains better
    min_reprojection: bool = True  # per-pixel minimum over sources (False: the mean)
    # Warp with depth divided by its per-image mean (not in Monodepth2; training.selfsup.losses)
    normalise_depth: bool = False


@dataclass
class SelfSupConfig:
    """One self-supervised training run (keys as ``training.config.TrainConfig``)."""

    model: SelfSupModelConfig = field(default_factory=SelfSupModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    epochs: int = 20
    max_steps: Optional[int] = None
    batch_size: int = 12
    amp: bool = False  # bf16 autocast on CUDA (Monodepth2 trains in fp32)
    seed: int = 43
    out_dir: str = 'artifacts/selfsup'
    log_every: int = 10
    checkpoint_every: int = 0
    augment: bool = True  # flip p=0.5 (principal point mirrored), jitter alike on all frames
    threads: Optional[int] = None


def load_selfsup_config(path: str, overrides: Optional[List[str]] = None) -> SelfSupConfig:
    """Load a YAML config; ``overrides`` are ``dotted.key=yaml_value`` strings."""
    return load_config(path, overrides, SelfSupConfig)
