"""ONNX Runtime sessions for contract-following models, with execution-provider selection."""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.contract import ModelContract, read_onnx_contract
from avs_net_ros.core.errors import ModelContractError

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


class OnnxModel:
    """One ONNX model, its contract, and an inference session."""

    def __init__(self, path: str, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 intra_op_threads: int = 0, expected_kinds: Optional[Sequence[str]] = None
                 ) -> None:
        """Load ``path``, check its contract, and open a session on the best providers.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ModelContractError: not an ONNX file, contract broken, or an unexpected kind.

        """
        self.path = path
        self.contract: ModelContract = read_onnx_contract(path)
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
        try:
            self.session = ort.InferenceSession(path, options, providers=usable)
        except Exception as e:  # ORT raises its own exception types per failure
            raise ModelContractError(f'ONNX Runtime cannot load {path}: {e}') from e
        self.active_providers: List[str] = list(self.session.get_providers())
        self._output = self.session.get_outputs()[0].name

    def run(self, feeds: Dict[str, np.ndarray]) -> np.ndarray:
        """Run the model and return its single output."""
        return self.session.run([self._output], feeds)[0]
