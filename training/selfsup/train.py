"""Train a relative-depth model self-supervised on frame triplets (Monodepth2-style).

    python -m training.selfsup.train --config training/configs/selfsup_sim.yaml [--set k=v]
    torchrun --nproc_per_node=N -m training.selfsup.train --config ...   # DDP

The loop, checkpoints (``<out_dir>/last.pt`` resumed exactly with ``--resume``, ``best.pt``
at the lowest validation AbsRel), TensorBoard logs (``<out_dir>/tb``), optimiser (AdamW with
the OneCycle schedule) and torchrun/DDP handling are the supervised trainer's
(``training.train.Trainer``); this module supplies the networks (``training.models.monodepth``)
and the loss (``training.selfsup.losses``). Training samples are frame triplets with the
camera intrinsics of their location (``training.data``: ``triplets: true``); validation
scores the depth (1 / disparity) median-scaled to the ground truth, as relative models are.
"""

from typing import Dict, Mapping, Optional

import torch
from torch import nn

from training.evaluation import evaluate, unwrap
from training.models.monodepth import SelfSupervisedNet
from training.selfsup.config import load_selfsup_config, SelfSupConfig
from training.selfsup.geometry import intrinsics_matrix, pose_matrix
from training.selfsup.losses import SelfSupervisedLoss
from training.train import run, Trainer

#: Keys a training batch must hold.
TRIPLET_KEYS = ('image', 'image_prev', 'image_next', 'intrinsics')


class DepthFromDisparity(nn.Module):
    """The disparity network seen as a relative-depth model (1 / disparity), for scoring."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.takes_echo = False

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'relative': depth up to scale}."""
        return {'relative': 1.0 / self.net(image)['relative']}


class SelfSupervisedTrainer(Trainer):
    """The supervised trainer's loop around the disparity + pose networks and their loss."""

    config: SelfSupConfig

    def __init__(self, config: SelfSupConfig, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        c, m = config.loss, config.model
        self.criterion = SelfSupervisedLoss(m.min_depth, m.max_depth, c.ssim_weight,
                                            c.smoothness_weight, c.automask,
                                            c.min_reprojection, c.normalise_depth)

    def build_model(self) -> nn.Module:
        """Build the disparity and pose networks (one module, for DDP)."""
        return SelfSupervisedNet(self.config.model)

    def parameter_groups(self, model: nn.Module) -> list:
        """One group at the configured lr (Monodepth2 trains both networks alike)."""
        return [{'params': [p for p in model.parameters() if p.requires_grad],
                 'lr': self.config.optim.lr, 'name': 'all'}]

    def terms(self, batch: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Return the loss and its terms for a triplet batch (see ``SelfSupervisedLoss``).

        Raises:
            KeyError: the batch is not a triplet batch (names the missing keys).

        """
        missing = [k for k in TRIPLET_KEYS if k not in batch]
        if missing:
            raise KeyError(f'self-supervised training needs frame triplets; the batch lacks '
                           f'{missing} (set triplets: true in data.train)')
        x = {k: batch[k].to(self.device, non_blocking=True) for k in TRIPLET_KEYS}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(x['image'], x['image_prev'], x['image_next'])
        h, w = x['image'].shape[-2:]
        k = intrinsics_matrix(x['intrinsics'].float(), h, w)
        poses = [pose_matrix(*[p.float() for p in out['pose_prev']], invert=True),
                 pose_matrix(*[p.float() for p in out['pose_next']])]
        return self.criterion(x['image'], [x['image_prev'], x['image_next']], poses,
                              [s.float() for s in out['sigmoid']], k)

    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Compute the self-supervised loss; its terms go to ``self.scalars``."""
        t = self.terms(batch)
        self.scalars = {k: float(v.detach()) for k, v in t.items() if k != 'loss'}
        return t['loss']

    def validate(self) -> Dict[str, float]:
        """Return AbsRel etc. of 1 / disparity median-scaled to the validation ground truth."""
        from torch.utils.data import DataLoader

        loader = DataLoader(self.val_set, batch_size=1, num_workers=self.config.data.workers)
        rel = DepthFromDisparity(unwrap(self.model).depth)
        max_depth = getattr(self.val_set, 'max_depth', None) or self.config.model.max_depth
        res = evaluate({}, loader, max_depth, self.device, relative=rel, progress=False)
        return res['metrics']['relative x GT']


def main(argv: Optional[list] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    run(argv, __doc__.split('\n\n')[0], load_selfsup_config, SelfSupervisedTrainer)


if __name__ == '__main__':
    main()
