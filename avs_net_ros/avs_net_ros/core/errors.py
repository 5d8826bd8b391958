"""Exceptions raised by the core for inputs it cannot use.

Every error names what was wrong with the input (and, where it matters, what was expected), so a
node can log it and carry on with the next message.
"""


class AvsInputError(ValueError):
    """An input array has the wrong dtype, shape, sample rate or content."""


class NoDirectPathError(AvsInputError):
    """The matched filter found no chirp (direct path) in a recording."""


class EmptyMaskError(AvsInputError):
    """No pixel is valid for a scale fit or a metric."""


class ModelContractError(ValueError):
    """An ONNX model file does not follow the avs_net_ros model contract."""
