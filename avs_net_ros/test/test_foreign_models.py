"""Third-party relative models (no avs_net_ros metadata): description, pipeline, tools.

The foreign graphs (test/foreign_builders) output an exact affine function of the scene's
inverse depth once fed with their own normalisation, and the exact AVS-Net stand-in outputs
the scene's depth: the pipeline must recover the metric depth from the foreign output by
scale-and-shift, and get it wrong when the description is wrong.
"""

import glob
import json
import os

from avs_net_ros.core.contract import KIND_AV, read_onnx_graph
from avs_net_ros.core.errors import AvsInputError, ModelContractError
from avs_net_ros.core.foreign import (ForeignModelSpec, read_spec_file, resolve_foreign,
                                      suggest_spec)
from avs_net_ros.eval.bagio import BagWriter
from avs_net_ros.eval.offline import EvalConfig, evaluate_bag, Variant
from avs_net_ros.eval.scoring import ROW_BASELINE, ROW_ORACLE, ROW_PROPOSED
from avs_net_ros.ros.depth_inference import PARAMS
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from avs_net_ros.tools import eval_bag, validate_model
from foreign_builders import (A, B, build_exact_avs_model, build_foreign_model, Q_MAX,
                              scene)
import numpy as np
import pytest
from ros_fixtures import ROOT
import yaml

CPU = ['cpu']
MIDAS = ForeignModelSpec('affine_disparity', input_size=(256, 256))
DA = ForeignModelSpec('affine_disparity', short_side=56, size_multiple=14)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp('foreign')
    return {
        'midas': build_foreign_model(str(d / 'midas_like.onnx'), 'midas', (256, 256)),
        'midas_dynamic': build_foreign_model(str(d / 'midas_dyn.onnx'), 'midas', None),
        'da': build_foreign_model(str(d / 'depth_anything_like.onnx'), 'depth_anything', None),
        'bgr255': build_foreign_model(str(d / 'bgr255.onnx'), 'midas', (56, 70),
                                      mean=(127.5,) * 3, std=(127.5,) * 3,
                                      channel_order='BGR', pixel_range=255.0),
        'v256': build_exact_avs_model(str(d / 'v256.onnx'), (256, 256)),
        'v56': build_exact_avs_model(str(d / 'v56.onnx'), (56, 70)),
        'av56': build_exact_avs_model(str(d / 'av56.onnx'), (56, 70), KIND_AV),
        'av56_far': build_exact_avs_model(str(d / 'av56_far.onnx'), (56, 70), KIND_AV, 2.0),
    }


def _rel_err(pred, depth):
    return float(np.nanmax(np.abs(pred - depth) / depth))


# -- the description -------------------------------------------------------------------------

def test_spec_parses_strings_and_names_every_bad_value():
    s = ForeignModelSpec.from_mapping({'output': 'affine_disparity', 'input_size': '256x256',
                                       'mean': '0.5,0.5,0.5', 'channel_order': 'bgr'})
    assert s.input_size == (256, 256) and s.mean == (0.5, 0.5, 0.5)
    assert s.channel_order == 'BGR' and s.scale_method == 'scale_shift'
    assert s.relative_kind == 'disparity'
    assert ForeignModelSpec('metric_depth').scale_method == 'median'
    assert ForeignModelSpec('metric_depth').relative_kind == 'depth'
    with pytest.raises(AvsInputError) as e:
        ForeignModelSpec('inverse', input_size=(256, 250), size_multiple=14, std=(1, 0, 1))
    msg = str(e.value)
    assert "output = 'inverse' is not one of" in msg
    with pytest.raises(AvsInputError) as e:
        ForeignModelSpec('depth', input_size=(256, 250), size_multiple=14, std=(1, 0, 1))
    assert 'not a multiple of size_multiple 14' in str(e.value)
    assert 'std must be positive' in str(e.value)
    with pytest.raises(AvsInputError, match=r"unknown third-party model field\(s\) \['size'\]"):
        ForeignModelSpec.from_mapping({'output': 'depth', 'size': 3})
    with pytest.raises(AvsInputError, match='has no output kind'):
        ForeignModelSpec.from_mapping({'short_side': 518})


def test_spec_from_node_parameters_needs_the_output_kind():
    defaults = {p.name: p.default for p in PARAMS}
    assert ForeignModelSpec.from_params(defaults) is None  # nothing third-party configured
    spec = ForeignModelSpec.from_params(dict(defaults, relative_output='affine_disparity',
                                             relative_short_side=518,
                                             relative_size_multiple=14))
    assert spec == ForeignModelSpec('affine_disparity', short_side=518, size_multiple=14)
    assert ForeignModelSpec.from_params(spec.to_params()) == spec
    with pytest.raises(AvsInputError, match='relative_short_side .* but relative_output is '
                                            'empty'):
        ForeignModelSpec.from_params(dict(defaults, relative_short_side=518))


def test_config_foreign_files_are_node_parameter_files_that_parse():
    declared = {p.name: p for p in PARAMS}
    files = sorted(glob.glob(os.path.join(ROOT, 'config', 'foreign', '*.yaml')))
    assert len(files) >= 3
    for path in files:
        (key, body), = yaml.safe_load(open(path)).items()
        assert key == '/**/depth_inference'
        for name, value in body['ros__parameters'].items():
            assert name in declared, f'{path}: {name} is not a depth_inference parameter'
            assert type(value) is type(declared[name].default), f'{path}: {name}'
        lines = open(path).read().splitlines()
        for i, line in enumerate(lines):
            if line.startswith('    relative_'):
                assert lines[i - 1].lstrip().startswith(('#', 'relative_')), line
        assert read_spec_file(path).output in ('affine_disparity', 'metric_depth')


def test_description_is_checked_against_the_graph(models):
    graph = read_onnx_graph(models['da'])
    assert not graph.has_contract
    assert graph.inputs == {'pixel_values': ['batch', 3, 'height', 'width']}
    fm = resolve_foreign(DA, graph)
    assert (fm.input_name, fm.output_name, fm.fixed_size) == ('pixel_values',
                                                              'predicted_depth', None)
    assert fm.input_size((48, 64)) == (56, 70)       # 56 x 74.7 rounded to multiples of 14
    assert fm.input_size((720, 1280)) == (56, 98)
    with pytest.raises(ModelContractError, match='dynamic .* give input_size .* or '
                                                 'short_side'):
        resolve_foreign(ForeignModelSpec('affine_disparity'), graph)
    with pytest.raises(ModelContractError, match="input_name 'image' is not an input of the "
                                                 r"graph; it has \['pixel_values'\]"):
        resolve_foreign(ForeignModelSpec('affine_disparity', short_side=56,
                                         input_name='image'), graph)
    fixed = read_onnx_graph(models['midas'])
    assert resolve_foreign(ForeignModelSpec('affine_disparity'), fixed).fixed_size == (
        256, 256)
    with pytest.raises(ModelContractError, match=r'input_size \[384, 384\] contradicts the '
                                                 "graph's fixed height 256, width 256"):
        resolve_foreign(ForeignModelSpec('affine_disparity', input_size=(384, 384)), fixed)


# -- the pipeline: numbers -------------------------------------------------------------------

def test_midas_like_model_is_recovered_to_metric_by_scale_and_shift(models):
    """Output A * r + B of the inverse depth, fitted to the exact reference: D comes back."""
    rgb, depth = scene(256, 256, seed=1)
    pipe = MetricDepthPipeline(models['v256'], models['midas'], providers=CPU,
                               relative_output='affine_disparity')
    assert pipe.scale_method == 'scale_shift' and pipe.relative_kind == 'affine_disparity'
    assert pipe.relative.foreign is not None and pipe.relative.image_input == 'input.1'
    pipe.warm_up()
    res = pipe.infer(rgb)
    np.testing.assert_allclose(res.pseudo_dense, depth, rtol=1e-5)
    assert res.fit.scale == pytest.approx(Q_MAX / A, rel=1e-4)
    assert res.fit.shift == pytest.approx(-B * Q_MAX / A, rel=1e-3)
    assert _rel_err(res.metric, depth) < 1e-3
    # the raw output inverted is not metric, and a median ratio cannot remove the shift
    assert _rel_err(res.relative, depth) > 0.5
    median = MetricDepthPipeline(pipe.avs, pipe.relative, scale_method='median').infer(rgb)
    assert _rel_err(median.metric, depth) > 0.3


def test_depth_anything_like_dynamic_model_with_its_sizes(models):
    """Dynamic height/width, multiple of 14, output (B, H, W) under other tensor names."""
    rgb, depth = scene(56, 70, seed=2)
    spec = ForeignModelSpec('affine_disparity', short_side=56, size_multiple=14,
                            output_name='predicted_depth')
    pipe = MetricDepthPipeline(models['v56'], models['da'], providers=CPU, relative_spec=spec)
    assert pipe.relative_input_size((56, 70)) == (56, 70)
    assert _rel_err(pipe.infer(rgb).metric, depth) < 1e-3
    # a camera of another size is fed at multiples of 14 (resized, so no longer exact)
    rgb2, depth2 = scene(48, 64, seed=3)
    assert pipe.relative_input_size((48, 64)) == (56, 70)
    raw = pipe.run_relative(rgb2)
    assert raw.shape == (56, 70)
    # a MiDaS-like dynamic graph takes any multiple of 32
    dyn = MetricDepthPipeline(models['v56'], models['midas_dynamic'], providers=CPU,
                              relative_spec=ForeignModelSpec('affine_disparity', short_side=64,
                                                             size_multiple=32))
    assert dyn.relative_input_size((56, 70)) == (64, 96)
    assert dyn.run_relative(rgb).shape == (64, 96)


def test_normalisation_decides_the_numbers(models):
    """BGR in [0, 255] with mean/std 127.5: right only when described so."""
    rgb, depth = scene(56, 70, seed=4)
    right = ForeignModelSpec('affine_disparity', mean=(127.5,) * 3, std=(127.5,) * 3,
                             channel_order='BGR', pixel_range=255.0)
    pipe = MetricDepthPipeline(models['v56'], models['bgr255'], providers=CPU,
                               relative_spec=right)
    assert _rel_err(pipe.infer(rgb).metric, depth) < 1e-3
    wrong = ForeignModelSpec('affine_disparity', mean=(127.5,) * 3, std=(127.5,) * 3,
                             pixel_range=255.0)  # RGB: the graph reads blue as red
    bad = MetricDepthPipeline(models['v56'], models['bgr255'], providers=CPU,
                              relative_spec=wrong)
    assert _rel_err(bad.infer(rgb).metric, depth) > 0.5


def test_metric_model_used_as_relative_is_scaled_by_the_median(models):
    """A 'metric' model off by a factor: the median ratio against M_p removes it."""
    rgb, depth = scene(56, 70, seed=5)
    with pytest.raises(ModelContractError, match="is a 'avs_v' model"):  # not a relative one
        MetricDepthPipeline(models['v56'], models['v56'], providers=CPU,
                            relative_output='metric_depth')
    # the foreign graph read as metric depth: its map is A r + B, scaled by one factor
    res = MetricDepthPipeline(models['v56'], models['bgr255'], providers=CPU,
                              relative_spec=ForeignModelSpec(
                                  'metric_depth', mean=(127.5,) * 3, std=(127.5,) * 3,
                                  channel_order='BGR', pixel_range=255.0)).infer(rgb)
    assert res.fit.method == 'median'
    raw = A * (rgb[..., 0].astype(np.float32) / 255) + B
    np.testing.assert_allclose(res.relative, raw, rtol=1e-5)
    np.testing.assert_allclose(res.fit.scale, np.median(depth) / np.median(raw), rtol=1e-4)


def test_foreign_model_without_a_kind_is_rejected_naming_what_to_pass(models):
    with pytest.raises(ModelContractError) as e:
        MetricDepthPipeline(models['v256'], models['midas'], providers=CPU)
    msg = str(e.value)
    assert 'midas_like.onnx carries no avs_net_ros metadata' in msg
    for hint in ('relative_output', '--relative-set NAME.output=KIND',
                 'MetricDepthPipeline(relative_output=KIND)', 'affine_disparity',
                 'avs_validate_model'):
        assert hint in msg, hint
    # a contract model's input is fixed by its metadata: a description may not change it
    from model_builders import build_relative_model
    own = build_relative_model(models['v256'].replace('v256', 'own_rel'), 'disparity')
    with pytest.raises(ModelContractError, match=r"settings \['short_side'\] apply only"):
        MetricDepthPipeline(models['v256'], own, providers=CPU,
                            relative_spec=ForeignModelSpec('disparity', short_side=518))
    over = MetricDepthPipeline(models['v256'], own, providers=CPU,
                               relative_output='affine_disparity')
    assert over.relative.foreign is None and over.scale_method == 'scale_shift'


# -- avs_validate_model ----------------------------------------------------------------------

def test_validator_explains_a_foreign_file_and_checks_a_description(models, capsys, tmp_path):
    assert validate_model.main([models['da']]) == 1
    out, err = capsys.readouterr()
    assert "input 'pixel_values': FLOAT ['batch', 3, 'height', 'width']" in out
    assert "output 'predicted_depth': FLOAT ['batch', 'height', 'width']" in out
    assert 'relative_output' in out and 'relative_mean' in out
    assert "relative_output: 'affine_disparity'" in out          # from the file name
    assert 'relative_short_side: 518' in out and 'relative_size_multiple: 14' in out
    assert '--relative-params' in out and 'carries no avs_net_ros metadata' in err
    # the suggestion, saved, is a working description
    params, _ = suggest_spec(read_onnx_graph(models['da']))
    spec_file = tmp_path / 'da.yaml'
    spec_file.write_text(yaml.safe_dump({'/**/depth_inference': {'ros__parameters': params}}))
    assert validate_model.main([models['da'], '--relative-params', str(spec_file),
                                '--run', '--providers', 'cpu']) == 0
    out = capsys.readouterr().out
    assert 'OK as a third-party relative model' in out
    assert 'a 480x640 camera: 518x686' in out and "input 'pixel_values'" in out
    assert 'as affine_disparity; scale method (auto) scale_shift' in out
    assert 'input [1, 3, 518, 686], output [1, 518, 686]' in out
    # an unknown kind is named; a wrong tensor name is named with the graph's names
    assert validate_model.main([models['midas'], '--relative-set', 'output=inverse']) == 2
    assert "output = 'inverse' is not one of" in capsys.readouterr().err
    assert validate_model.main([models['midas'], '--relative-set', 'output=depth',
                                '--relative-set', 'output_name=depth']) == 1
    assert "output_name 'depth' is not an output of the graph; it has ['disparity']" in (
        capsys.readouterr().err)


# -- avs_eval_bag ----------------------------------------------------------------------------

INFO = {'sample_rate': 44100, 'channels': 2, 'window_samples': 1556, 'lead_in_samples': 0,
        'speed_of_sound': 340.0, 'max_range': 6.0, 'chirp': {}, 'alignment': {},
        'backend': 'test'}


def _scene_bag(path, n=3):
    rng = np.random.default_rng(0)
    with BagWriter(path) as w:
        w.set_echo_info(INFO)
        for i in range(n):
            rgb, depth = scene(56, 70, seed=10 + i)
            w.write_frame(1_000_000_000 + i * 100_000_000, rgb,
                          (0.1 * rng.standard_normal((2, 1600))).astype(np.float32), depth)
    return path


def test_eval_bag_scores_a_foreign_model_when_described(models, tmp_path, capsys):
    bag = _scene_bag(str(tmp_path / 'bag'))
    out = str(tmp_path / 'report')
    base = [bag, '--av', models['av56'], '--v', models['v56'], '--relative',
            f'da={models["da"]}', '--out', out, '--quiet', '--workers', '0']
    # no kind: refused, saying what to pass
    assert eval_bag.main(base) == 2
    err = capsys.readouterr().err
    assert 'carries no avs_net_ros metadata' in err and '--relative-set' in err
    spec = tmp_path / 'da.yaml'
    spec.write_text('/**/depth_inference:\n  ros__parameters:\n'
                    "    relative_output: 'affine_disparity'\n    relative_short_side: 518\n"
                    '    relative_size_multiple: 14\n')
    # the parameter file, with one field overridden on the command line (56 = the camera's)
    assert eval_bag.main(base + ['--relative-params', f'da={spec}',
                                 '--relative-set', 'da.short_side=56']) == 0
    res = json.load(open(os.path.join(out, 'results.json')))
    rows = res['table2']['avs']['da']
    assert res['relative_scaling']['da'] == {'output': 'affine_disparity',
                                             'scale_method': 'scale_shift',
                                             'fed': 'third-party description'}
    assert rows['Proposed']['abs_rel'] < 1e-3 and rows['Proposed']['delta1'] == 1.0
    assert rows['Baseline']['abs_rel'] < 1e-3   # V is exact too in this scene
    assert rows['w/o']['abs_rel'] > 0.3         # the raw affine output is not metric
    report = open(os.path.join(out, 'report.md')).read()
    assert 'Output affine_disparity, fed from its third-party description; scale method ' \
           'scale_shift.' in report
    # the same with a forced median: the shift stays, the numbers say so
    assert eval_bag.main(base + ['--relative-set', 'output=affine_disparity',
                                 '--relative-set', 'short_side=56',
                                 '--scale-method', 'median']) == 0
    rows = json.load(open(os.path.join(out, 'results.json')))['table2']['avs']['da']
    assert rows['Proposed']['abs_rel'] > 0.05  # against < 0.001 with scale_shift
    # malformed options are named
    assert eval_bag.main(base + ['--relative-set', 'midas.output=depth']) == 2
    assert "no --relative model is named 'midas'" in capsys.readouterr().err


def test_gt_oracle_row_fits_the_ground_truth_by_the_rows_method(models, tmp_path):
    """The oracle fits the ground truth, not M_p, by the same method as the other rows.

    Exact for scale-and-shift; off for a forced median, as Baseline is.
    """
    bag = _scene_bag(str(tmp_path / 'bag'))
    relatives = {'da': models['da']}
    spec = {'da': DA}  # fed at the camera's 56 x 70: every map on the same grid
    variants = [Variant('far', models['av56_far'], models['v56'])]

    def rows(method):
        cfg = EvalConfig(providers=tuple(CPU), progress=False, workers=0,
                         relative_specs=spec, scale_method=method)
        return evaluate_bag(bag, variants, relatives, config=cfg).table2['far']['da']

    got = rows('auto')
    assert got[ROW_ORACLE]['frames'] == 3
    assert got[ROW_ORACLE]['abs_rel'] < 1e-3 and got[ROW_ORACLE]['delta1'] == 1.0
    # M_p (AV) is twice too far, and so is Proposed (a little less where predictions are
    # clamped to the 12 m range); V is exact, and so is Baseline
    assert 0.9 < got[ROW_PROPOSED]['abs_rel'] <= 1.0
    assert got[ROW_BASELINE]['abs_rel'] < 1e-3
    forced = rows('median')  # a median ratio cannot remove the shift, against GT either
    assert forced[ROW_ORACLE]['abs_rel'] > 0.05
    assert forced[ROW_ORACLE]['abs_rel'] == pytest.approx(forced[ROW_BASELINE]['abs_rel'],
                                                          rel=0.05)
