"""The demo's graph-and-scoring path end to end on the tiny contract-following models.

The real node graph (avs_bringup use_sim:=true use_emitter:=false, rclpy over DDS on loopback)
runs twice on the same simulated room and trajectory, with the AV and with the V model; the
recorded outputs are scored on the poses both runs have and the report is written. Training is
not run here (the demo itself, test_echo_scale_link and the training tests exercise it). The
verdict is checked on recorded runs made up here, both ways.
"""

import csv
import json
import os

from avs_net_ros.tools import demo, demo_graph, demo_models
from avs_net_ros.tools import demo_report as report
import numpy as np
import pytest

DOMAIN_ID = 31
POSES = 4


@pytest.mark.slow
def test_demo_graph_scores_both_runs_and_writes_the_report(tmp_path, model_set, capsys):
    """Every pose is scored in all four rows, with and without echoes; files are written."""
    models = {k: model_set[k] for k in ('av', 'v', 'relative')}
    rooms = [('office', demo.room_file('office'))]
    score, files = demo.run_demo_graph(models, str(tmp_path), domain_id=DOMAIN_ID, rooms=rooms,
                                       room_seed=5, poses=POSES, rate=4.0, width=48,
                                       height=32, progress=False)
    assert score['poses'] == {'office': {'with_echoes': POSES, 'without_echoes': POSES,
                                         'common': POSES}}
    rows = score['rows']
    # depth_inference publishes pseudo_dense on echo frames only: M_p is there for AV alone.
    assert set(rows) == {report.ROW_AV, report.ROW_V, report.ROW_MP_AV}
    for m in rows.values():
        assert m['frames'] == POSES
        assert np.isfinite([m[c] for c in report.COLUMNS]).all()
        assert 0.0 <= m['delta1'] <= m['delta2'] <= m['delta3'] <= 1.0
    # The tiny AV model scales its depth by the echo's energy, so the scales differ.
    assert rows[report.ROW_AV]['abs_rel'] != rows[report.ROW_V]['abs_rel']
    office = score['rooms']['office']
    assert office['frames'] == POSES and office['gt_median'] > 0
    assert set(office['scale_error']) == set(rows)
    assert office['scale_error'][report.ROW_AV] != office['scale_error'][report.ROW_V]

    with open(files['csv']) as f:
        table = list(csv.DictReader(f))
    assert [r['row'] for r in table] == list(rows)
    assert float(table[0]['abs_rel']) == pytest.approx(rows[table[0]['row']]['abs_rel'])
    with open(files['json']) as f:
        res = json.load(f)
    for label in ('office, with echoes', 'office, without echoes'):
        s = res['system'][label]
        assert s['camera_frames'] >= POSES and s['metric_outputs'] >= POSES
        assert s['output_rate_hz'] > 0 and s['latency_ms_median'] > 0
        assert os.path.isfile(s['graph_log'])
    assert res['system']['office, with echoes']['pseudo_dense_outputs'] >= POSES
    assert res['verdict'].startswith('VERDICT: echoes') and isinstance(res['echoes_helped'], bool)
    with open(files['png'], 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    md = open(files['markdown']).read()
    assert report.ROW_AV in md and 'echoes vs none, metric depth' in md and 'VERDICT' in md
    with open(files['rooms']) as f:
        assert {r['room'] for r in csv.DictReader(f)} == {'office'}

    lines = report.table_lines(rows)
    assert len([ln for ln in lines if ln.startswith(('with', 'without', 'M_p'))]) == 3


def test_sim_params_follow_the_av_contract_and_reject_a_visual_model(tmp_path, model_set):
    """sim_robot's echo range and lead-in come from the AV model; a V model is refused."""
    import yaml

    path = demo_graph.sim_params(str(tmp_path / 'sim.yaml'), model_set['av'], seed=3, poses=5,
                                 rate=2.0, width=40, height=30, family_config='office.yaml')
    with open(path) as f:
        p = yaml.safe_load(f)['/**/sim_robot']['ros__parameters']
    assert p['echo_max_range'] == pytest.approx(6.0) and p['echo_lead_in_samples'] == 0
    assert p['chirp_every'] == 1 and p['family_config'] == 'office.yaml'
    assert p['num_poses'] == 5 and p['trajectory'] == 'tour'
    with pytest.raises(ValueError, match='takes no echo'):
        demo_graph.sim_params(str(tmp_path / 'bad.yaml'), model_set['v'], seed=3, poses=5,
                              rate=2.0, width=40, height=30)


def test_model_stamp_changes_with_the_config_and_the_seed(tmp_path):
    """The cache stamp follows the config's bytes, the training seed (and the code)."""
    cfg = tmp_path / 'demo.yaml'
    cfg.write_text('epochs: 1\n')
    a = demo_models.model_stamp(str(cfg), 43)
    assert demo_models.model_stamp(str(cfg), 43) == a
    assert demo_models.model_stamp(str(cfg), 44) != a
    cfg.write_text('epochs: 2\n')
    assert demo_models.model_stamp(str(cfg), 43) != a


def test_every_demo_room_is_a_loadable_family_of_its_stated_size():
    """The evaluation rooms load and differ in size as the README says (office < hall)."""
    from avs_net_ros.sim.families import load_family_file, sample_scene

    sizes = {}
    for room in demo.DEFAULT_ROOMS:
        scene = sample_scene(load_family_file(demo.room_file(room)), np.random.default_rng(0))
        x0, y0, x1, y1 = scene.bounds()
        sizes[room] = (min(x1 - x0, y1 - y0), max(x1 - x0, y1 - y0))
    assert sizes['office'][1] < 4.0 and sizes['corridor'][1] > 12.0
    assert sizes['corridor'][0] < 3.0 and sizes['hall'][0] > 12.0
    with pytest.raises(ValueError, match="no evaluation room 'attic'"):
        demo.room_file('attic')


class _Run:
    """A recorded run (what demo_graph.RunRecord.by_pose returns), made up for the verdict."""

    def __init__(self, frames):
        self.frames = frames

    def by_pose(self, need_echo):
        return self.frames


def _runs(scale_av, scale_v, rooms=('small', 'big')):
    """Return runs whose metric depth is the ground truth times a per-room scale."""
    out = []
    for r, (room, depth) in enumerate(zip(rooms, (2.0, 10.0))):
        av, v = {}, {}
        for k in range(3):
            gt = np.full((6, 8), depth * (1 + 0.1 * k), np.float32)
            gt[0, 0] = np.nan
            base = {'gt': gt, 'rgb': np.zeros((6, 8, 3), np.uint8), 'stamp': 100 * r + k}
            av[f'{room}{k}'] = dict(base, metric=gt * scale_av[r], pseudo_dense=gt * scale_av[r])
            v[f'{room}{k}'] = dict(base, metric=gt * scale_v[r])
        out.append((room, _Run(av), _Run(v)))
    return out


def test_verdict_says_plainly_whether_echoes_helped():
    """Right scale with echoes everywhere: fixed; wrong in one room: named; worse: NOT."""
    score = report.score_rooms(_runs((1.05, 0.97), (2.5, 0.4)), max_depth=30.0)
    helped, line = report.verdict(score)
    assert helped and line.startswith('VERDICT: echoes fixed the scale in all 2 rooms')
    big = score['rooms']['big']['scale_error']
    assert big[report.ROW_AV] == pytest.approx(abs(np.log(0.97)), abs=1e-6)
    assert big[report.ROW_V] == pytest.approx(abs(np.log(0.4)), abs=1e-6)
    ratio = score['rooms']['big']['scale_ratio']   # the direction: 0.4 = too near
    assert ratio[report.ROW_V] == pytest.approx(0.4, abs=1e-6)
    assert '(×0.40)' in '\n'.join(report.room_lines(score['rooms']))
    assert score['rooms']['big']['views_av_closer'] == score['rooms']['big']['frames']

    score = report.score_rooms(_runs((1.05, 0.7), (2.5, 0.8)), 30.0)
    helped, line = report.verdict(score)
    assert helped and 'helped overall' in line and 'but NOT in big' in line
    assert score['rooms']['big']['views_av_closer'] == 0
    helped, line = report.verdict(report.score_rooms(_runs((3.0, 3.0), (1.0, 1.0)), 30.0))
    assert not helped and line.startswith('VERDICT: echoes did NOT help here')


def test_system_figures_count_outputs_of_frames_recorded_before_separately():
    # Recording starts while the camera already publishes: an output can arrive for a frame
    # the recorder never saw. It must not make metric_outputs exceed camera_frames.
    rec = demo_graph.RunRecord('av')
    frame = np.zeros((2, 2), np.float32)
    rec.add('metric', 0, frame, 0.05)            # its camera frame was published earlier
    for stamp in (1, 2, 3):
        rec.add('rgb', stamp, frame, 0.1 * stamp)
    for stamp in (1, 2):
        rec.add('metric', stamp, frame, 0.1 * stamp + 0.02)
    rec.end_t = 10.0
    s = rec.system()
    assert s['camera_frames'] == 3 and s['metric_outputs'] == 2
    assert s['metric_outputs_of_earlier_frames'] == 1
    assert s['frames_without_output'] == 1
