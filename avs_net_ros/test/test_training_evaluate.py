"""Evaluation outputs: core metrics per image, Table-1 files, AIDE CSV/PNG, panels."""

import csv

from avs_net_ros.core.metrics import depth_metrics
import numpy as np
import pytest
from test_model_avs import RandomDepthSet, tiny_model_config
import torch
from torch.utils.data import DataLoader

from training.data import collate_eval
from training.evaluate import gains, write_aide, write_panels, write_tables
from training.evaluation import evaluate, predict
from training.models.avs_net import build_model


@pytest.fixture(scope='module')
def result():
    torch.manual_seed(0)
    models = {'V': build_model(tiny_model_config('v')).eval(),
              'AV': build_model(tiny_model_config('av')).eval()}
    rel = build_model(tiny_model_config('relative')).eval()
    data = RandomDepthSet(n=6)
    loader = DataLoader(data, batch_size=4, collate_fn=collate_eval)
    res = evaluate(models, loader, 12.0, torch.device('cpu'), relative=rel,
                   aide_pair=('V', 'AV'), keep=2, progress=False)
    return models, rel, data, loader, res


def test_metrics_are_the_core_metrics_averaged_per_image(result):
    models, _, data, loader, res = result
    want = []
    for batch in loader:
        pred = predict(models['AV'], batch, torch.device('cpu'))
        gt = np.where(batch['valid'][:, 0].numpy(), batch['depth'][:, 0].numpy(), 0)
        want += [depth_metrics(p, g, max_depth=12.0)['abs_rel'] for p, g in zip(pred, gt)]
    assert res['metrics']['AV']['abs_rel'] == pytest.approx(np.mean(want), rel=1e-9)
    assert set(res['metrics']) == {'V', 'AV', 'relative x V', 'relative x AV', 'relative x GT'}
    # The oracle median scale is at least as good as a network's median in AbsRel terms here.
    assert res['metrics']['relative x GT']['abs_rel'] < res['metrics']['relative x V']['abs_rel']
    assert res['skipped'] == 0 and len(res['samples']) == 2


def test_tables_aide_and_panels_are_written(result, tmp_path):
    _, _, _, _, res = result
    results = {'in_distribution': {'metrics': res['metrics'], 'max_depth': 12.0, 'count': 6,
                                   'gain_pairs': {'M_p (first stage)': ('V', 'AV')}}}
    text = write_tables(results, str(tmp_path))
    assert '| Method | AbsRel | SqRel | RMSE | RMSE log | δ1 | δ2 | δ3 |' in text
    assert 'M_p (first stage): δ1' in text
    rows = list(csv.reader(open(tmp_path / 'table.csv')))
    assert rows[0][:3] == ['test_set', 'method', 'abs_rel'] and len(rows) == 6
    write_aide(res['aide'], 'in_distribution', str(tmp_path))
    aide_rows = list(csv.reader(open(tmp_path / 'aide_in_distribution.csv')))
    assert aide_rows[0] == ['band_lo_m', 'band_hi_m', 'aide_m', 'images']
    assert [int(r[0]) for r in aide_rows[1:]] == sorted(res['aide'])
    write_panels(res['samples'], 'in_distribution', str(tmp_path), 12.0)
    for name in ('aide_in_distribution.png', 'panels_in_distribution.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_gains_sign_convention():
    m = {'V': {'delta1': 0.5, 'abs_rel': 0.4}, 'AV': {'delta1': 0.65, 'abs_rel': 0.3}}
    g = gains(m)
    assert g['delta1_gain_pct'] == pytest.approx(30.0)
    assert g['abs_rel_gain_pct'] == pytest.approx(25.0)
