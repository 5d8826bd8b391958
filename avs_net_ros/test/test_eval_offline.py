"""Offline evaluation and reports: known answers, agreement with the core, the CLI tools.

The models are test/model_builders' tiny contract-following ONNX networks run by real ONNX
Runtime; the scores come from the core metrics, so these tests check the plumbing (pairing,
resolutions, rows, averaging, files), and known-answer bags pin the numbers.
"""

import json
import os

from avs_net_ros.core.metrics import aide_per_band, depth_metrics
from avs_net_ros.eval.bagio import BagWriter
from avs_net_ros.eval.offline import EvalConfig, evaluate_bag, Variant
from avs_net_ros.eval.recorded import score_recorded
from avs_net_ros.eval.report import write_report
from avs_net_ros.eval.scoring import (ROW_BASELINE, ROW_MP_AV, ROW_MP_V, ROW_PROPOSED, ROW_RAW,
                                      TABLE2_ROWS)
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from avs_net_ros.tools import eval_bag, write_bag
import numpy as np
import pytest

INFO = {'sample_rate': 44100, 'channels': 2, 'window_samples': 1600, 'lead_in_samples': 0,
        'speed_of_sound': 340.0, 'max_range': 6.0, 'chirp': {}, 'alignment': {},
        'backend': 'test'}
CPU = ('CPUExecutionProvider',)


def _inputs(n, seed=0, h=30, w=40):
    rng = np.random.default_rng(seed)
    return [(1_000_000_000 + i * 100_000_000,
             rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
             (0.1 * rng.standard_normal((2, 1600))).astype(np.float32)) for i in range(n)]


def _gt_bag(path, inputs, gt_of, storage='mcap', gt_shape=None):
    with BagWriter(path, storage) as w:
        w.set_echo_info(INFO)
        for stamp, rgb, echo in inputs:
            gt = gt_of(rgb, echo)
            w.write_frame(stamp, rgb, echo, gt)
    return path


@pytest.mark.parametrize('s', [1.0, 0.7, 1.1])
def test_recorded_predictions_with_known_scale_error(tmp_path, s):
    """Predictions = s x ground truth give AbsRel |s - 1| exactly; s = 1 gives delta1 = 1."""
    rng = np.random.default_rng(1)
    path = str(tmp_path / 'bag')
    with BagWriter(path) as w:
        for i in range(4):
            gt = rng.uniform(0.5, 9.0, (20, 30)).astype(np.float32)
            gt[:2] = np.nan
            w.write_frame(10 + i, None, None, gt, predictions={'metric': gt * np.float32(s)})
    res = score_recorded(path, ['metric'], max_depth=12.0, progress=False)
    m = res.recorded['metric']
    assert m['frames'] == 4
    assert m['abs_rel'] == pytest.approx(abs(s - 1), abs=1e-6)
    if s == 1.0:
        assert m['delta1'] == 1.0 and m['rmse'] == 0.0
        out = str(tmp_path / 'report')
        assert eval_bag.main([path, '--recorded', 'metric', '--out', out, '--quiet']) == 0
        assert '| metric | 0.000 |' in open(os.path.join(out, 'report.md')).read()
    else:  # every pixel is off by the ratio s: inside 1.25 or not
        assert m['delta1'] == (1.0 if max(s, 1 / s) < 1.25 else 0.0)


def test_perfect_av_bag_scores_zero_and_rows_match_the_core(tmp_path, model_set):
    """Ground truth = the AV model's own M_p: M_p (AV) is perfect; rows equal infer + core."""
    av = MetricDepthPipeline(model_set['av'], providers=CPU)
    av_rel = MetricDepthPipeline(model_set['av'], model_set['relative_disparity'],
                                 providers=CPU)
    v_rel = MetricDepthPipeline(model_set['v'], model_set['relative_disparity'], providers=CPU)
    inputs = _inputs(5)
    path = _gt_bag(str(tmp_path / 'bag'), inputs,
                   lambda rgb, echo: av.pseudo_dense(rgb, echo, 44100))
    res = evaluate_bag(path, [Variant('tiny', model_set['av'], model_set['v'])],
                       {'disp': model_set['relative_disparity']},
                       config=EvalConfig(providers=CPU, progress=False, panel_frames=(1,)))
    t1 = res.table1['tiny']
    assert t1[ROW_MP_AV]['abs_rel'] == 0.0 and t1[ROW_MP_AV]['delta1'] == 1.0
    assert res.frames_scored == 5 and res.bag.pairing.failures == 0
    # The same numbers, computed directly with the pipeline and the core metrics.
    want = {k: [] for k in (ROW_MP_V, ROW_RAW, ROW_BASELINE, ROW_PROPOSED)}
    aide = {}
    for _, rgb, echo in inputs:
        gt = av.pseudo_dense(rgb, echo, 44100)
        res_v, res_av = v_rel.infer(rgb), av_rel.infer(rgb, echo, 44100)
        mp_v, r, base, prop = res_v.pseudo_dense, res_av.relative, res_v.metric, res_av.metric
        for row, pred in ((ROW_MP_V, mp_v), (ROW_RAW, r), (ROW_BASELINE, base),
                          (ROW_PROPOSED, prop)):
            want[row].append(depth_metrics(pred, gt, max_depth=12.0)['abs_rel'])
        for k, val in aide_per_band(base, prop, gt, max_depth=12.0).items():
            aide.setdefault(k, []).append(val)
    assert t1[ROW_MP_V]['abs_rel'] == pytest.approx(np.mean(want[ROW_MP_V]), rel=1e-9)
    t2 = res.table2['tiny']['disp']
    for row in (ROW_RAW, ROW_BASELINE, ROW_PROPOSED):
        assert t2[row]['abs_rel'] == pytest.approx(np.mean(want[row]), rel=1e-9)
        assert t2[row]['frames'] == 5
    got = {e['band']: (e['aide_m'], e['images']) for e in res.aide['tiny']['disp']}
    assert got == {k: (pytest.approx(np.mean(v)), len(v)) for k, v in aide.items()}
    files = write_report(res, str(tmp_path / 'report'))
    md = open(files['markdown']).read()
    for text in ('Table 1', 'Table 2: relative model `disp`', '| w/o |', '| Baseline |',
                 '| Proposed |', 'AIDE_k'):
        assert text in md
    with open(files['json']) as f:
        assert json.load(f)['table2']['tiny']['disp'][ROW_PROPOSED]['frames'] == 5
    assert open(files['aide_png'], 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    assert len(files['panels']) == 1


def test_worker_processes_give_the_same_tables_as_one_process(tmp_path, model_set):
    """Worker processes and ONNX Runtime threads change the speed, never a figure."""
    inputs = _inputs(7, seed=3)
    rng = np.random.default_rng(4)
    path = _gt_bag(str(tmp_path / 'bag'), inputs,
                   lambda rgb, echo: rng.uniform(0.5, 8.0, rgb.shape[:2]).astype(np.float32))
    runs = []
    for workers, threads in ((0, 0), (3, 1)):
        res = evaluate_bag(path, [Variant('avs', model_set['av'], model_set['v'])],
                           {'rel': model_set['relative'], 'disp': model_set['relative_disparity']},
                           config=EvalConfig(providers=CPU, progress=False, workers=workers,
                                             intra_op_threads=threads))
        assert res.timing['workers'] == workers and res.frames_scored == 7
        assert (res.timing['worker_startup_s'] > 0) == (workers > 1)
        runs.append(res.to_dict())
    for key in ('table1', 'table2', 'aide', 'per_frame'):
        assert runs[0][key] == runs[1][key], key


def test_known_scale_error_in_the_offline_path(tmp_path, model_set):
    """Ground truth = M_p / s makes M_p (AV) AbsRel |s - 1| (within the depth range)."""
    av = MetricDepthPipeline(model_set['av'], providers=CPU)
    s = 1.1
    path = _gt_bag(str(tmp_path / 'bag'), _inputs(3, seed=2),
                   lambda rgb, echo: av.pseudo_dense(rgb, echo, 44100) / np.float32(s),
                   storage='sqlite3')
    res = evaluate_bag(path, [Variant('av_only', model_set['av'])], {},
                       config=EvalConfig(providers=CPU, progress=False))
    assert res.table1['av_only'][ROW_MP_AV]['abs_rel'] == pytest.approx(s - 1, rel=1e-5)
    assert ROW_MP_V not in res.table1['av_only']


def test_bad_frames_are_counted_not_fatal(tmp_path, model_set):
    """A silent echo is rejected by the pipeline: counted in the report, the rest scored."""
    inputs = _inputs(3, seed=4)
    inputs[1] = (inputs[1][0], inputs[1][1], np.zeros((2, 1600), np.float32))
    path = _gt_bag(str(tmp_path / 'bag'), inputs,
                   lambda rgb, echo: np.full(rgb.shape[:2], 2.0, np.float32))
    res = evaluate_bag(path, [Variant('x', model_set['av'])], {},
                       config=EvalConfig(providers=CPU, progress=False))
    assert res.frames_scored == 2 and sum(res.rejected.values()) == 1
    assert 'all-zero channel' in next(iter(res.rejected))


def test_wrong_model_kind_is_refused(model_set):
    """A V model given as the AV model of a variant is named in the error."""
    with pytest.raises(Exception, match='expected avs_av'):
        evaluate_bag('unused', [Variant('x', model_set['v'])], {},
                     config=EvalConfig(providers=CPU))


def test_simulated_bag_end_to_end_with_the_command_line_tools(tmp_path, model_set, capsys):
    """avs_write_bag sim -> avs_eval_bag writes every report file; bad input exits 2."""
    bag = str(tmp_path / 'sim')
    assert write_bag.main(['sim', bag, '--frames', '4', '--size', '48x36', '--max-depth', '6',
                           '--quiet']) == 0
    out = str(tmp_path / 'report')
    rc = eval_bag.main([bag, '--av', model_set['av'], '--v', model_set['v'], '--relative',
                        f'rel={model_set["relative"]}', '--out', out, '--panels', '2',
                        '--quiet'])
    assert rc == 0
    for name in ('report.md', 'results.json', 'table1.csv', 'table2.csv', 'aide.csv',
                 'per_frame.csv', 'aide.png'):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert sorted(os.listdir(os.path.join(out, 'panels'))) == ['frame_00000.png',
                                                               'frame_00003.png']
    with open(os.path.join(out, 'results.json')) as f:
        res = json.load(f)
    assert res['frames_scored'] == 4
    assert set(res['table2']['avs']['rel']) == set(TABLE2_ROWS)
    assert res['bag']['echo_info']['window_samples'] == 1556
    capsys.readouterr()
    assert eval_bag.main([bag, '--av', model_set['av'], '--gt-topic', '/nope', '--quiet']) == 2
    assert '/nope (ground_truth)' in capsys.readouterr().err
    assert eval_bag.main([bag, '--quiet']) == 2
    assert 'give an AVS-Net model' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        eval_bag.main(['--help'])
    assert e.value.code == 0


def test_truncated_bag_is_scored_up_to_the_damage(tmp_path, model_set, capsys):
    """The CLI warns about the damage and scores the frames read before it."""
    av = MetricDepthPipeline(model_set['av'], providers=CPU)
    path = _gt_bag(str(tmp_path / 'bag'), _inputs(8, seed=5),
                   lambda rgb, echo: av.pseudo_dense(rgb, echo, 44100))
    (mcap,) = [f for f in os.listdir(path) if f.endswith('.mcap')]
    full = os.path.join(path, mcap)
    with open(full, 'r+b') as f:
        f.truncate(int(os.path.getsize(full) * 0.5))
    rc = eval_bag.main([path, '--av', model_set['av'], '--out', str(tmp_path / 'r'),
                        '--quiet'])
    assert rc == 0
    assert 'Salvaged' in capsys.readouterr().err
    with open(tmp_path / 'r' / 'results.json') as f:
        res = json.load(f)
    assert 1 <= res['frames_scored'] < 8
    assert res['table1']['avs'][ROW_MP_AV]['abs_rel'] == 0.0
    assert 'damaged' in open(tmp_path / 'r' / 'report.md').read()


def test_default_workers_are_one_per_cpu_on_cpu_and_none_with_a_gpu(monkeypatch):
    """Each worker would open its own GPU context: with a usable GPU provider, none."""
    from avs_net_ros.eval.offline import default_workers
    from avs_net_ros.runtime import session

    assert default_workers(('cpu',)) == min(8, os.cpu_count() or 1)
    monkeypatch.setattr(session.ort, 'get_available_providers',
                        lambda: ['CUDAExecutionProvider', 'CPUExecutionProvider'])
    assert default_workers(('cuda', 'cpu')) == 0
    assert default_workers(('cpu',)) == min(8, os.cpu_count() or 1)
