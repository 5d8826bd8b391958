"""ONNX Runtime sessions for contract-following models, with execution-provider selection.

On a GPU the providers take options (``gpu_provider_options``): TensorRT's fp16 mode, its
engine cache folder (building engines takes minutes; the cache makes later starts fast) and
workspace; CUDA's device and convolution algorithm search. Sessions on a GPU provider bind
their inputs and output through ONNX Runtime's I/O binding, so a frame goes from the numpy
array straight to the device and the result straight back into host memory.
"""

import logging
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from avs_net_ros.core.contract import (contract_of, IMAGE_INPUT, ModelContract,
                                       read_onnx_graph)
from avs_net_ros.core.errors import ModelContractError
from avs_net_ros.core.foreign import ForeignModel, ForeignModelSpec, resolve_foreign

import numpy as np
import onnxruntime as ort

LOG = logging.getLogger(__name__)

#: Preference order when the caller does not choose: fastest first, CPU always last.
DEFAULT_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                     'CPUExecutionProvider')
_ALIASES = {'tensorrt': 'TensorrtExecutionProvider', 'trt': 'TensorrtExecutionProvider',
            'cuda': 'CUDAExecutionProvider', 'cpu': 'CPUExecutionProvider'}


def select_providers(requested: Sequence[str] = DEFAULT_PROVIDERS
                     ) -> Tuple[List[str], List[str]]:
    """Return (usable providers in the requested order, requested ones not available here).

    Short names ('tensorrt', 'cuda', 'cpu') are accepted. The CPU provider is always appended
    so a session can be created on any machine.
    """
    available = set(ort.get_available_providers())
    usable, missing = [], []
    for name in requested:
        full = _ALIASES.get(name.lower(), name)
        if full in usable:
            continue
        (usable if full in available else missing).append(full)
    if 'CPUExecutionProvider' not in usable:
        usable.append('CPUExecutionProvider')
    return usable, missing


def gpu_provider_options(device_id: int = 0, trt_fp16: bool = False,
                         trt_engine_cache_dir: str = '', trt_workspace_gib: float = 2.0,
                         cudnn_conv_algo_search: str = 'EXHAUSTIVE'
                         ) -> Dict[str, Dict[str, str]]:
    """Return provider options for the TensorRT and CUDA execution providers.

    Args:
        device_id: GPU index for both providers.
        trt_fp16: let TensorRT run layers in fp16 (it keeps float32 where fp16 would lose
            range; the model file stays float32).
        trt_engine_cache_dir: folder for TensorRT's built engines ('' = no cache: every start
            rebuilds them, which takes minutes for the default model).
        trt_workspace_gib: TensorRT's scratch memory limit per engine.
        cudnn_conv_algo_search: 'EXHAUSTIVE' (benchmark the algorithms on the first run),
            'HEURISTIC' or 'DEFAULT'.

    Raises:
        ValueError: a negative device or workspace, or an unknown search mode.

    """
    if device_id < 0 or trt_workspace_gib <= 0:
        raise ValueError(f'device_id must be >= 0 and trt_workspace_gib > 0, got {device_id}, '
                         f'{trt_workspace_gib}')
    if cudnn_conv_algo_search not in ('EXHAUSTIVE', 'HEURISTIC', 'DEFAULT'):
        raise ValueError(f'cudnn_conv_algo_search must be EXHAUSTIVE, HEURISTIC or DEFAULT, '
                         f'got {cudnn_conv_algo_search!r}')
    trt = {'device_id': str(device_id), 'trt_fp16_enable': str(bool(trt_fp16)),
           'trt_max_workspace_size': str(int(trt_workspace_gib * 2 ** 30))}
    if trt_engine_cache_dir:
        os.makedirs(trt_engine_cache_dir, exist_ok=True)
        trt.update(trt_engine_cache_enable='True', trt_engine_cache_path=trt_engine_cache_dir,
                   trt_timing_cache_enable='True', trt_timing_cache_path=trt_engine_cache_dir)
    cuda = {'device_id': str(device_id), 'cudnn_conv_algo_search': cudnn_conv_algo_search}
    return {'TensorrtExecutionProvider': trt, 'CUDAExecutionProvider': cuda}


class OnnxModel:
    """One ONNX model, its contract, and an inference session.

    A file without avs_net_ros metadata (a third-party relative model) is loaded when
    ``foreign`` describes it (``core.foreign``); ``foreign`` then holds what to feed and read,
    and ``contract`` is derived from the description. For a file with metadata, a
    description may only give the output kind: its metadata fixes how it is fed.
    """

    def __init__(self, path: str, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 intra_op_threads: int = 0, expected_kinds: Optional[Sequence[str]] = None,
                 provider_options: Optional[Mapping[str, Mapping[str, str]]] = None,
                 io_binding: Optional[bool] = None,
                 foreign: Optional[ForeignModelSpec] = None, spinning: bool = True) -> None:
        """Load ``path``, check its contract, and open a session on the best providers.

        ``spinning`` False stops ONNX Runtime's idle intra-op threads from spin-waiting for
        work: they then sleep, which costs a little on an idle CPU and saves a lot on a busy
        one, where spinning threads take cores from the processes the run waits for
        (``benchmarks.bench_model_latency`` measures both).

        ``provider_options`` maps full provider names to their options
        (``gpu_provider_options``); options of providers not used here are ignored.
        ``io_binding`` None = on when the first active provider is not the CPU.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ModelContractError: not an ONNX file, contract broken (no metadata and no
                ``foreign`` description: the message says what to give), a description that
                does not fit the graph, or an unexpected kind.

        """
        self.path = path
        self.spec = foreign
        self.foreign: Optional[ForeignModel] = None
        graph = read_onnx_graph(path)
        if foreign is not None and not graph.has_contract:
            self.foreign = resolve_foreign(foreign, graph)
            self.contract: ModelContract = self.foreign.contract
        else:
            self.contract = contract_of(graph)
            if foreign is not None and not foreign.feeds_as_default():
                changed = sorted(k for k, v in foreign.preprocessing().items()
                                 if v != ForeignModelSpec(foreign.output).preprocessing()[k])
                raise ModelContractError(
                    f'{path} carries avs_net_ros metadata, which fixes how it is fed; the '
                    f'third-party model settings {changed} apply only to files without it: '
                    'leave them at their defaults (the output kind may still be given)')
        #: Name of the image input tensor.
        self.image_input = self.foreign.input_name if self.foreign else IMAGE_INPUT
        if expected_kinds is not None and self.contract.kind not in expected_kinds:
            raise ModelContractError(f'{path} is a {self.contract.kind!r} model; expected one '
                                     f'of {tuple(expected_kinds)}')
        usable, missing = select_providers(providers)
        if missing:
            LOG.warning('execution providers not available here: %s', ', '.join(missing))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(intra_op_threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spinning:
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        opts = provider_options or {}
        chosen = [(p, dict(opts[p])) if p in opts else p for p in usable]
        try:
            self.session = ort.InferenceSession(path, options, providers=chosen)
        except Exception as e:  # ORT raises its own exception types per failure
            raise ModelContractError(f'ONNX Runtime cannot load {path}: {e}') from e
        self.active_providers: List[str] = list(self.session.get_providers())
        self._output = (self.foreign.output_name if self.foreign
                        else self.session.get_outputs()[0].name)
        self.io_binding = (self.active_providers[0] != 'CPUExecutionProvider'
                           if io_binding is None else bool(io_binding))

    def run(self, feeds: Dict[str, np.ndarray]) -> np.ndarray:
        """Run the model and return its single output."""
        if not self.io_binding:
            return self.session.run([self._output], feeds)[0]
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_output(self._output, 'cpu')
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]
