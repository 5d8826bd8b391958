"""bench_model_latency end to end on a small input: export, INT8, timing, both profiles."""

import re

from benchmarks.bench_model_latency import gemm_rate, main
import pytest


def test_gemm_rate_is_a_plausible_rate():
    # 2 n^3 FLOP in a measured time: positive, finite, and far below any CPU's 10 TFLOP/s.
    rate = gemm_rate(threads=1, n=256, runs=3)
    assert 0.1 < rate < 1e4


@pytest.mark.slow
def test_benchmark_prints_the_three_runtimes_profiles_and_the_convolution_ceiling(capsys):
    main(['--size', '64', '--runs', '2', '--warmup', '1', '--profile-runs', '1'])
    out = capsys.readouterr().out
    medians = {name: float(m) for name, m in re.findall(
        r'^(PyTorch eager|ONNX Runtime fp32|ONNX Runtime INT8)\s*: median\s+([\d.]+) ms', out,
        re.M)}
    assert set(medians) == {'PyTorch eager', 'ONNX Runtime fp32', 'ONNX Runtime INT8'}
    assert all(v > 0 for v in medians.values())
    speed = re.search(r'fp32 vs eager ([\d.]+)x, INT8 vs eager ([\d.]+)x', out)
    assert speed and float(speed.group(1)) == pytest.approx(
        medians['PyTorch eager'] / medians['ONNX Runtime fp32'], rel=0.02)
    total = float(re.search(r'forward FLOPs: ([\d.]+) GFLOP', out).group(1))
    conv = float(re.search(r'([\d.]+) GFLOP of convolutions', out).group(1))
    assert 0 < conv <= total
    for title in ('ONNX Runtime fp32 profile', 'ONNX Runtime INT8 profile'):
        block = out.split(title)[1].split('\n')
        shares = [float(x) for x in re.findall(r' ([\d.]+) %', block[2])]  # 'by part' line
        assert sum(shares) == pytest.approx(100.0, abs=0.5)
    assert re.search(r'at most [\d.]+x', out)
