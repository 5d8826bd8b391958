"""The model contract validator explains what is wrong with a model."""

from avs_net_ros.core.contract import (KIND_AV, KIND_RELATIVE, KIND_V, ModelContract,
                                       read_onnx_contract)
from avs_net_ros.core.errors import ModelContractError
import onnx
import pytest


def test_built_models_follow_the_contract(model_set):
    av = read_onnx_contract(model_set['av'])
    assert av.kind == KIND_AV and av.takes_echo and av.image_size == (32, 32)
    assert av.echo.features.window_samples == 1556  # 6 m at 340 m/s, 44.1 kHz
    assert av.echo.features.spec_size == (16, 16)
    assert read_onnx_contract(model_set['v']).kind == KIND_V
    rel = read_onnx_contract(model_set['relative_disparity'])
    assert rel.kind == KIND_RELATIVE and rel.relative_output == 'disparity'


def test_metadata_round_trip(model_set):
    c = read_onnx_contract(model_set['av'])
    assert ModelContract.from_metadata(c.to_metadata()) == c


def _rewrite(src, dst, drop=(), change=None, rename_input=None):
    m = onnx.load(src)
    props = {p.key: p.value for p in m.metadata_props if p.key not in drop}
    props.update(change or {})
    del m.metadata_props[:]
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    if rename_input:
        old, new = rename_input
        for i in m.graph.input:
            if i.name == old:
                i.name = new
        for n in m.graph.node:
            n.input[:] = [new if x == old else x for x in n.input]
    onnx.save(m, dst)
    return dst


def test_missing_metadata_is_listed(model_set, tmp_path):
    p = _rewrite(model_set['av'], str(tmp_path / 'm.onnx'),
                 drop=('avs_net.sample_rate', 'avs_net.hop_length'))
    with pytest.raises(ModelContractError) as e:
        read_onnx_contract(p)
    assert 'avs_net.sample_rate' in str(e.value) and 'avs_net.hop_length' in str(e.value)
    assert p in str(e.value)


def test_inconsistent_or_malformed_metadata(model_set, tmp_path):
    p = _rewrite(model_set['av'], str(tmp_path / 'a.onnx'),
                 change={'avs_net.echo_window_samples': '999', 'avs_net.n_fft': 'big'})
    with pytest.raises(ModelContractError, match='not a number'):
        read_onnx_contract(p)
    p = _rewrite(model_set['av'], str(tmp_path / 'b.onnx'),
                 change={'avs_net.echo_window_samples': '999'})
    with pytest.raises(ModelContractError, match='disagrees with echo_max_depth'):
        read_onnx_contract(p)
    p = _rewrite(model_set['relative'], str(tmp_path / 'c.onnx'),
                 change={'avs_net.relative_output': 'inverse'})
    with pytest.raises(ModelContractError, match='relative_output must be one of'):
        read_onnx_contract(p)
    p = _rewrite(model_set['v'], str(tmp_path / 'd.onnx'),
                 change={'avs_net.model_kind': 'zoedepth'})
    with pytest.raises(ModelContractError, match='model_kind'):
        read_onnx_contract(p)
    p = _rewrite(model_set['v'], str(tmp_path / 'e.onnx'),
                 change={'avs_net.image_width': '64'})
    with pytest.raises(ModelContractError, match="input 'image' has shape"):
        read_onnx_contract(p)


def test_wrong_input_names(model_set, tmp_path):
    p = _rewrite(model_set['av'], str(tmp_path / 'n.onnx'), rename_input=('image', 'rgb'))
    with pytest.raises(ModelContractError, match="needs \\['image', 'echo_spectrogram'\\]"):
        read_onnx_contract(p)


def test_non_onnx_and_missing_files(tmp_path):
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'\x00\x01 this is not a protobuf \xff' * 10)
    with pytest.raises(ModelContractError, match='not a readable ONNX model'):
        read_onnx_contract(str(junk))
    with pytest.raises(FileNotFoundError, match='nowhere.onnx'):
        read_onnx_contract(str(tmp_path / 'nowhere.onnx'))
