"""The model validator command reports good and broken models."""

from avs_net_ros.tools.validate_model import main


def test_validator_accepts_good_models(model_set, capsys):
    assert main([model_set['av'], model_set['relative'], '--run', '--providers', 'cpu']) == 0
    out = capsys.readouterr().out
    assert 'kind avs_av' in out and 'window 1556 samples' in out and 'relative output' in out


def test_validator_names_broken_and_missing_files(tmp_path, capsys):
    junk = tmp_path / 'junk.onnx'
    junk.write_text('not onnx')
    assert main([str(junk), str(tmp_path / 'none.onnx')]) == 1
    err = capsys.readouterr().err
    assert 'junk.onnx is not a readable ONNX model' in err and 'none.onnx' in err
