"""Trainer: a step lowers the loss, resume is exact, parameter groups follow ZoeDepth."""

import os

import pytest
from test_model_avs import RandomDepthSet, tiny_model_config
import torch
from torch.utils.data import default_collate

from training.config import OptimConfig, TrainConfig
from training.datasets.augment import augment_batch
from training.train import Trainer


def tiny_train_config(tmp_path, variant='av', **kw) -> TrainConfig:
    """Return a tiny training run writing under ``tmp_path``."""
    values = {'model': tiny_model_config(variant, attention_dropout=0.1),
              'optim': OptimConfig(lr=1e-3), 'epochs': 2, 'batch_size': 4,
              'out_dir': str(tmp_path), 'log_every': 1}
    values.update(kw)
    return TrainConfig(**values)


def _batch(data, n=4):
    return default_collate([data[i] for i in range(n)])


@pytest.mark.parametrize('variant', ['av', 'v', 'relative'])
def test_training_steps_decrease_loss_on_a_fixed_batch(tmp_path, variant):
    data = RandomDepthSet(n=4)
    # 50 epochs of one batch: the OneCycle schedule stays flat over the steps taken here.
    trainer = Trainer(tiny_train_config(tmp_path, variant, augment=False, epochs=50), data,
                      progress=False)
    batch = _batch(data)
    losses = [trainer.train_step(batch) for _ in range(12)]
    # The scale-invariant loss only has the per-pixel noise of this data left to fit.
    factor = 0.99 if variant == 'relative' else 0.8
    assert sum(losses[-3:]) / 3 < factor * losses[0], losses


def test_resume_gives_the_same_next_step_loss(tmp_path):
    data = RandomDepthSet(n=8)
    batch = _batch(data)
    cfg = tiny_train_config(tmp_path)
    a = Trainer(cfg, data, progress=False)
    for _ in range(3):
        a.train_step(batch)
    path = os.path.join(str(tmp_path), 'ckpt.pt')
    a.save_checkpoint(path)
    want = [a.train_step(batch) for _ in range(2)]
    b = Trainer(cfg, data, progress=False)
    b.load_checkpoint(path)
    assert b.step == 3
    got = [b.train_step(batch) for _ in range(2)]
    assert got == want
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_fit_resumes_mid_run_to_the_same_weights(tmp_path):
    data = RandomDepthSet(n=8)
    full = Trainer(tiny_train_config(tmp_path / 'full', 'v'), data, progress=False)
    full.fit()
    assert full.step == full.total_steps == 4
    part_cfg = tiny_train_config(tmp_path / 'part', 'v', checkpoint_every=1)
    part = Trainer(part_cfg, data, progress=False)
    part.train_step(next(iter(part.loader)))  # step 0 of epoch 0, then "crash"
    part.save_checkpoint(str(tmp_path / 'part' / 'last.pt'))
    resumed = Trainer(part_cfg, data, progress=False)
    resumed.load_checkpoint(str(tmp_path / 'part' / 'last.pt'))
    resumed.fit()
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)
    assert os.path.isdir(tmp_path / 'full' / 'tb') and os.listdir(tmp_path / 'full' / 'tb')


def test_parameter_groups_follow_zoedepth(tmp_path):
    trainer = Trainer(tiny_train_config(tmp_path), RandomDepthSet(n=4), progress=False)
    groups = {g['name']: g for g in trainer.optimizer.param_groups}
    assert groups['encoder']['lr'] == pytest.approx(1e-4)  # lr / encoder_lr_factor 10
    assert groups['decoder']['lr'] == pytest.approx(1e-3)
    assert groups['head']['lr'] == pytest.approx(1e-3)
    head_ids = {id(p) for p in groups['head']['params']}
    model = trainer.model
    assert all(id(p) in head_ids for p in model.echo_encoder.parameters())
    assert all(id(p) in head_ids for p in model.fusion.parameters())
    # OneCycle with div_factor 1: flat for 70 % of the steps, then annealed to lr / 1e4.
    assert trainer.optimizer.param_groups[0]['betas'][0] == pytest.approx(0.95)


def test_flip_swaps_the_ears():
    data = RandomDepthSet(n=4)
    batch = _batch(data)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(batch, gen)
    flipped = [i for i in range(4) if torch.equal(out['depth'][i], batch['depth'][i].flip(-1))]
    assert flipped, 'seed 0 flips at least one of four samples'
    for i in flipped:
        assert torch.equal(out['echo_spec'][i], batch['echo_spec'][i].flip(0))
