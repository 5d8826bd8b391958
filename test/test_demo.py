"""The demo's graph-and-scoring path end to end on the tiny contract-following models.

The real node graph (avs_bringup use_sim:=true use_emitter:=false, rclpy over DDS on loopback)
runs twice on the same simulated room and trajectory, with the AV and with the V model; the
recorded outputs are scored on the poses both runs have and the report is written. Training is
not run here (the demo itself and the training tests exercise it).
"""

import csv
import json
import os

from avs_net_ros.tools import demo
import numpy as np
import pytest

DOMAIN_ID = 31
POSES = 4


@pytest.mark.slow
def test_demo_graph_scores_both_runs_and_writes_the_report(tmp_path, model_set, capsys):
    """Every pose is scored in all four rows, with and without echoes; files are written."""
    models = {k: model_set[k] for k in ('av', 'v', 'relative')}
    score, files = demo.run_demo_graph(models, str(tmp_path), domain_id=DOMAIN_ID, seed=5,
                                       poses=POSES, rate=4.0, width=48, height=32, panels=3,
                                       family='bv1_like', progress=False)
    assert score['poses'] == {'with_echoes': POSES, 'without_echoes': POSES, 'common': POSES}
    rows = score['rows']
    # depth_inference publishes pseudo_dense on echo frames only: M_p is there for AV alone.
    assert set(rows) == {demo.ROW_AV, demo.ROW_V, demo.ROW_MP_AV}
    for m in rows.values():
        assert m['frames'] == POSES
        assert np.isfinite([m[c] for c in demo.COLUMNS]).all()
        assert 0.0 <= m['delta1'] <= m['delta2'] <= m['delta3'] <= 1.0
    # The tiny AV model scales its depth by the echo's energy, so the scales differ.
    assert rows[demo.ROW_AV]['abs_rel'] != rows[demo.ROW_V]['abs_rel']

    with open(files['csv']) as f:
        table = list(csv.DictReader(f))
    assert [r['row'] for r in table] == list(rows)
    assert float(table[0]['abs_rel']) == pytest.approx(rows[table[0]['row']]['abs_rel'])
    with open(files['json']) as f:
        res = json.load(f)
    for label in ('with echoes', 'without echoes'):
        s = res['system'][label]
        assert s['camera_frames'] >= POSES and s['metric_outputs'] >= POSES
        assert s['output_rate_hz'] > 0 and s['latency_ms_median'] > 0
        assert os.path.isfile(s['graph_log'])
    assert res['system']['with echoes']['pseudo_dense_outputs'] >= POSES
    assert len(res['panel_poses']) == 3
    with open(files['png'], 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    md = open(files['markdown']).read()
    assert demo.ROW_AV in md and 'echoes vs none, metric depth' in md

    lines = demo.table_lines(rows)
    assert len([ln for ln in lines if ln.startswith(('with', 'without', 'M_p'))]) == 3


def test_sim_params_follow_the_av_contract_and_reject_a_visual_model(tmp_path, model_set):
    """sim_robot's echo range and lead-in come from the AV model; a V model is refused."""
    import yaml

    path = demo.sim_params(str(tmp_path / 'sim.yaml'), model_set['av'], seed=3, poses=5,
                           rate=2.0, width=40, height=30)
    with open(path) as f:
        p = yaml.safe_load(f)['/**/sim_robot']['ros__parameters']
    assert p['echo_max_range'] == pytest.approx(6.0) and p['echo_lead_in_samples'] == 0
    assert p['chirp_every'] == 1 and p['family'] == 'bv2_like' and p['num_poses'] == 5
    with pytest.raises(ValueError, match='takes no echo'):
        demo.sim_params(str(tmp_path / 'bad.yaml'), model_set['v'], seed=3, poses=5, rate=2.0,
                        width=40, height=30)


def test_model_stamp_changes_with_the_config(tmp_path):
    """The cache stamp follows the config's bytes (and the model-making code)."""
    cfg = tmp_path / 'demo.yaml'
    cfg.write_text('epochs: 1\n')
    a = demo.model_stamp(str(cfg))
    assert demo.model_stamp(str(cfg)) == a
    cfg.write_text('epochs: 2\n')
    assert demo.model_stamp(str(cfg)) != a


@pytest.mark.slow
def test_a_graph_that_cannot_start_points_at_its_log(tmp_path, model_set):
    """A missing model makes the graph exit; the error names the graph's log file."""
    sim = demo.sim_params(str(tmp_path / 'sim.yaml'), model_set['av'], seed=1, poses=2,
                          rate=2.0, width=32, height=24, family='bv1_like')
    with pytest.raises(RuntimeError, match=r'exited with status 1; see .*bad_graph\.log'):
        demo.run_graph('bad', {'av': str(tmp_path / 'missing.onnx')}, sim, str(tmp_path),
                       domain_id=DOMAIN_ID + 1, poses=2, rate=2.0, need_echo=False,
                       startup_timeout=60.0, progress=False)
    assert 'missing.onnx' in open(tmp_path / 'bad_graph.log').read()
