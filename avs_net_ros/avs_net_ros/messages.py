"""numpy <-> ROS message conversion: images and binaural echoes (no cv_bridge).

The readers are duck-typed: they take rclpy messages and the rosbags dataclasses alike (any
object with the sensor_msgs/Image or avs_net_msgs/EchoFrame fields), so replay tools and nodes
share one implementation. The writers build rclpy messages (``sensor_msgs``, ``std_msgs`` and
``avs_net_msgs`` are imported when called), so this module imports without them.

Conventions (README "The nodes", REP 118):

- Images: rgb8, bgr8, mono8, 32FC1, 16UC1 (plus mono16). ``step`` may include row padding;
  ``is_bigendian`` is honoured for multi-byte pixels.
- Echoes: ``avs_net_msgs/EchoFrame`` (avs_net_msgs/msg/EchoFrame.msg): the settings
  (``EchoInfo``) and float32 samples, channel-major (channel 0 left, 1 right),
  header.stamp = the stamp of the camera frame the chirp belongs to.
"""

import array as pyarray
from dataclasses import asdict, dataclass
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


class EchoFrameError(AvsInputError):
    """An EchoFrame message cannot be read as an echo (the message says what is wrong)."""


#: Keys of the echo settings as the audio code and the bag sources describe them (a dict), and
#: what they hold; ``EchoInfo.from_dict`` turns one into the fields of an EchoFrame.
ECHO_INFO_KEYS = {
    'sample_rate': 'samples per second of the echoes (Hz)',
    'channels': 'microphones (2 = left, right)',
    'window_samples': 'samples per channel of each echo',
    'lead_in_samples': 'samples before the direct-path onset at the start of each echo',
    'speed_of_sound': 'speed of sound used to cut the window (m/s)',
    'max_range': 'range the echo window covers (m)',
    'chirp': 'chirp settings (core.acoustics.ChirpConfig fields; empty when not known)',
    'backend': 'what recorded the echoes',
}
_ECHO_INFO_NUMBERS = ('sample_rate', 'channels', 'window_samples', 'lead_in_samples',
                      'speed_of_sound', 'max_range')


@dataclass(frozen=True)
class EchoInfo:
    """The settings an ``avs_net_msgs/EchoFrame`` carries with its samples.

    ``window_samples`` is not a field of the message: it is ``len(samples) / channels``.
    Chirp fields are 0 / '' where the source does not know them (a data set).
    """

    sample_rate: int
    channels: int
    window_samples: int
    lead_in_samples: int
    speed_of_sound: float
    max_range: float
    chirp_start_hz: float = 0.0
    chirp_end_hz: float = 0.0
    chirp_duration: float = 0.0
    chirp_method: str = ''
    backend: str = ''

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'EchoInfo':
        """Check and convert an echo settings dict (``ECHO_INFO_KEYS``; more keys are ignored).

        Raises:
            AvsInputError: naming every missing or mistyped key.

        """
        if not isinstance(d, dict):
            raise AvsInputError(f'echo info must be a dict, got {type(d).__name__}')
        missing = [k for k in ECHO_INFO_KEYS if k not in d]
        if missing:
            raise AvsInputError('echo info lacks ' + ', '.join(
                f'{k} ({ECHO_INFO_KEYS[k]})' for k in missing))
        bad = [k for k in _ECHO_INFO_NUMBERS
               if isinstance(d[k], bool) or not isinstance(d[k], (int, float))]
        bad += [k for k in ('chirp',) if not isinstance(d[k], dict)]
        if bad:
            raise AvsInputError(f'echo info has values of the wrong type for: {", ".join(bad)}')
        if d['sample_rate'] <= 0 or d['channels'] <= 0 or d['window_samples'] <= 0:
            raise AvsInputError('echo info sample_rate, channels and window_samples must be '
                                'positive')
        chirp = d['chirp']
        return cls(int(d['sample_rate']), int(d['channels']), int(d['window_samples']),
                   int(d['lead_in_samples']), float(d['speed_of_sound']),
                   float(d['max_range']), float(chirp.get('f_start', 0.0)),
                   float(chirp.get('f_end', 0.0)), float(chirp.get('duration', 0.0)),
                   str(chirp.get('method', '')), str(d['backend']))

    def to_dict(self) -> Dict[str, Any]:
        """Return the fields as a JSON-friendly dict (reports)."""
        return asdict(self)


_FRAME_FIELDS = ('sample_rate', 'channels', 'lead_in_samples', 'speed_of_sound', 'max_range',
                 'chirp_start_hz', 'chirp_end_hz', 'chirp_duration', 'chirp_method', 'backend')


def echo_to_frame(echo: np.ndarray, info: EchoInfo, header: Any = None) -> Any:
    """Build an ``avs_net_msgs/EchoFrame`` from a (channels, samples) float array.

    Raises:
        EchoFrameError: the array is not (channels, samples) float, or its shape disagrees
            with ``info``.

    """
    from avs_net_msgs.msg import EchoFrame

    e = np.asarray(echo)
    if e.ndim != 2 or not np.issubdtype(e.dtype, np.floating):
        raise EchoFrameError(
            f'echo must be a (channels, samples) float array, got {e.dtype} {e.shape}')
    if e.shape[0] != info.channels:
        raise EchoFrameError(f'echo has {e.shape[0]} channels, its info says {info.channels}')
    msg = EchoFrame()
    if header is not None:
        msg.header = header
    for name in _FRAME_FIELDS:
        setattr(msg, name, getattr(info, name))
    samples = pyarray.array('f')
    samples.frombytes(memoryview(np.ascontiguousarray(e, dtype=np.float32)).cast('B'))
    msg.samples = samples
    return msg


def _f32(value: float) -> float:
    # a float32 field read back as the shortest decimal that gives the same float32, so the
    # settings that were written (0.003 s) are the settings read, not 0.003000000026
    return float(str(np.float32(value)))


def frame_to_echo(msg: Any) -> Tuple[np.ndarray, EchoInfo]:
    """Return an EchoFrame's samples as a (channels, samples) float32 array, and its settings.

    Duck-typed: rclpy messages and the rosbags dataclasses alike.

    Raises:
        EchoFrameError: an unknown sample rate, no channels, no samples, a sample count that
            is not a multiple of the channels, or samples that are NaN or infinite.

    """
    rate, channels = int(msg.sample_rate), int(msg.channels)
    if rate <= 0:
        raise EchoFrameError(f'echo frame has an unknown sample rate ({rate} Hz)')
    if channels <= 0:
        raise EchoFrameError('echo frame has 0 channels')
    samples = np.asarray(msg.samples, dtype=np.float32)
    if samples.size == 0 or samples.size % channels:
        raise EchoFrameError(f'echo frame has {samples.size} samples, not a positive multiple '
                             f'of its {channels} channels')
    finite = np.isfinite(samples)
    if not finite.all():
        raise EchoFrameError(f'echo frame has {int(samples.size - finite.sum())} NaN or '
                             f'infinite samples')
    info = EchoInfo(rate, channels, samples.size // channels, int(msg.lead_in_samples),
                    _f32(msg.speed_of_sound), _f32(msg.max_range), _f32(msg.chirp_start_hz),
                    _f32(msg.chirp_end_hz), _f32(msg.chirp_duration), str(msg.chirp_method),
                    str(msg.backend))
    return samples.reshape(channels, -1), info


def header_copy(header: Any, frame_id: Optional[str] = None) -> Any:
    """Return a new std_msgs/Header with the same stamp (and frame unless ``frame_id``)."""
    from std_msgs.msg import Header

    out = Header(frame_id=header.frame_id if frame_id is None else frame_id)
    out.stamp.sec, out.stamp.nanosec = header.stamp.sec, header.stamp.nanosec
    return out
