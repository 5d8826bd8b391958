"""The DistributedDataParallel path, as torchrun would run it: 2 CPU processes over gloo."""

import os
import socket

import pytest
from test_model_avs import RandomDepthSet
from test_training_trainer import tiny_train_config
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.train import setup_distributed, Trainer


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    # The variables torchrun sets; setup_distributed reads them.
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = setup_distributed('cpu')
    cfg = tiny_train_config(out_dir, 'av', batch_size=4, epochs=2)
    trainer = Trainer(cfg, RandomDepthSet(n=8), device='cpu', dist_info=info, progress=False)
    trainer.fit()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    torch.save({'params': flat, 'step': trainer.step, 'local_batch': trainer.local_batch,
                'world': dist.get_world_size()}, os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_cpu_processes_stay_in_sync(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    assert r0['world'] == r1['world'] == 2
    assert r0['local_batch'] == 2  # the global batch of 4 is split across the two ranks
    assert r0['step'] == r1['step'] == 4  # 8 samples / 4 per step x 2 epochs
    assert torch.equal(r0['params'], r1['params'])
    # Rank 0 alone writes the checkpoint, which holds the unwrapped model.
    state = torch.load(tmp_path / 'last.pt', weights_only=False)
    assert not any(k.startswith('module.') for k in state['model'])
    assert state['step'] == 4
