"""Train AVS-Net (AV or V) or the relative-depth model.

    python -m training.train --config training/configs/<x>.yaml [--set key=value ...]
    torchrun --nproc_per_node=N -m training.train --config ...      # DistributedDataParallel

Single process on CPU or CUDA when launched plainly; DDP (NCCL on CUDA, gloo on CPU) when the
torchrun environment (WORLD_SIZE > 1) is present. Loss: SILog (beta 0.15) for AV/V, the
per-image scale-invariant loss for the relative model, or MiDaS's scale-and-shift-invariant
loss on disparity when ``model.relative_output`` is 'affine_disparity'. AdamW with ZoeDepth's
parameter groups and OneCycle schedule, gradient-norm clipping, bf16 autocast on CUDA,
TensorBoard logs under ``<out_dir>/tb``, checkpoints ``<out_dir>/last.pt`` (resumed exactly:
model, optimiser, schedule, step, data order and RNG states) and ``<out_dir>/best.pt`` (lowest
val AbsRel).
"""

import argparse
from dataclasses import dataclass
import math
import os
import random
from typing import Dict, Iterator, Mapping, Optional

import numpy as np
import torch
from torch import nn
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from training.config import config_to_dict, load_config, TrainConfig
from training.datasets.augment import augment_batch
from training.evaluation import evaluate, forward_batch, unwrap
from training.losses import echo_scale_loss, scale_invariant_loss, silog_loss, ssi_loss
from training.models.avs_net import build_model, parameter_groups


@dataclass
class DistInfo:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes checkpoints."""
        return self.rank == 0


def setup_distributed(device: Optional[str] = None) -> DistInfo:
    """Join the torchrun process group if the environment describes one (WORLD_SIZE > 1)."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ['RANK']), world, int(os.environ.get('LOCAL_RANK', '0')))
    use_cuda = torch.cuda.is_available() and device != 'cpu'
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if use_cuda else 'gloo', rank=info.rank,
                                world_size=world)
    return info


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {'python': random.getstate(), 'numpy': np.random.get_state(),
             'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _ResumableSampler(Sampler):
    """DistributedSampler order for an epoch (seeded), starting after ``skip`` batches."""

    def __init__(self, dataset: Dataset, info: DistInfo, seed: int, batch_size: int) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                        shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip_batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip:])

    def __len__(self) -> int:
        return len(self.inner) - self.skip


class Trainer:
    """One training run: model, optimiser, schedule, data order, checkpoints, logs."""

    def __init__(self, config: TrainConfig, train_set: Dataset,
                 val_set: Optional[Dataset] = None, device: Optional[str] = None,
                 dist_info: Optional[DistInfo] = None, progress: bool = True) -> None:
        self.config = config
        self.info = dist_info or DistInfo()
        if device is None:
            device = f'cuda:{self.info.local_rank}' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        self.progress = progress and self.info.is_main
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        model = self.build_model().to(self.device)
        self.variant = config.model.variant
        if self.info.world_size > 1:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            model = DistributedDataParallel(model, device_ids=ids)
        self.model: nn.Module = model
        o = config.optim
        groups = self.parameter_groups(model)
        self.optimizer = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
        if config.batch_size % self.info.world_size:
            raise ValueError(f'batch_size {config.batch_size} is not divisible by the '
                             f'{self.info.world_size} processes')
        self.local_batch = config.batch_size // self.info.world_size
        self.sampler = _ResumableSampler(train_set, self.info, config.seed, self.local_batch)
        self.loader = DataLoader(train_set, batch_size=self.local_batch, sampler=self.sampler,
                                 num_workers=config.data.workers, drop_last=True,
                                 pin_memory=self.device.type == 'cuda',
                                 persistent_workers=False)
        self.steps_per_epoch = len(self.sampler) // self.local_batch
        if self.steps_per_epoch == 0:
            raise ValueError(f'training set of {len(train_set)} samples gives no batch of '
                             f'{config.batch_size}')
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=[g['lr'] for g in groups], total_steps=self.total_steps,
            pct_start=o.pct_start, div_factor=o.div_factor,
            final_div_factor=o.final_div_factor, three_phase=o.three_phase,
            cycle_momentum=o.cycle_momentum, base_momentum=o.base_momentum,
            max_momentum=o.max_momentum)
        self.amp = config.amp and self.device.type == 'cuda'
        self.val_set = val_set
        self.step = 0
        self.best = math.inf
        #: Extra scalars of the last step (a loss's terms), logged under train/ with the loss.
        self.scalars: Dict[str, float] = {}
        if self.info.is_main and config.out_dir:
            os.makedirs(config.out_dir, exist_ok=True)

    # -- what a subclass trains (training.selfsup.train) ------------------------------------
    def build_model(self) -> nn.Module:
        """Build the network this run optimises."""
        return build_model(self.config.model)

    def parameter_groups(self, model: nn.Module) -> list:
        """Return the optimiser's parameter groups (ZoeDepth's: backbone, decoder, head)."""
        o = self.config.optim
        return parameter_groups(model, o.lr, o.encoder_lr_factor, o.decoder_lr_factor)

    # -- one step -------------------------------------------------------------------------
    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Forward the batch and return the variant's loss."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = forward_batch(self.model, batch, self.device)
        depth = batch['depth'].to(self.device)
        m = self.config.model
        valid = batch['valid'].to(self.device) & (depth > m.min_depth) & (depth <= m.max_depth)
        if self.variant == 'relative':
            if m.relative_output == 'affine_disparity':
                return ssi_loss(out['relative'], depth, valid, self.config.ssi_grad_weight)
            return scale_invariant_loss(out['relative'], depth, valid)
        loss = silog_loss(out['depth'], depth, valid, self.config.silog_beta)
        if 'echo_log_scale' in out and self.config.echo_scale_weight > 0:
            loss = loss + self.config.echo_scale_weight * echo_scale_loss(
                out['echo_log_scale'], depth, valid)
        return loss

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> float:
        """Take one optimiser step on ``batch``; return the loss before the step."""
        self.model.train()
        if self.config.augment:
            gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step
                                                + 7919 * self.info.rank)
            batch = augment_batch(batch, gen)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f'loss is {loss.item()} at step {self.step}')
        loss.backward()
        if self.config.optim.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_grad)
        self.optimizer.step()
        if self.step < self.total_steps - 1:
            self.scheduler.step()
        self.step += 1
        return float(loss.detach())

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume exactly."""
        return {'config': config_to_dict(self.config), 'model': unwrap(self.model).state_dict(),
                'optimizer': self.optimizer.state_dict(),
                'scheduler': self.scheduler.state_dict(), 'step': self.step,
                'best': self.best, 'rng': _rng_state()}

    def save_checkpoint(self, path: str) -> None:
        """Write a checkpoint (main process only; atomic rename)."""
        if not self.info.is_main:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + '.tmp'
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path: str) -> None:
        """Restore a checkpoint written by ``save_checkpoint``."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        unwrap(self.model).load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.step = state['step']
        self.best = state['best']
        _set_rng_state(state['rng'])

    # -- loop -----------------------------------------------------------------------------
    def fit(self) -> Dict[str, float]:
        """Train until ``total_steps``; return the last validation metrics (if any)."""
        writer = None
        if self.info.is_main and self.config.out_dir:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(os.path.join(self.config.out_dir, 'tb'))
        last = os.path.join(self.config.out_dir, 'last.pt')
        metrics: Dict[str, float] = {}
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f'train {self.variant}',
                   disable=not self.progress, dynamic_ncols=True)
        while self.step < self.total_steps:
            epoch, done = divmod(self.step, self.steps_per_epoch)
            self.sampler.set_epoch(epoch, done)
            for batch in self.loader:
                loss = self.train_step(batch)
                bar.update(1)
                bar.set_postfix(loss=f'{loss:.3f}')
                if writer and self.step % self.config.log_every == 0:
                    writer.add_scalar('train/loss', loss, self.step)
                    for k, v in self.scalars.items():
                        writer.add_scalar(f'train/{k}', v, self.step)
                    for g in self.optimizer.param_groups:
                        writer.add_scalar(f'lr/{g.get("name", "group")}', g['lr'], self.step)
                every = self.config.checkpoint_every
                if every and self.step % every == 0:
                    self.save_checkpoint(last)
                if self.step >= self.total_steps:
                    break
            if self.val_set is not None and self.info.is_main:
                metrics = self.validate()
                if writer:
                    for k, v in metrics.items():
                        writer.add_scalar(f'val/{k}', v, self.step)
                if metrics['abs_rel'] < self.best:
                    self.best = metrics['abs_rel']
                    self.save_checkpoint(os.path.join(self.config.out_dir, 'best.pt'))
            self.save_checkpoint(last)
        bar.close()
        if writer:
            writer.close()
        if self.info.world_size > 1:
            dist.barrier()
        return metrics

    def validate(self) -> Dict[str, float]:
        """Return AbsRel etc. on the validation set (relative models: fitted to the GT)."""
        loader = DataLoader(self.val_set, batch_size=1, num_workers=self.config.data.workers)
        model = unwrap(self.model)
        if self.variant == 'relative':
            res = evaluate({}, loader, self.config.model.max_depth, self.device,
                           relative=model, progress=False)
            return res['metrics']['relative x GT']
        res = evaluate({'model': model}, loader, self.config.model.max_depth, self.device,
                       progress=False)
        return res['metrics']['model']


def run(argv: Optional[list], description: str, load=load_config, trainer_cls=None) -> None:
    """Parse the command line, build the data and the trainer, resume if asked, train.

    ``load(path, overrides)`` reads the config; ``trainer_cls`` defaults to ``Trainer``.
    """
    from training.data import build_datasets

    p = argparse.ArgumentParser(description=description)
    p.add_argument('--config', required=True, help='YAML config')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='override a config key, e.g. model.variant=v')
    p.add_argument('--resume', action='store_true', help='continue from <out_dir>/last.pt')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: best)')
    args = p.parse_args(argv)
    config = load(args.config, args.set)
    info = setup_distributed(args.device)
    train_set, val_set = build_datasets(config)
    trainer = (trainer_cls or Trainer)(config, train_set, val_set, args.device, info)
    last = os.path.join(config.out_dir, 'last.pt')
    if args.resume and os.path.isfile(last):
        trainer.load_checkpoint(last)
    metrics = trainer.fit()
    if info.is_main and metrics:
        print(' '.join(f'{k}={v:.4f}' for k, v in metrics.items()))
    if info.world_size > 1:
        dist.destroy_process_group()


def main(argv: Optional[list] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    run(argv, __doc__.split('\n\n')[0])


if __name__ == '__main__':
    main()
