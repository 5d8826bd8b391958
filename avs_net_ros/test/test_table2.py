"""training.table2 end to end on a tiny benchmark root: real checkpoints, ONNX Runtime, bags.

Two seeds of tiny V / AV models and a supervised relative model (untrained: the numbers are
not the point), a BV2-like root with train/val/test and a BV1-like test root of a few frames.
The command trains the MiDaS-style model for two steps, exports it without metadata, writes
both test sets to bags, runs avs_eval_bag on each and writes the mean ± sd over seeds, which
are checked against avs_eval_bag's own per-seed results.
"""

import csv
import json
import os

from avs_net_ros.core.contract import read_onnx_graph
from avs_net_ros.datasets.generate import generate
from avs_net_ros.eval.tables import METRICS
from avs_net_ros.sim.families import get_family
import numpy as np
import onnx
import pytest
import torch
from training import table2
from training.config import config_from_dict, config_to_dict
from training.data import echo_contract
from training.export import export_onnx, make_contract
from training.models.avs_net import build_model
import yaml

DATA = {'layout': 'bv2', 'spec_size': [16, 16], 'max_depth': 12.0, 'cache': True}
MODEL = {'backbone': 'tf_efficientnet_lite0', 'features': 16, 'echo_backbone': 'resnet10t',
         'attention_heads': 4, 'attention_dropout': 0.0, 'n_bins': 16,
         'bin_embedding_dim': 32, 'min_depth': 0.1, 'max_depth': 12.0,
         'image_size': [64, 64], 'echo_scale': 'aux'}


def _config(root):
    bv2 = os.path.join(root, 'SimBV2')
    return {'model': MODEL,
            'data': {'train': {'root': bv2, 'split': 'train', **DATA},
                     'val': {'root': bv2, 'split': 'val', **DATA},
                     'test': {'in_distribution': {'root': bv2, 'split': 'test', **DATA},
                              'zero_shot': {'root': os.path.join(root, 'SimBV1fam'),
                                            'split': 'test', 'eval_max_depth': 6.0,
                                            **DATA}}},
            'epochs': 1, 'max_steps': 2, 'batch_size': 2, 'threads': 1, 'log_every': 1}


@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    """Build a benchmark root as training.sim_benchmark leaves it; return it and a config."""
    root = str(tmp_path_factory.mktemp('bench'))
    generate(os.path.join(root, 'SimBV2'), 'bv2', {'train': 4, 'val': 2, 'test': 3}, seed=1,
             size=(40, 30), frames_per_location=2, progress=False)
    generate(os.path.join(root, 'SimBV1fam'), 'bv2', {'train': 0, 'val': 0, 'test': 3},
             seed=2, family=get_family('bv1_like'), size=(40, 30), frames_per_location=2,
             progress=False)
    values = _config(root)
    path = os.path.join(root, 'config.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(values, f)
    for seed in (1, 2):
        for variant in ('v', 'av') + (('relative',) if seed == 1 else ()):
            torch.manual_seed(seed * 10 + len(variant))
            cfg = config_from_dict({**values, 'model': {**MODEL, 'variant': variant}})
            folder = os.path.join(root, f'seed_{seed}', variant)
            os.makedirs(folder)
            torch.save({'config': config_to_dict(cfg),
                        'model': build_model(cfg.model).state_dict()},
                       os.path.join(folder, 'best.pt'))
    return root, path


def _export_here(root, out):
    """Export the checkpoints in this process (faster than the command's subprocesses).

    The files are newer than their checkpoints, so the command must keep them.
    """
    names = {'v': 'avs_v.onnx', 'av': 'avs_av.onnx'}
    for seed in (1, 2):
        for variant, name in names.items():
            state = torch.load(os.path.join(root, f'seed_{seed}', variant, 'best.pt'),
                               weights_only=False)
            cfg = config_from_dict(state['config'])
            model = build_model(cfg.model)
            model.load_state_dict(state['model'])
            echo = echo_contract(cfg) if variant == 'av' else None
            export_onnx(model, make_contract(cfg.model, echo),
                        os.path.join(out, 'models', f'seed_{seed}', name), verbose=False)


def _csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_table2_runs_every_step_and_averages_avs_eval_bag_results(bench, tmp_path, capsys):
    root, config = bench
    out = str(tmp_path / 'out')
    _export_here(root, out)
    kept = os.path.getmtime(os.path.join(out, 'models', 'seed_1', 'avs_av.onnx'))
    args = ['--root', root, '--config', config, '--out', out, '--midas-style', '--quiet',
            '--workers', '0']
    assert table2.main(args) == 0
    said = capsys.readouterr().out
    assert 'keeping' in said and 'training the MiDaS-style model' in said
    assert os.path.getmtime(os.path.join(out, 'models', 'seed_1', 'avs_av.onnx')) == kept
    # the MiDaS-style file is a third-party file: no metadata, MiDaS's tensor names
    midas = os.path.join(out, 'models', 'midas_style.onnx')
    assert not onnx.load(midas).metadata_props
    graph = read_onnx_graph(midas)
    assert list(graph.inputs) == ['input'] and list(graph.outputs) == ['output']
    # avs_eval_bag's results, per test set: every seed, both relative models, four rows
    per_seed = {}
    for name, max_depth in (('in_distribution', 12.0), ('zero_shot', 6.0)):
        res = json.load(open(os.path.join(out, 'eval', name, 'results.json')))
        assert res['max_depth'] == max_depth and res['frames_scored'] == 3
        assert res['relative_scaling'] == {
            'supervised': {'output': 'depth', 'scale_method': 'median',
                           'fed': 'model metadata'},
            'midas_style': {'output': 'affine_disparity', 'scale_method': 'scale_shift',
                            'fed': 'third-party description'}}
        assert sorted(res['table2']) == ['seed1', 'seed2']
        per_seed[name] = res
    # the summary is the mean and the sample sd over seeds of those results
    rows = _csv_rows(os.path.join(out, 'table', 'table.csv'))
    assert len(rows) == 2 * 2 * 4
    for row in rows:
        model = 'supervised' if row['method'].startswith('Supervised') else 'midas_style'
        kind = next(k for k, v in table2.ROW_LABELS.items() if row['method'].endswith(v))
        vals = [per_seed[row['test_set']]['table2'][s][model][kind]['abs_rel']
                for s in ('seed1', 'seed2')]
        assert float(row['abs_rel_mean']) == pytest.approx(np.mean(vals), abs=1e-6)
        assert float(row['abs_rel_sd']) == pytest.approx(np.std(vals, ddof=1), abs=1e-6)
        if kind in ('w/o', 'GT oracle'):  # the relative model is shared by the seeds
            assert float(row['abs_rel_sd']) == 0.0
    md = open(os.path.join(out, 'table', 'table.md')).read()
    assert 'MiDaS-style (affine-invariant disparity, trained here): scaled by GT (oracle)' in md
    assert 'mean ± sd over seeds 1, 2' in md
    # a second run reuses models and bags; a third-party --relative is fed by its description
    trained = os.path.getmtime(os.path.join(out, 'midas_style', 'best.pt'))
    assert table2.main(args + ['--relative', f'again={midas}:{table2.MIDAS_STYLE_DESCRIPTION}',
                               '--no-supervised']) == 0
    said = capsys.readouterr().out
    assert 'MiDaS-style model up to date' in said and 'keeping bag' in said
    assert os.path.getmtime(os.path.join(out, 'midas_style', 'best.pt')) == trained
    res = json.load(open(os.path.join(out, 'eval', 'zero_shot', 'results.json')))
    assert sorted(res['relatives']) == ['again', 'midas_style']
    t = res['table2']['seed1']
    assert t['again'] == t['midas_style']


def test_relative_option_and_bad_inputs(bench, tmp_path):
    assert table2.parse_relative('a=m.onnx') == ('a', 'm.onnx', None)
    assert table2.parse_relative('a=dir/m.onnx:d/x.yaml') == ('a', 'dir/m.onnx', 'd/x.yaml')
    assert table2.parse_relative('a=C:/m.onnx') == ('a', 'C:/m.onnx', None)
    with pytest.raises(Exception, match='NAME=MODEL'):
        table2.parse_relative('m.onnx')
    root, config = bench
    with pytest.raises(SystemExit, match='no such file'):
        table2.main(['--root', root, '--config', config, '--out', str(tmp_path),
                     '--no-supervised', '--relative', 'x=missing.onnx', '--quiet'])
    with pytest.raises(SystemExit, match='no seed_'):
        table2.main(['--root', str(tmp_path), '--config', config, '--out', str(tmp_path)])
    assert table2.parse_label('ss= Self-supervised (x) ') == ('ss', 'Self-supervised (x)')
    with pytest.raises(Exception, match='NAME=TEXT'):
        table2.parse_label('ss=')
    model = str(tmp_path / 'm.onnx')
    open(model, 'wb').close()
    with pytest.raises(SystemExit, match='--label other: no --relative model'):
        table2.main(['--root', root, '--config', config, '--out', str(tmp_path),
                     '--no-supervised', '--relative', f'ss={model}', '--label', 'other=X',
                     '--quiet'])


def _results(seed_values):
    """avs_eval_bag results.json of one test set: abs_rel per seed, row and model."""
    table2_ = {}
    for seed, per_model in seed_values.items():
        table2_[f'seed{seed}'] = {
            model: {row: {**{m: v for m in METRICS}, 'delta1': 1.0 - v, 'frames': 5}
                    for row, v in rows.items()}
            for model, rows in per_model.items()}
    aide = {f'seed{s}': {'supervised': [{'band': 0, 'aide_m': 0.1 * s, 'images': 5}]}
            for s in seed_values}
    return {'relatives': {'supervised': 'a.onnx', 'midas_style': 'b.onnx'},
            'table2': table2_, 'aide': aide, 'max_depth': 12.0, 'frames_scored': 5}


def test_aggregation_is_mean_and_sample_sd_per_row_and_model(tmp_path):
    """The summary's rows, gains and AIDE come from avs_eval_bag's per-seed Table 2."""
    from training.seed_summary import aggregate, write_summary

    def rows(base):
        return {'w/o': 0.9, 'Baseline': base, 'Proposed': base / 2, 'GT oracle': 0.1}

    res = _results({1: {'supervised': rows(0.4), 'midas_style': rows(0.6)},
                    2: {'supervised': rows(0.5), 'midas_style': rows(0.8)}})
    per = table2.per_seed_results({'zero_shot': res}, [1, 2])
    agg = aggregate(per)['zero_shot']
    label = table2.LABELS['midas_style']
    got = agg['metrics'][f'{label}: scaled by V (Baseline)']['abs_rel']
    assert got == pytest.approx((0.7, np.std([0.6, 0.8], ddof=1)))
    assert agg['metrics'][f'{label}: scaled by GT (oracle)']['abs_rel'] == (0.1, 0.0)
    gain = agg['gains'][f'{label}: after scaling']['delta1_gain_pct']
    # δ1 = 1 - abs_rel: Baseline 0.4 / 0.2, Proposed 0.7 / 0.6 -> +75 % and +200 %
    assert gain[2] == pytest.approx([75.0, 200.0]) and gain[0] == pytest.approx(137.5)
    assert agg['aide'][0] == pytest.approx((0.15, np.std([0.1, 0.2], ddof=1), 2))
    text = write_summary(aggregate(per), str(tmp_path))
    assert f'| {label}: scaled by AV (Proposed) | 0.350 ± 0.071 |' in text
    # --label names a model in the rows and gains; without one it reads as its name
    named = aggregate(table2.per_seed_results({'zero_shot': res}, [1, 2],
                                              {'midas_style': 'Named (x)'}))['zero_shot']
    assert 'Named (x): scaled by AV (Proposed)' in named['metrics']
    assert 'Named (x): after scaling' in named['gains']
    assert table2.row_name('other', 'Baseline') == 'other: scaled by V (Baseline)'
    # a relative model without one of the rows is an error, not a silent gap
    del res['table2']['seed2']['supervised']['GT oracle']
    with pytest.raises(SystemExit, match="seed 2, relative model supervised: no \\['GT oracle'"):
        table2.per_seed_results({'zero_shot': res}, [1, 2])
