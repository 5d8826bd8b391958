"""Describing a third-party relative-depth model: an ONNX file without avs_net_ros metadata.

A MiDaS, Depth Anything or ZoeDepth ONNX file does not say how to feed it or what it outputs.
``ForeignModelSpec`` says it: output kind, input size (fixed, or a rule for graphs with
dynamic height and width), normalisation (pixel range, mean/std, channel order) and tensor
names. The same description is built from the depth_inference node's ``relative_*``
parameters, from avs_eval_bag's ``--relative-set`` options, from a parameter file like
``config/foreign/*.yaml``, or in code, and ``MetricDepthPipeline`` uses it in all cases.
``resolve_foreign`` checks it against the file's graph and gives the ``ForeignModel`` the
runtime feeds; ``suggest_spec`` proposes one for a file (``avs_validate_model``).
"""

from dataclasses import asdict, dataclass
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from avs_net_ros.core.contract import KIND_RELATIVE, ModelContract, OnnxGraph
from avs_net_ros.core.errors import AvsInputError, ModelContractError
from avs_net_ros.core.scale import (default_scale_method, output_relative_kind,
                                    RELATIVE_OUTPUTS)

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNEL_ORDERS = ('RGB', 'BGR')
#: Prefix of the description's fields as depth_inference parameters and in parameter files.
PARAM_PREFIX = 'relative_'

#: Every field of ``ForeignModelSpec`` and what it means; the node's parameter descriptions,
#: avs_eval_bag's help and the config files use these words.
FIELDS: Dict[str, str] = {
    'output': 'What the model outputs: depth or disparity (right up to a scale), '
              'affine_disparity (disparity up to a scale and a shift: MiDaS, Depth Anything) '
              'or metric_depth (a zero-shot metric model such as ZoeDepth, used as relative '
              "depth). 'auto' scaling picks scale_shift for affine_disparity, median otherwise.",
    'input_size': "[height, width] the image is resized to; [0, 0] = the graph's fixed input "
                  'size, or the short_side rule when its height and width are dynamic.',
    'short_side': 'For a graph with dynamic height and width and no input_size: resize the '
                  'camera image, aspect ratio kept, so that its shorter side has this many '
                  'pixels (Depth Anything: 518, MiDaS DPT: 384); 0 = not set.',
    'size_multiple': 'Each fed side is rounded to a multiple of this (Depth Anything: 14, '
                     'MiDaS: 32); 1 = any size.',
    'mean': 'Per-channel mean subtracted after pixels are scaled to [0, pixel_range], in the '
            'fed channel order (ImageNet, the default: 0.485, 0.456, 0.406 for RGB).',
    'std': 'Per-channel standard deviation divided by after the mean, in the fed channel '
           'order (ImageNet, the default: 0.229, 0.224, 0.225 for RGB).',
    'channel_order': 'Channel order the graph expects: RGB or BGR.',
    'pixel_range': 'Value of a white pixel before mean/std: 1.0 for inputs in [0, 1], 255.0 '
                   'for [0, 255].',
    'input_name': "Name of the image input tensor; empty = the graph's only input.",
    'output_name': "Name of the output tensor to read; empty = the graph's first output.",
}


def _numbers(value: Any, n: int, kind: type, name: str) -> Tuple:
    if isinstance(value, str):
        value = [v for v in value.replace('x', ',').replace(' ', ',').split(',') if v]
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise AvsInputError(f'{name} must be {n} numbers, got {value!r}') from None
    if len(out) != n:
        raise AvsInputError(f'{name} must be {n} numbers, got {value!r}')
    return out


@dataclass(frozen=True)
class ForeignModelSpec:
    """How to feed a relative-depth model that has no avs_net_ros metadata; see ``FIELDS``.

    Values are checked (and strings such as '256x256' or '0.5,0.5,0.5' parsed) on creation.

    Raises:
        AvsInputError: every bad value, named, in one message.

    """

    output: str
    input_size: Tuple[int, int] = (0, 0)
    short_side: int = 0
    size_multiple: int = 1
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    channel_order: str = 'RGB'
    pixel_range: float = 1.0
    input_name: str = ''
    output_name: str = ''

    def __post_init__(self) -> None:
        """Parse and check every field."""
        problems: List[str] = []

        def put(name: str, parse: Any) -> None:
            try:
                object.__setattr__(self, name, parse(getattr(self, name)))
            except AvsInputError as e:
                problems.append(str(e))
            except (TypeError, ValueError):
                problems.append(f'{name} = {getattr(self, name)!r} is not valid')

        put('input_size', lambda v: _numbers(v, 2, int, 'input_size'))
        put('mean', lambda v: _numbers(v, 3, float, 'mean'))
        put('std', lambda v: _numbers(v, 3, float, 'std'))
        put('short_side', int)
        put('size_multiple', int)
        put('pixel_range', float)
        put('channel_order', lambda v: str(v).upper())
        put('input_name', str)
        put('output_name', str)
        if self.output not in RELATIVE_OUTPUTS:
            problems.append(f'output = {self.output!r} is not one of {RELATIVE_OUTPUTS}')
        if not problems:
            problems += self._range_problems()
        if problems:
            raise AvsInputError('third-party model description: ' + '; '.join(problems))

    def _range_problems(self) -> List[str]:
        problems = []
        h, w = self.input_size
        if (h, w) != (0, 0) and (h <= 0 or w <= 0):
            problems.append(f'input_size must be positive or [0, 0], got {[h, w]}')
        if self.short_side < 0:
            problems.append(f'short_side must be >= 0, got {self.short_side}')
        if self.size_multiple < 1:
            problems.append(f'size_multiple must be >= 1, got {self.size_multiple}')
        elif h and (h % self.size_multiple or w % self.size_multiple):
            problems.append(f'input_size {[h, w]} is not a multiple of size_multiple '
                            f'{self.size_multiple}')
        if not all(s > 0 for s in self.std):
            problems.append(f'std must be positive, got {list(self.std)}')
        if self.pixel_range <= 0:
            problems.append(f'pixel_range must be positive, got {self.pixel_range}')
        if self.channel_order not in CHANNEL_ORDERS:
            problems.append(f'channel_order must be one of {CHANNEL_ORDERS}, got '
                            f'{self.channel_order!r}')
        return problems

    @property
    def scale_method(self) -> str:
        """The scale method that suits ``output`` (core.scale.default_scale_method)."""
        return default_scale_method(self.output)

    @property
    def relative_kind(self) -> str:
        """'depth' or 'disparity': how the output is turned into depth."""
        return output_relative_kind(self.output)

    def preprocessing(self) -> Dict[str, Any]:
        """Every field but ``output``: what decides how the model is fed."""
        d = asdict(self)
        del d['output']
        return d

    def feeds_as_default(self) -> bool:
        """Whether the preprocessing fields all have their defaults (only output was given)."""
        return self.preprocessing() == ForeignModelSpec(self.output).preprocessing()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = '') -> 'ForeignModelSpec':
        """Build from {field: value} (values may be strings, as on a command line).

        Raises:
            AvsInputError: an unknown field (the known ones are listed), a missing output,
                or a bad value; ``source`` says where the values came from.

        """
        where = f' ({source})' if source else ''
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise AvsInputError(f'unknown third-party model field(s) {unknown}{where}; known: '
                                f'{list(FIELDS)}')
        if not values.get('output'):
            raise AvsInputError(f'third-party model description{where} has no output kind; '
                                f'give output, one of {RELATIVE_OUTPUTS}')
        try:
            return cls(**dict(values))
        except AvsInputError as e:
            raise AvsInputError(f'{e}{where}') from None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], prefix: str = PARAM_PREFIX,
                    source: str = 'parameters') -> Optional['ForeignModelSpec']:
        """Build from ``relative_<field>`` parameters; None when ``relative_output`` is empty.

        Other keys (and ``relative_model``) are ignored, so a node's whole parameter set or
        parameter file can be passed.

        Raises:
            AvsInputError: a preprocessing parameter is set while the output kind is empty,
                an unknown ``relative_*`` key, or a bad value.

        """
        values = {k[len(prefix):]: v for k, v in params.items()
                  if k.startswith(prefix) and k != prefix + 'model'}
        if not values.get('output'):
            set_ = sorted(prefix + k for k, v in values.items()
                          if k in FIELDS and k != 'output' and not _is_default(k, v))
            if set_:
                raise AvsInputError(f'{", ".join(set_)} ({source}) describe a third-party '
                                    f'model but {prefix}output is empty; set it to one of '
                                    f'{RELATIVE_OUTPUTS}')
            return None
        unknown = sorted(prefix + k for k in set(values) - set(FIELDS))
        if unknown:
            raise AvsInputError(f'unknown parameter(s) {unknown} ({source}); known: '
                                f'{[prefix + k for k in FIELDS]}')
        return cls.from_mapping(values, source)

    def to_params(self, prefix: str = PARAM_PREFIX) -> Dict[str, Any]:
        """Return ``relative_<field>`` parameters (lists for tuples), as a parameter file has."""
        return {prefix + k: list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}


def _is_default(name: str, value: Any) -> bool:
    default = getattr(ForeignModelSpec('depth'), name)
    try:
        if isinstance(default, tuple):
            return _numbers(value, len(default), type(default[0]), name) == default
        return type(default)(value) == default
    except (AvsInputError, TypeError, ValueError):
        return False


def read_spec_file(path: str) -> ForeignModelSpec:
    """Read a description from a YAML file of ``relative_*`` keys.

    The file is either a ROS 2 parameter file (``<node>: ros__parameters: {...}``, as in
    config/foreign/, which depth_inference reads with --params-file too) or a flat mapping.

    Raises:
        FileNotFoundError: no such file.
        AvsInputError: not a mapping, no ``relative_output``, or a bad value.

    """
    import yaml  # only reading description files needs it

    if not os.path.isfile(path):
        raise FileNotFoundError(f'third-party model description not found: {path}')
    try:
        data = yaml.safe_load(open(path))
    except yaml.YAMLError as e:
        raise AvsInputError(f'{path} is not valid YAML: {e}') from None
    if isinstance(data, dict) and len(data) == 1:
        (body,) = data.values()
        if isinstance(body, dict) and 'ros__parameters' in body:
            data = body['ros__parameters']
    if not isinstance(data, dict):
        raise AvsInputError(f'{path} must hold a mapping of {PARAM_PREFIX}* keys')
    spec = ForeignModelSpec.from_params(data, source=path)
    if spec is None:
        raise AvsInputError(f'{path} has no {PARAM_PREFIX}output; set it to one of '
                            f'{RELATIVE_OUTPUTS}')
    return spec


def _round(x: float, multiple: int) -> int:
    return max(multiple, int(math.floor(x / multiple + 0.5)) * multiple)  # halves round up


@dataclass(frozen=True)
class ForeignModel:
    """A description checked against a graph: what the runtime feeds and reads.

    Attributes:
        spec: The description.
        input_name: The image input's name.
        output_name: The output read.
        fixed_size: (height, width) every image is resized to, or None when it follows the
            camera image (``short_side`` rule, dynamic graphs).

    """

    spec: ForeignModelSpec
    input_name: str
    output_name: str
    fixed_size: Optional[Tuple[int, int]]

    def input_size(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """Return the (height, width) fed for a camera image of size ``hw``."""
        if self.fixed_size is not None:
            return self.fixed_size
        h, w = hw
        s = self.spec.short_side / min(h, w)
        m = self.spec.size_multiple
        return _round(h * s, m), _round(w * s, m)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Normalise a (1, 3, h, w) RGB float32 image in [0, 1] as the model expects."""
        s = self.spec
        x = image[:, ::-1] if s.channel_order == 'BGR' else image
        mean = np.asarray(s.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(s.std, np.float32).reshape(1, 3, 1, 1)
        return np.ascontiguousarray((x * np.float32(s.pixel_range) - mean) / std,
                                    dtype=np.float32)

    @property
    def contract(self) -> ModelContract:
        """Return the relative-model contract: image size fixed, or that fed for a square image."""
        side = self.spec.short_side
        return ModelContract(KIND_RELATIVE, self.input_size((side, side)),
                             relative_output=self.spec.output)


_FLOATS = ('FLOAT', 'FLOAT16', 'DOUBLE')


def resolve_foreign(spec: ForeignModelSpec, graph: OnnxGraph) -> ForeignModel:
    """Check ``spec`` against ``graph`` (``read_onnx_graph``) and return what to feed.

    Raises:
        ModelContractError: every mismatch (input or output not found, not a 3-channel
            float image input, a size that contradicts the graph, a dynamic size without
            input_size or short_side), each saying which field to set.

    """
    problems: List[str] = []
    inputs, outputs = graph.inputs, graph.outputs
    name = spec.input_name
    if not name:
        if len(inputs) == 1:
            name = next(iter(inputs))
        else:
            problems.append(f'the graph has inputs {list(inputs)}: name the image one '
                            '(input_name)')
    elif name not in inputs:
        problems.append(f'input_name {name!r} is not an input of the graph; it has '
                        f'{list(inputs)}')
    out = spec.output_name or next(iter(outputs), '')
    if out not in outputs:
        problems.append(f'output_name {out!r} is not an output of the graph; it has '
                        f'{list(outputs)}')
    elif graph.types.get(out, 'FLOAT') not in _FLOATS:
        problems.append(f'output {out!r} is {graph.types[out]}, not a float tensor')
    else:
        dims = outputs[out]
        if dims and (len(dims) not in (2, 3, 4) or (len(dims) == 4 and dims[1] not in (1, '?')
                                                    and isinstance(dims[1], int))):
            problems.append(f'output {out!r} has shape {dims}: expected one map, [batch, 1, '
                            'height, width], [batch, height, width] or [height, width]')
    fixed = None
    if name in inputs:
        dims = inputs[name]
        if graph.types.get(name, 'FLOAT') != 'FLOAT':
            problems.append(f'input {name!r} is {graph.types[name]}; only float32 image '
                            'inputs are fed')
        if len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != 3):
            problems.append(f'input {name!r} has shape {dims}: expected [batch, 3, height, '
                            'width] (NCHW)')
        else:
            fixed, more = _size(spec, dims[2], dims[3])
            problems += more
    if problems:
        raise ModelContractError(f'{graph.path} cannot be used as a third-party relative '
                                 'model with this description:\n  - ' + '\n  - '.join(problems))
    return ForeignModel(spec, name, out, fixed)


def _size(spec: ForeignModelSpec, gh: object, gw: object
          ) -> Tuple[Optional[Tuple[int, int]], List[str]]:
    static = [d if isinstance(d, int) and d > 0 else None for d in (gh, gw)]
    given = spec.input_size if spec.input_size != (0, 0) else None
    if given is not None:
        bad = [f'{what} {d}' for what, d, g in zip(('height', 'width'), static, given)
               if d is not None and d != g]
        if bad:
            return None, [f"input_size {list(given)} contradicts the graph's fixed "
                          f'{", ".join(bad)}']
        return given, []
    if all(d is not None for d in static):
        if spec.short_side:
            return None, [f'short_side {spec.short_side} is for dynamic graphs; this one '
                          f'takes a fixed {static[0]}x{static[1]} (set short_side to 0)']
        if static[0] % spec.size_multiple or static[1] % spec.size_multiple:
            return None, [f"the graph's fixed size {static[0]}x{static[1]} is not a multiple "
                          f'of size_multiple {spec.size_multiple}']
        return (static[0], static[1]), []
    if any(d is not None for d in static):
        return None, [f'the graph fixes only part of the size ({gh} x {gw}): give input_size']
    if not spec.short_side:
        return None, [f"the graph's height and width are dynamic ({gh} x {gw}): give "
                      'input_size (a fixed size) or short_side (resize the camera image, '
                      'aspect kept), with size_multiple if the model needs one']
    return None, []


#: File-name hints -> (output, short_side, size_multiple, mean, std) of public releases.
_HINTS = (
    (('depth_anything', 'depth-anything', 'depthanything'),
     ('affine_disparity', 518, 14, IMAGENET_MEAN, IMAGENET_STD)),
    (('zoe',), ('metric_depth', 384, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),
    (('dpt',), ('affine_disparity', 384, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),
    (('midas',), ('affine_disparity', 384, 32, IMAGENET_MEAN, IMAGENET_STD)),
)


def suggest_spec(graph: OnnxGraph) -> Tuple[Dict[str, Any], List[str]]:
    """Propose ``relative_*`` parameters for a file without metadata, with notes.

    What the graph shows (input, output, fixed or dynamic size) is read from it; what it
    cannot show (output kind, normalisation, size for dynamic graphs) is guessed from the
    file name where it names a known family, else left to fill in (output '').
    """
    notes: List[str] = []
    base = os.path.basename(graph.path).lower()
    hint = next((h for names, h in _HINTS if any(n in base for n in names)), None)
    values: Dict[str, Any] = {'output': ''}
    if hint:
        values.update(output=hint[0], mean=list(hint[3]), std=list(hint[4]))
        notes.append(f'output kind and normalisation guessed from the file name ({hint[0]}); '
                     "check them against the model's documentation")
    else:
        notes.append('output kind unknown: set relative_output (MiDaS, Depth Anything: '
                     'affine_disparity; ZoeDepth: metric_depth)')
        notes.append('normalisation unknown: ImageNet mean/std assumed')
    images = [n for n, d in graph.inputs.items()
              if len(d) == 4 and (d[1] == 3 or not isinstance(d[1], int))]
    if len(graph.inputs) > 1:
        values['input_name'] = images[0] if images else ''
        notes.append(f'several inputs {list(graph.inputs)}: input_name picks the image')
    if len(graph.outputs) > 1:
        values['output_name'] = next(iter(graph.outputs))
        notes.append(f'several outputs {list(graph.outputs)}: the first is read')
    name = values.get('input_name') or next(iter(graph.inputs), '')
    dims = graph.inputs.get(name, [])
    if len(dims) == 4 and not (isinstance(dims[2], int) and isinstance(dims[3], int)
                               and dims[2] > 0 and dims[3] > 0):
        side, multiple = (hint[1], hint[2]) if hint else (384, 32)
        values.update(short_side=side, size_multiple=multiple)
        notes.append(f'dynamic height and width: short_side {side}, size_multiple {multiple} '
                     + ('from the file name' if hint else 'are a guess'))
    values = {k: v for k, v in values.items()
              if k == 'output' or not _is_default(k, v)}
    return {PARAM_PREFIX + k: v for k, v in values.items()}, notes
