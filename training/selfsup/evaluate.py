"""Score self-supervised checkpoints on a config's validation set, next to a flat baseline.

    python -m training.selfsup.evaluate --config training/configs/selfsup_sim.yaml \
        --checkpoint artifacts/selfsup_sim/run/best.pt [--checkpoint other.pt ...] \
        [--set data.val.root=OTHER_ROOT --set data.val.split=test ...]

Each model's depth (1 / disparity) is median-scaled to the ground truth per image (the
relative-depth oracle, ``training.evaluation``) and scored with ``avs_net_ros.core.metrics`` at
the ground truth's resolution. The flat row predicts one depth for every pixel, scaled the
same way: what a relative model that learned no structure would score. ``--set`` overrides the
config as the trainer's does, e.g. to score another set; a ``data.val.eval_max_depth`` limits
the scored ground truth below the data's ``max_depth`` (as the supervised test sets do).
"""

import argparse
from typing import Dict, List, Optional

from avs_net_ros.eval.tables import metric_rows
import torch
from torch import nn
from torch.utils.data import DataLoader

from training.data import build_dataset
from training.evaluation import evaluate
from training.selfsup.config import load_selfsup_config
from training.selfsup.export import load_disparity_net
from training.selfsup.train import DepthFromDisparity

FLAT = 'flat depth (no structure)'


class FlatDepth(nn.Module):
    """One depth for every pixel."""

    takes_echo = False

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'relative': ones like the image's first channel}."""
        return {'relative': torch.ones_like(image[:, :1])}


def score(models: Dict[str, nn.Module], dataset, max_depth: float,
          threads: int = 1) -> Dict[str, Dict[str, float]]:
    """Return {name: metrics} of relative models median-scaled to the ground truth."""
    torch.set_num_threads(threads)
    out = {}
    for name, model in models.items():
        loader = DataLoader(dataset, batch_size=1)
        res = evaluate({}, loader, max_depth, torch.device('cpu'), relative=model,
                       progress=False)
        out[name] = dict(res['metrics']['relative x GT'], frames=len(dataset) - res['skipped'])
    return out


def main(argv: Optional[List[str]] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', required=True, help='the training config (its data.val)')
    p.add_argument('--checkpoint', action='append', default=[],
                   help='best.pt of a run (repeatable)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='config override, e.g. data.val.root=OTHER_ROOT (repeatable)')
    args = p.parse_args(argv)
    config = load_selfsup_config(args.config, args.set)
    if not config.data.val:
        p.error(f'{args.config} has no data.val to score on')
    data = build_dataset(config.data.val, tuple(config.model.image_size), 'data.val')
    models: Dict[str, nn.Module] = {FLAT: FlatDepth()}
    for path in args.checkpoint:
        models[path] = DepthFromDisparity(load_disparity_net(path)[0])
    max_depth = (config.data.val.get('eval_max_depth') or getattr(data, 'max_depth', None)
                 or config.model.max_depth)
    rows = score(models, data, max_depth, args.threads)
    print(f'Relative depth median-scaled to the ground truth, {config.data.val["root"]} '
          f'{config.data.val["split"]} (0 < gt <= {max_depth:g} m):')
    print('\n'.join(metric_rows(rows, markdown=False, first='model')))


if __name__ == '__main__':
    main()
