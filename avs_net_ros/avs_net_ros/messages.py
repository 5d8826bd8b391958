"""numpy <-> ROS message conversion: images, binaural echoes and the echo info (no cv_bridge).

The readers are duck-typed: they take rclpy messages and the rosbags dataclasses alike (any
object with the sensor_msgs/Image fields), so replay tools and nodes share one implementation.
The writers build rclpy messages (``sensor_msgs``/``std_msgs`` are imported when called).

Conventions (README "The nodes", REP 118):

- Images: rgb8, bgr8, mono8, 32FC1, 16UC1 (plus mono16). ``step`` may include row padding;
  ``is_bigendian`` is honoured for multi-byte pixels.
- Echoes: 32FC1 Image, height = channels (row 0 left, row 1 right), width = samples,
  header.stamp = the stamp of the camera frame the chirp belongs to.
- Echo info: std_msgs/String holding JSON with the keys in ``ECHO_INFO_KEYS``.
"""

import array as pyarray
from dataclasses import asdict, dataclass, field
import json
import sys
from typing import Any, Dict, Optional, Tuple

from avs_net_ros.core.errors import AvsInputError

import numpy as np


class ImageConversionError(AvsInputError):
    """An Image message cannot be turned into an array (or an array into a message)."""


#: encoding -> (numpy dtype, channels)
ENCODINGS: Dict[str, Tuple[np.dtype, int]] = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'mono8': (np.dtype(np.uint8), 1),
    'mono16': (np.dtype(np.uint16), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}
#: Encodings a camera image may have for the depth pipeline (README "The nodes").
CAMERA_ENCODINGS = ('rgb8', 'bgr8', 'mono8')
ECHO_ENCODING = '32FC1'
_HOST_BIGENDIAN = sys.byteorder == 'big'


def stamp_to_ns(stamp: Any) -> int:
    """Return a builtin_interfaces/Time (``sec``, ``nanosec``) as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int, stamp: Any = None) -> Any:
    """Fill (or create) a builtin_interfaces/Time from integer nanoseconds."""
    if stamp is None:
        from builtin_interfaces.msg import Time
        stamp = Time()
    stamp.sec, stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return stamp


def image_to_array(msg: Any) -> np.ndarray:
    """Return the pixels of an Image as (H, W) or (H, W, C) in the encoding's dtype.

    The array is read-only when it views the message buffer (no copy for unpadded,
    native-endian images); copy it before writing.

    Raises:
        ImageConversionError: unsupported encoding, or step/size inconsistent with the
            dimensions.

    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(ENCODINGS)}')
    dtype, channels = ENCODINGS[encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * dtype.itemsize
    if h <= 0 or w <= 0:
        raise ImageConversionError(f'{encoding} image has no pixels ({w}x{h})')
    if step < row_bytes:
        raise ImageConversionError(
            f'{encoding} image step {step} is smaller than width {w} x {channels} channel(s) x '
            f'{dtype.itemsize} byte(s) = {row_bytes}')
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if raw.size != step * h:
        raise ImageConversionError(
            f'{encoding} image data has {raw.size} bytes, expected step {step} x height {h} = '
            f'{step * h}')
    rows = raw.reshape(h, step)[:, :row_bytes]
    if step != row_bytes:
        rows = np.ascontiguousarray(rows)  # drop the row padding
    px = rows.view(dtype.newbyteorder('>' if msg.is_bigendian else '<'))
    if px.dtype != dtype:
        px = px.astype(dtype)  # byte-swapped copy in native order
    return px.reshape((h, w) if channels == 1 else (h, w, channels))


def image_to_rgb(msg: Any) -> np.ndarray:
    """Return a camera Image (rgb8, bgr8 or mono8) as (H, W, 3) uint8 RGB.

    Raises:
        ImageConversionError: the encoding is not a camera encoding the pipeline takes.

    """
    if msg.encoding not in CAMERA_ENCODINGS:
        raise ImageConversionError(
            f'camera image encoding {msg.encoding!r} is not supported; publish one of '
            f'{", ".join(CAMERA_ENCODINGS)}')
    px = image_to_array(msg)
    if msg.encoding == 'rgb8':
        return px
    if msg.encoding == 'bgr8':
        return px[..., ::-1]
    return np.repeat(px[..., None], 3, axis=2)


def array_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """Build a sensor_msgs/Image from an array whose dtype and shape fit ``encoding``.

    Raises:
        ImageConversionError: unknown encoding, or a dtype/shape that does not match it.

    """
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(ENCODINGS)}')
    dtype, channels = ENCODINGS[encoding]
    a = np.asarray(array)
    want = 2 if channels == 1 else 3
    if a.ndim != want or (channels > 1 and a.shape[2] != channels):
        raise ImageConversionError(
            f'{encoding} needs an array of shape (H, W{"" if channels == 1 else ", 3"}), got '
            f'{a.shape}')
    if a.dtype != dtype:
        raise ImageConversionError(f'{encoding} needs dtype {dtype}, got {a.dtype}')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_HOST_BIGENDIAN)
    msg.step = msg.width * channels * dtype.itemsize
    data = pyarray.array('B')
    data.frombytes(memoryview(np.ascontiguousarray(a)).cast('B'))  # one copy, no bytes object
    msg.data = data
    return msg


def echo_to_image(echo: np.ndarray, header: Any = None) -> Any:
    """Build the ``echoes`` Image from a (channels, samples) float array (row 0 = left)."""
    e = np.asarray(echo)
    if e.ndim != 2 or not np.issubdtype(e.dtype, np.floating):
        raise ImageConversionError(
            f'echo must be a (channels, samples) float array, got {e.dtype} {e.shape}')
    return array_to_image(e.astype(np.float32, copy=False), ECHO_ENCODING, header)


def image_to_echo(msg: Any) -> np.ndarray:
    """Return the ``echoes`` Image as a (channels, samples) float32 array.

    Raises:
        ImageConversionError: the message is not 32FC1 or its layout is inconsistent.

    """
    if msg.encoding != ECHO_ENCODING:
        raise ImageConversionError(
            f'echo message encoding is {msg.encoding!r}, expected {ECHO_ENCODING!r} '
            f'(rows = channels, columns = samples)')
    return image_to_array(msg)


#: Keys of the echo info JSON and what they hold.
ECHO_INFO_KEYS = {
    'sample_rate': 'samples per second of the echoes (Hz)',
    'channels': 'rows of the echoes image (2 = left, right)',
    'window_samples': 'samples per echo message',
    'lead_in_samples': 'samples before the direct-path onset at the start of each echo',
    'speed_of_sound': 'speed of sound used to cut the window (m/s)',
    'max_range': 'range the echo window covers (m)',
    'chirp': 'chirp settings (core.acoustics.ChirpConfig fields)',
    'alignment': 'how the direct path was found (method, thresholds)',
    'backend': 'audio backend that recorded the echoes',
}
_ECHO_INFO_NUMBERS = ('sample_rate', 'channels', 'window_samples', 'lead_in_samples',
                      'speed_of_sound', 'max_range')


@dataclass(frozen=True)
class EchoInfo:
    """Contents of the latched ``echoes/info`` topic; makes recorded echoes self-describing."""

    sample_rate: int
    channels: int
    window_samples: int
    lead_in_samples: int
    speed_of_sound: float
    max_range: float
    chirp: Dict[str, Any] = field(default_factory=dict)
    alignment: Dict[str, Any] = field(default_factory=dict)
    backend: str = ''

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'EchoInfo':
        """Check and convert a decoded JSON object.

        Raises:
            AvsInputError: naming every missing or mistyped key.

        """
        if not isinstance(d, dict):
            raise AvsInputError(f'echo info must be a JSON object, got {type(d).__name__}')
        missing = [k for k in ECHO_INFO_KEYS if k not in d]
        if missing:
            raise AvsInputError('echo info lacks ' + ', '.join(
                f'{k} ({ECHO_INFO_KEYS[k]})' for k in missing))
        bad = [k for k in _ECHO_INFO_NUMBERS
               if isinstance(d[k], bool) or not isinstance(d[k], (int, float))]
        bad += [k for k in ('chirp', 'alignment') if not isinstance(d[k], dict)]
        if bad:
            raise AvsInputError(f'echo info has values of the wrong type for: {", ".join(bad)}')
        if d['sample_rate'] <= 0 or d['channels'] <= 0 or d['window_samples'] <= 0:
            raise AvsInputError('echo info sample_rate, channels and window_samples must be '
                                'positive')
        return cls(int(d['sample_rate']), int(d['channels']), int(d['window_samples']),
                   int(d['lead_in_samples']), float(d['speed_of_sound']),
                   float(d['max_range']), dict(d['chirp']), dict(d['alignment']),
                   str(d['backend']))


def echo_info_to_string(info: EchoInfo) -> Any:
    """Build the std_msgs/String carrying ``info`` as JSON."""
    from std_msgs.msg import String

    return String(data=json.dumps(asdict(info), sort_keys=True))


def string_to_echo_info(msg: Any) -> EchoInfo:
    """Parse the ``echoes/info`` String (anything with a ``data`` JSON string)."""
    try:
        d = json.loads(msg.data)
    except (TypeError, ValueError) as e:
        raise AvsInputError(f'echo info is not valid JSON: {e}') from e
    return EchoInfo.from_dict(d)


def header_copy(header: Any, frame_id: Optional[str] = None) -> Any:
    """Return a new std_msgs/Header with the same stamp (and frame unless ``frame_id``)."""
    from std_msgs.msg import Header

    out = Header(frame_id=header.frame_id if frame_id is None else frame_id)
    out.stamp.sec, out.stamp.nanosec = header.stamp.sec, header.stamp.nanosec
    return out
