"""The ONNX model contract: input/output names and the metadata a model must carry.

An exported model stores its own preprocessing in ONNX ``metadata_props`` so that the robot
cannot compute features that differ from training. The runtime reads these values and nothing
else. Images enter the graph as RGB float32 in [0, 1]; normalisation happens inside the graph.

Tensors (B = batch):

- ``image``: (B, 3, H, W) float32 RGB in [0, 1], H x W = the model's image size.
- ``echo_spectrogram`` (audio-visual models only): (B, channels, spec_h, spec_w) float32,
  the output of ``core.spectrogram.echo_spectrogram`` with the model's settings.
- ``depth`` (AVS-Net, both variants): (B, 1, H, W) float32 metric depth in metres.
- ``relative`` (relative-depth models): (B, 1, H', W') float32 relative depth or disparity.
"""

from dataclasses import dataclass, field
import os
from typing import Dict, List, Optional, Sequence, Tuple

from avs_net_ros.core.acoustics import echo_window_samples
from avs_net_ros.core.errors import ModelContractError
from avs_net_ros.core.scale import RELATIVE_OUTPUTS
from avs_net_ros.core.spectrogram import EchoFeatureConfig, StftConfig

CONTRACT_VERSION = 1
IMAGE_INPUT = 'image'
ECHO_INPUT = 'echo_spectrogram'
DEPTH_OUTPUT = 'depth'
RELATIVE_OUTPUT = 'relative'

KIND_AV = 'avs_av'
KIND_V = 'avs_v'
KIND_RELATIVE = 'relative'
MODEL_KINDS = (KIND_AV, KIND_V, KIND_RELATIVE)

PREFIX = 'avs_net.'
#: Metadata keys and what they hold; ``required_keys`` says which kinds need which.
METADATA_KEYS: Dict[str, str] = {
    'contract_version': 'integer version of this contract',
    'model_kind': f'one of {MODEL_KINDS}',
    'image_height': 'model input height in pixels',
    'image_width': 'model input width in pixels',
    'min_depth': 'smallest depth the model predicts (m)',
    'max_depth': 'largest depth the model predicts (m)',
    'sample_rate': 'echo sample rate (Hz)',
    'channels': 'echo channels (2 = left, right)',
    'n_fft': 'STFT size',
    'win_length': 'STFT Hann window length (samples)',
    'hop_length': 'STFT hop (samples)',
    'stft_power': 'exponent on the STFT magnitude',
    'echo_max_depth': 'range the echo window covers (m)',
    'speed_of_sound': 'speed of sound used to cut the echo window (m/s)',
    'echo_window_samples': 'samples of echo the model sees',
    'lead_in_samples': 'samples before the direct-path onset at the start of the window',
    'spec_height': 'spectrogram input height',
    'spec_width': 'spectrogram input width',
    'relative_output': f'one of {RELATIVE_OUTPUTS} (relative models)',
}
_COMMON = ('contract_version', 'model_kind', 'image_height', 'image_width')
_ECHO = ('sample_rate', 'channels', 'n_fft', 'win_length', 'hop_length', 'stft_power',
         'echo_max_depth', 'speed_of_sound', 'echo_window_samples', 'lead_in_samples',
         'spec_height', 'spec_width')
_INT_KEYS = {'contract_version', 'image_height', 'image_width', 'sample_rate', 'channels',
             'n_fft', 'win_length', 'hop_length', 'echo_window_samples', 'lead_in_samples',
             'spec_height', 'spec_width'}


def required_keys(kind: str) -> Tuple[str, ...]:
    """Metadata keys (without prefix) a model of ``kind`` must carry."""
    if kind == KIND_AV:
        return _COMMON + ('min_depth', 'max_depth') + _ECHO
    if kind == KIND_V:
        return _COMMON + ('min_depth', 'max_depth')
    return _COMMON + ('relative_output',)


def expected_io(kind: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(input names, output names) for a model of ``kind``."""
    if kind == KIND_AV:
        return (IMAGE_INPUT, ECHO_INPUT), (DEPTH_OUTPUT,)
    if kind == KIND_V:
        return (IMAGE_INPUT,), (DEPTH_OUTPUT,)
    return (IMAGE_INPUT,), (RELATIVE_OUTPUT,)


@dataclass(frozen=True)
class EchoContract:
    """How the echo is turned into the spectrogram input of an audio-visual model."""

    features: EchoFeatureConfig
    echo_max_depth: float
    speed_of_sound: float
    lead_in_samples: int = 0


@dataclass(frozen=True)
class ModelContract:
    """What the runtime needs to know to feed a model and read its output."""

    kind: str
    image_size: Tuple[int, int]
    min_depth: Optional[float] = None
    max_depth: Optional[float] = None
    echo: Optional[EchoContract] = None
    relative_output: Optional[str] = None
    version: int = CONTRACT_VERSION
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def takes_echo(self) -> bool:
        """Whether the model has the echo spectrogram input (AV)."""
        return self.kind == KIND_AV

    def to_metadata(self) -> Dict[str, str]:
        """Return the ``metadata_props`` entries (prefixed keys, string values)."""
        m: Dict[str, object] = {
            'contract_version': self.version, 'model_kind': self.kind,
            'image_height': self.image_size[0], 'image_width': self.image_size[1]}
        if self.kind in (KIND_AV, KIND_V):
            m.update(min_depth=self.min_depth, max_depth=self.max_depth)
        if self.kind == KIND_AV:
            e = self.echo
            f = e.features
            m.update(sample_rate=f.sample_rate, channels=f.channels, n_fft=f.stft.n_fft,
                     win_length=f.stft.win_length, hop_length=f.stft.hop_length,
                     stft_power=f.stft.power, echo_max_depth=e.echo_max_depth,
                     speed_of_sound=e.speed_of_sound, echo_window_samples=f.window_samples,
                     lead_in_samples=e.lead_in_samples, spec_height=f.spec_size[0],
                     spec_width=f.spec_size[1])
        if self.kind == KIND_RELATIVE:
            m['relative_output'] = self.relative_output
        out = {PREFIX + k: str(v) for k, v in m.items()}
        out.update(self.extra)
        return out

    @classmethod
    def from_metadata(cls, metadata: Dict[str, str], inputs: Optional[Dict[str, Sequence]] = None,
                      outputs: Optional[Dict[str, Sequence]] = None,
                      source: str = 'model') -> 'ModelContract':
        """Parse and check a model's metadata (and, if given, its input/output shapes).

        Raises:
            ModelContractError: listing every problem found, not only the first.

        """
        problems: List[str] = []
        meta = {k[len(PREFIX):]: v for k, v in metadata.items() if k.startswith(PREFIX)}
        kind = meta.get('model_kind')
        if kind not in MODEL_KINDS:
            problems.append(f'metadata {PREFIX}model_kind is {kind!r}, expected one of '
                            f'{MODEL_KINDS}')
            _raise(source, problems + _missing(meta, _COMMON))
        problems += _missing(meta, required_keys(kind))
        values: Dict[str, object] = {}
        for k in required_keys(kind):
            if k not in meta or k == 'model_kind':
                continue
            try:
                values[k] = int(meta[k]) if k in _INT_KEYS else (
                    meta[k] if k == 'relative_output' else float(meta[k]))
            except ValueError:
                problems.append(f'metadata {PREFIX}{k} = {meta[k]!r} is not a number')
        if problems:
            _raise(source, problems)
        if values['contract_version'] != CONTRACT_VERSION:
            problems.append(f'contract version {values["contract_version"]} is not supported '
                            f'(this runtime reads version {CONTRACT_VERSION})')
        if kind == KIND_RELATIVE and values['relative_output'] not in RELATIVE_OUTPUTS:
            problems.append(f'{PREFIX}relative_output must be one of {RELATIVE_OUTPUTS}, got '
                            f'{values["relative_output"]!r}')
        if kind != KIND_RELATIVE and not 0 <= values['min_depth'] < values['max_depth']:
            problems.append(f'min_depth {values["min_depth"]} / max_depth '
                            f'{values["max_depth"]} are not an interval')
        echo = None
        if kind == KIND_AV:
            echo, more = _echo_contract(values)
            problems += more
        problems += _check_io(kind, values, inputs, outputs)
        if problems:
            _raise(source, problems)
        return cls(kind=kind, image_size=(values['image_height'], values['image_width']),
                   min_depth=values.get('min_depth'), max_depth=values.get('max_depth'),
                   echo=echo, relative_output=values.get('relative_output'),
                   version=values['contract_version'])


def _missing(meta: Dict[str, str], keys: Sequence[str]) -> List[str]:
    return [f'metadata key {PREFIX}{k} ({METADATA_KEYS[k]}) is missing'
            for k in keys if k not in meta]


def _raise(source: str, problems: List[str]) -> None:
    raise ModelContractError(f'{source} does not follow the avs_net_ros model contract v'
                             f'{CONTRACT_VERSION}:\n  - ' + '\n  - '.join(problems))


def _echo_contract(v: Dict[str, object]) -> Tuple[Optional[EchoContract], List[str]]:
    problems = []
    try:
        stft = StftConfig(n_fft=v['n_fft'], win_length=v['win_length'],
                          hop_length=v['hop_length'], power=v['stft_power'])
    except ValueError as e:
        return None, [f'STFT settings are invalid: {e}']
    window = echo_window_samples(v['echo_max_depth'], v['sample_rate'], v['speed_of_sound'])
    if window != v['echo_window_samples']:
        problems.append(f'echo_window_samples {v["echo_window_samples"]} disagrees with '
                        f'echo_max_depth {v["echo_max_depth"]} m at {v["speed_of_sound"]} m/s '
                        f'and {v["sample_rate"]} Hz (= {window})')
    features = EchoFeatureConfig(sample_rate=v['sample_rate'], window_samples=window,
                                 stft=stft, spec_size=(v['spec_height'], v['spec_width']),
                                 channels=v['channels'])
    return EchoContract(features, v['echo_max_depth'], v['speed_of_sound'],
                        v['lead_in_samples']), problems


def _check_io(kind: str, v: Dict[str, object], inputs: Optional[Dict[str, Sequence]],
              outputs: Optional[Dict[str, Sequence]]) -> List[str]:
    if inputs is None or outputs is None:
        return []
    problems = []
    want_in, want_out = expected_io(kind)
    if sorted(inputs) != sorted(want_in):
        problems.append(f'inputs are {sorted(inputs)}, a {kind} model needs {list(want_in)}')
    if sorted(outputs) != sorted(want_out):
        problems.append(f'outputs are {sorted(outputs)}, a {kind} model needs {list(want_out)}')
    shapes = {IMAGE_INPUT: (3, v['image_height'], v['image_width'])}
    if kind == KIND_AV:
        shapes[ECHO_INPUT] = (v['channels'], v['spec_height'], v['spec_width'])
    for name, want in shapes.items():
        got = inputs.get(name)
        if got is None:
            continue
        fixed = list(got)[1:]
        if len(got) != 4 or any(isinstance(d, int) and d != w for d, w in zip(fixed, want)):
            problems.append(f'input {name!r} has shape {list(got)}, expected [batch, '
                            f'{", ".join(map(str, want))}]')
    return problems


#: What to tell the user of a model without metadata: how to describe a third-party model.
FOREIGN_HINT = (
    'A third-party relative-depth model (MiDaS, Depth Anything, ZoeDepth, ...) can be the '
    'relative model once its output kind is given: the depth_inference parameter '
    'relative_output (or a parameter file like config/foreign/*.yaml), avs_eval_bag '
    '--relative-set NAME.output=KIND (or --relative-params NAME=FILE.yaml), or '
    'MetricDepthPipeline(relative_output=KIND); KIND is one of '
    + ', '.join(RELATIVE_OUTPUTS) + '. `avs_validate_model FILE` prints its inputs and '
    'outputs and a suggested description.')


@dataclass(frozen=True)
class OnnxGraph:
    """What an ONNX file declares, read without its weights.

    Attributes:
        path: The file.
        metadata: All ``metadata_props`` (prefixed keys).
        inputs: Graph inputs (initialisers excluded): name -> dims (int, or the symbolic
            name / '?' of a dynamic axis), in graph order.
        outputs: Graph outputs: name -> dims, in graph order.
        types: Element type name ('FLOAT', 'FLOAT16', 'UINT8', ...) of each input and output.

    """

    path: str
    metadata: Dict[str, str]
    inputs: Dict[str, List[object]]
    outputs: Dict[str, List[object]]
    types: Dict[str, str]

    @property
    def has_contract(self) -> bool:
        """Whether the file carries any avs_net_ros metadata (``avs_net.*`` keys)."""
        return any(k.startswith(PREFIX) for k in self.metadata)


def read_onnx_graph(path: str) -> OnnxGraph:
    """Read an ONNX file's metadata, inputs and outputs without loading its weights.

    Raises:
        FileNotFoundError: the file does not exist (the path is named).
        ModelContractError: the file is not a readable ONNX model.

    """
    import onnx  # only reading files needs the onnx package

    if not os.path.isfile(path):
        raise FileNotFoundError(f'model file not found: {path}')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf raises several types for garbage input
        raise ModelContractError(f'{path} is not a readable ONNX model: {e}') from e
    if not model.graph.node:
        raise ModelContractError(f'{path} is not a readable ONNX model: it has no graph nodes')
    init = {i.name for i in model.graph.initializer}
    values = [i for i in model.graph.input if i.name not in init] + list(model.graph.output)
    types = {v.name: onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
             for v in values}
    return OnnxGraph(path, {p.key: p.value for p in model.metadata_props},
                     {i.name: _dims(i) for i in model.graph.input if i.name not in init},
                     {o.name: _dims(o) for o in model.graph.output}, types)


def contract_of(graph: OnnxGraph) -> ModelContract:
    """Check and return the contract of a read graph (``read_onnx_graph``).

    Raises:
        ModelContractError: the metadata is missing (the message says how to use a
            third-party model) or breaks the contract.

    """
    if not graph.has_contract:
        raise ModelContractError(
            f'{graph.path} carries no avs_net_ros metadata ({PREFIX}* keys): it was not '
            f'exported by training.export. {FOREIGN_HINT}')
    return ModelContract.from_metadata(graph.metadata, graph.inputs, graph.outputs,
                                       source=graph.path)


def read_onnx_contract(path: str) -> ModelContract:
    """Read and check the contract of an ONNX file without loading its weights.

    Raises:
        FileNotFoundError: the file does not exist (the path is named).
        ModelContractError: the file is not an ONNX model, or does not follow the contract
            (without any metadata: the message says how to use a third-party model).

    """
    return contract_of(read_onnx_graph(path))


def _dims(value_info) -> List[object]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?') for d in dims]
