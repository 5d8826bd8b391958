"""Declaring node parameters from one table, each with a ParameterDescriptor description.

A node lists its parameters as ``ParamSpec`` rows; ``declare_parameters`` declares them with
descriptors (description, allowed values, ranges, read-only) and returns the values after
checking choices (``check_choices``), so a wrong value fails at start (a lifecycle node: at
configure) with the parameter named. The same tables feed the tests that keep the YAML files in
config/ complete.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter's type) and documentation.

    Attributes:
        name: Parameter name.
        default: Default value; an int/float/str/bool/list of str.
        description: What it does, shown by ``ros2 param describe``.
        choices: Allowed values for strings, or None.
        value_range: (min, max) for numbers, inclusive, or None.
        read_only: Whether it can only be set at start (all of ours: the node reads it once).

    """

    name: str
    default: Any
    description: str
    choices: Optional[Tuple[str, ...]] = None
    value_range: Optional[Tuple[float, float]] = None
    read_only: bool = True

    def descriptor(self) -> ParameterDescriptor:
        """Return the ParameterDescriptor for this parameter."""
        d = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.choices:
            d.additional_constraints = 'one of: ' + ', '.join(self.choices)
        if self.value_range is not None:
            lo, hi = self.value_range
            if isinstance(self.default, int) and not isinstance(self.default, bool):
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
            else:
                d.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                             to_value=float(hi), step=0.0)]
        return d


def declare_parameters(node: Node, specs: Sequence[ParamSpec],
                       check: bool = True) -> Dict[str, Any]:
    """Declare ``specs`` on ``node`` and return {name: value}.

    ``check`` False leaves the choices to ``check_choices`` (lifecycle nodes declare their
    parameters at construction and check them in ``configure``, which then fails cleanly).

    Raises:
        ValueError: with ``check``, a string parameter is not one of its choices (rclpy
            itself rejects out-of-range numbers and wrong types with the parameter named).

    """
    values = {spec.name: node.declare_parameter(spec.name, spec.default,
                                                spec.descriptor()).value for spec in specs}
    if check:
        check_choices(specs, values)
    return values


def check_choices(specs: Sequence[ParamSpec], values: Dict[str, Any]) -> None:
    """Raise ValueError naming the first parameter in ``values`` outside its choices."""
    for spec in specs:
        if spec.choices and values[spec.name] not in spec.choices:
            raise ValueError(f'parameter {spec.name} = {values[spec.name]!r} is not one of '
                             f'{spec.choices}')
