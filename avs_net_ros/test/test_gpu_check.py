"""benchmarks.gpu_check here: one table, missing providers named as skipped, CPU rows measured."""

import re

from benchmarks.gpu_check import main
import onnxruntime as ort
import pytest


@pytest.mark.slow
def test_gpu_check_prints_one_table_and_names_what_it_skipped(capsys):
    main(['--sizes', '64x64', '--camera', '48x64', '--runs', '2'])
    out = capsys.readouterr().out
    rows = [line.split(' | ') for line in out.splitlines()
            if line.startswith('| 64x64 |')]
    table = {r[1]: (r[2], r[3].rstrip(' |')) for r in rows}
    for cpu_row in ('PyTorch eager CPU fp32', 'ONNX Runtime CPU fp32', 'pipeline 48p CPU fp32'):
        assert float(table[cpu_row][0]) > 0
    available = ort.get_available_providers()
    for provider, label in (('CUDAExecutionProvider', 'CUDA'),
                            ('TensorrtExecutionProvider', 'TensorRT')):
        for what in (f'ONNX Runtime {label} fp32', f'ONNX Runtime {label} fp16',
                     f'pipeline 48p {label} fp32'):
            ms, note = table[what]
            if provider not in available:
                assert ms == 'skipped' and provider in note
            else:
                assert re.fullmatch(r'[\d.]+|skipped|failed', ms)
    assert out.count('| size | what | median ms | notes |') == 1
