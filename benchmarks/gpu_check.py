"""One table of AVS-Net latency on this machine: CPU vs CUDA vs TensorRT, fp32 vs fp16.

    python -m benchmarks.gpu_check [--sizes 256x256 384x512] [--runs 20] [--camera 720x1280]
    benchmarks/gpu_check.sh            # the same, with the project's venv

Builds the default AV model and a default-size relative model (random weights: speed does
not depend on them) at each size, exports them (``training.export``: float32, and fp16 with
``convert_fp16``), and times batch-1 inference per execution provider and precision:

- PyTorch eager on the CPU, and on CUDA in fp32 and fp16 (autocast; the head stays fp32),
  when torch sees a GPU;
- ONNX Runtime on the CPU (fp32 model), CUDA (fp32 and fp16 models) and TensorRT (fp32
  model, and TensorRT's own fp16 mode), each with the runtime's session code
  (``runtime.session``: provider options, I/O binding on GPU providers);
- the whole pipeline (``MetricDepthPipeline.infer``: echo STFT, AVS-Net, relative model,
  scale fit, maps to a 720p camera) for the first size, per provider.

Providers this ONNX Runtime build does not have (the CPU-only ``onnxruntime`` package has
neither CUDA nor TensorRT; ``onnxruntime-gpu`` has both, TensorRT also needs its libraries)
are listed as skipped with the reason, so a CPU-only machine prints the table too. TensorRT
builds an engine per model and size on first use (minutes); they are cached in
``--trt-cache``. Every row is the median of ``--runs`` runs after warm-up; the load average
is printed with the table.
"""

import argparse
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.contract import EchoContract, ModelContract
from avs_net_ros.core.spectrogram import EchoFeatureConfig
from avs_net_ros.runtime.pipeline import MetricDepthPipeline
from avs_net_ros.runtime.session import gpu_provider_options, OnnxModel

import numpy as np
import onnxruntime as ort
import torch

from training.config import ModelConfig
from training.export import convert_fp16, example_inputs, export_onnx, make_contract
from training.models.avs_net import build_model

PROVIDERS = (('CPU', 'CPUExecutionProvider'), ('CUDA', 'CUDAExecutionProvider'),
             ('TensorRT', 'TensorrtExecutionProvider'))


def _median_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - t))
    return statistics.median(times)


def _models(size: Tuple[int, int],
            folder: str) -> Tuple[Dict[str, str], ModelContract, torch.nn.Module]:
    torch.manual_seed(0)
    cfg = ModelConfig(variant='av', image_size=size)
    model = build_model(cfg).eval()
    echo = EchoContract(EchoFeatureConfig(spec_size=(256, 256)), echo_max_depth=30.0,
                        speed_of_sound=340.0)
    contract = make_contract(cfg, echo)
    tag = f'{size[0]}x{size[1]}'
    paths = {'fp32': os.path.join(folder, f'av_{tag}.onnx'),
             'fp16': os.path.join(folder, f'av_{tag}_fp16.onnx'),
             'relative': os.path.join(folder, f'relative_{tag}.onnx')}
    export_onnx(model, contract, paths['fp32'], verbose=False)
    convert_fp16(paths['fp32'], paths['fp16'])
    rcfg = ModelConfig(variant='relative', image_size=size)
    export_onnx(build_model(rcfg).eval(), make_contract(rcfg), paths['relative'], verbose=False)
    return paths, contract, model


def _ort_rows(paths: Dict[str, str], contract: ModelContract, runs: int, threads: int,
              trt_cache: str, available: Sequence[str]) -> List[Tuple[str, str, str]]:
    feeds = {k: v.numpy() for k, v in example_inputs(contract).items()}
    rows = []
    for label, name in PROVIDERS:
        for precision in ('fp32', 'fp16'):
            what = f'ONNX Runtime {label} {precision}'
            if name not in available:
                rows.append((what, 'skipped', f'{name} not in this ONNX Runtime build '
                                              f'({", ".join(available)})'))
                continue
            if label == 'CPU' and precision == 'fp16':
                rows.append((what, 'skipped', 'fp16 is a GPU format (CPU kernels upcast)'))
                continue
            opts = gpu_provider_options(trt_fp16=precision == 'fp16',
                                        trt_engine_cache_dir=trt_cache)
            # TensorRT takes the float32 file and runs fp16 itself; CUDA runs the fp16 file.
            path = paths['fp16'] if (label == 'CUDA' and precision == 'fp16') else paths['fp32']
            try:
                m = OnnxModel(path, [name], threads, provider_options=opts)
                active = m.active_providers[0]
                if active != name:
                    rows.append((what, 'skipped', f'session fell back to {active}'))
                    continue
                rows.append((what, f'{_median_ms(lambda: m.run(feeds), runs):.1f}',
                             f'{os.path.basename(path)}; I/O binding {m.io_binding}'))
            except Exception as e:  # provider libraries missing at session creation
                rows.append((what, 'failed', str(e).splitlines()[0][:100]))
    return rows


def _torch_rows(model: torch.nn.Module, contract: ModelContract,
                runs: int) -> List[Tuple[str, str, str]]:
    inputs = tuple(example_inputs(contract).values())
    rows = []

    def run(m, xs, autocast: bool) -> Callable[[], object]:
        def fn():
            with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16, enabled=autocast):
                m(*xs)
            if xs[0].is_cuda:
                torch.cuda.synchronize()
        return fn

    rows.append(('PyTorch eager CPU fp32',
                 f'{_median_ms(run(model, inputs, False), max(3, runs // 4)):.1f}',
                 f'{torch.get_num_threads()} threads'))
    if not torch.cuda.is_available():
        rows.append(('PyTorch eager CUDA', 'skipped', 'torch sees no CUDA device'))
        return rows
    gpu = model.cuda()
    xs = tuple(x.cuda() for x in inputs)
    for precision, autocast in (('fp32', False), ('fp16', True)):
        note = torch.cuda.get_device_name(0) + (' (autocast; head fp32)' if autocast else '')
        rows.append((f'PyTorch eager CUDA {precision}',
                     f'{_median_ms(run(gpu, xs, autocast), runs):.1f}', note))
    model.cpu()
    return rows


def _pipeline_rows(paths: Dict[str, str], camera: Tuple[int, int], runs: int, threads: int,
                   trt_cache: str, available: Sequence[str]) -> List[Tuple[str, str, str]]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=camera + (3,), dtype=np.uint8)
    rows = []
    for label, name in PROVIDERS:
        what = f'pipeline {camera[0]}p {label} fp32'
        if name not in available:
            rows.append((what, 'skipped', f'{name} not in this ONNX Runtime build'))
            continue
        try:
            pipe = MetricDepthPipeline(paths['fp32'], paths['relative'], [name],
                                       intra_op_threads=threads,
                                       provider_options=gpu_provider_options(
                                           trt_engine_cache_dir=trt_cache))
        except Exception as e:
            rows.append((what, 'failed', str(e).splitlines()[0][:100]))
            continue
        f = pipe.avs.contract.echo.features
        echo = (rng.standard_normal((2, f.window_samples)) * 0.05).astype(np.float32)
        ms = _median_ms(lambda: pipe.infer(rgb, echo, f.sample_rate), runs)
        rows.append((what, f'{ms:.1f}', f'AV + relative, STFT, scale, {camera[0]}x{camera[1]} '
                                        f'maps; {pipe.active_providers["avs"][0]}'))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run every measurement this machine allows and print one table."""
    p = argparse.ArgumentParser(description='CPU vs CUDA vs TensorRT, fp32 vs fp16.')
    p.add_argument('--sizes', nargs='+', default=['256x256', '384x512'])
    p.add_argument('--camera', default='720x1280')
    p.add_argument('--runs', type=int, default=20)
    p.add_argument('--threads', type=int, default=0, help='ONNX Runtime CPU threads (0: all)')
    p.add_argument('--trt-cache', default=os.path.join(tempfile.gettempdir(), 'avs_trt_cache'))
    args = p.parse_args(argv)
    available = ort.get_available_providers()
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes]
    camera = tuple(int(v) for v in args.camera.split('x'))
    table: List[Tuple[str, str, str, str]] = []
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, size in enumerate(sizes):
            paths, contract, model = _models(size, tmp)
            tag = f'{size[0]}x{size[1]}'
            rows = _torch_rows(model, contract, args.runs)
            rows += _ort_rows(paths, contract, args.runs, args.threads, args.trt_cache,
                              available)
            if i == 0:
                rows += _pipeline_rows(paths, camera, args.runs, args.threads, args.trt_cache,
                                       available)
            table += [(tag,) + r for r in rows]
    load = os.getloadavg()
    print(f'AVS-Net default AV model (random weights), batch 1; onnxruntime {ort.__version__} '
          f'with {", ".join(available)}; torch {torch.__version__}; {os.cpu_count()} CPUs; '
          f'load average {load[0]:.2f}; {time.time() - start:.0f} s')
    print('| size | what | median ms | notes |')
    print('|---|---|---:|---|')
    for tag, what, ms, note in table:
        print(f'| {tag} | {what} | {ms} | {note} |')


if __name__ == '__main__':
    main()
