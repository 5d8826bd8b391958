"""numpy <-> message conversion: every encoding, row padding, byte order, echo frames."""

from avs_net_msgs.msg import EchoFrame
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.eval.bagio import ECHO_TYPE, typestore
from avs_net_ros.messages import (array_to_image, echo_to_frame, EchoFrameError, EchoInfo,
                                  frame_to_echo, header_copy, image_to_array, image_to_rgb,
                                  ImageConversionError, ns_to_stamp, stamp_to_ns)
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from ros_fixtures import echo_info, header
from sensor_msgs.msg import Image

RNG = np.random.default_rng(7)
SAMPLES = {
    'rgb8': RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    'bgr8': RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    'mono8': RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    'mono16': RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    '16UC1': RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    '32FC1': RNG.standard_normal((5, 7)).astype(np.float32),
}


def _raw(encoding, array, step=None, bigendian=False, pad_byte=0xAB):
    """Build an Image by hand (padding and byte order chosen by the test)."""
    a = array.astype(array.dtype.newbyteorder('>' if bigendian else '<'))
    rows = a.reshape(a.shape[0], -1).view(np.uint8)
    step = step or rows.shape[1]
    data = np.full((a.shape[0], step), pad_byte, dtype=np.uint8)
    data[:, :rows.shape[1]] = rows
    return Image(height=a.shape[0], width=a.shape[1], encoding=encoding,
                 is_bigendian=int(bigendian), step=step, data=data.tobytes())


@pytest.mark.parametrize('encoding', sorted(SAMPLES))
def test_round_trip_every_encoding_through_cdr(encoding):
    a = SAMPLES[encoding]
    msg = array_to_image(a, encoding, header(1_500_000_123))
    assert msg.step == a.shape[1] * a.itemsize * (3 if a.ndim == 3 else 1)
    back = deserialize_message(serialize_message(msg), Image)  # what DDS delivers
    out = image_to_array(back)
    assert out.dtype == a.dtype and out.shape == a.shape
    np.testing.assert_array_equal(out, a)
    assert stamp_to_ns(back.header.stamp) == 1_500_000_123
    assert back.header.frame_id == 'camera_optical'


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', '32FC1'])
def test_row_padding_is_skipped(encoding):
    a = SAMPLES[encoding]
    row = a.shape[1] * a.itemsize * (3 if a.ndim == 3 else 1)
    out = image_to_array(_raw(encoding, a, step=row + 9))
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_big_endian_pixels_are_swapped(encoding):
    a = SAMPLES[encoding]
    out = image_to_array(_raw(encoding, a, bigendian=True))
    assert out.dtype == a.dtype  # native order for downstream numpy code
    np.testing.assert_array_equal(out, a)
    np.testing.assert_array_equal(image_to_array(_raw(encoding, a, step=a.shape[1] * 4 + 4,
                                                      bigendian=True)), a)


def test_camera_encodings_become_rgb():
    rgb = SAMPLES['rgb8']
    np.testing.assert_array_equal(image_to_rgb(array_to_image(rgb, 'rgb8')), rgb)
    np.testing.assert_array_equal(image_to_rgb(array_to_image(rgb[..., ::-1].copy(), 'bgr8')),
                                  rgb)
    mono = SAMPLES['mono8']
    out = image_to_rgb(array_to_image(mono, 'mono8'))
    assert out.shape == (5, 7, 3) and all(np.array_equal(out[..., c], mono) for c in range(3))


def test_unsupported_or_inconsistent_images_are_named():
    msg = Image(height=2, width=2, encoding='yuv422', step=4, data=bytes(8))
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        image_to_array(msg)
    with pytest.raises(ImageConversionError, match="'32FC1' is not supported; publish one"):
        image_to_rgb(array_to_image(SAMPLES['32FC1'], '32FC1'))
    short = _raw('rgb8', SAMPLES['rgb8'])
    short.step = 10
    with pytest.raises(ImageConversionError, match='step 10 is smaller than width 7'):
        image_to_array(short)
    truncated = _raw('32FC1', SAMPLES['32FC1'])
    truncated.data = bytes(truncated.data)[:-4]
    with pytest.raises(ImageConversionError, match='136 bytes, expected step 28 x height 5'):
        image_to_array(truncated)
    with pytest.raises(ImageConversionError, match='needs dtype float32, got float64'):
        array_to_image(np.zeros((2, 2)), '32FC1')
    with pytest.raises(ImageConversionError, match=r'shape \(H, W, 3\)'):
        array_to_image(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ImageConversionError, match='unsupported image encoding'):
        array_to_image(np.zeros((2, 2), np.uint8), 'jpeg')
    assert issubclass(ImageConversionError, AvsInputError)


def test_nan_survives_depth_conversion():
    d = np.array([[1.5, np.nan], [np.inf, 0.25]], np.float32)
    out = image_to_array(deserialize_message(serialize_message(array_to_image(d, '32FC1')),
                                             Image))
    np.testing.assert_array_equal(out, d)  # NaN == NaN under assert_array_equal


def test_echo_frame_round_trip_channel_major_left_first():
    echo = np.stack([np.linspace(-1, 1, 300), np.linspace(1, -1, 300)]).astype(np.float32)
    info = echo_info(window=300)
    msg = echo_to_frame(echo, info, header(42, 'speaker_link'))
    assert (msg.sample_rate, msg.channels, len(msg.samples)) == (44100, 2, 600)
    back, got = frame_to_echo(deserialize_message(serialize_message(msg), EchoFrame))
    np.testing.assert_array_equal(back, echo)
    assert back[0, 0] == -1 and back[1, 0] == 1 and got == info
    assert msg.header.frame_id == 'speaker_link' and stamp_to_ns(msg.header.stamp) == 42
    with pytest.raises(EchoFrameError, match='float array'):
        echo_to_frame(np.zeros(5, np.float32), info)
    with pytest.raises(EchoFrameError, match='echo has 1 channels, its info says 2'):
        echo_to_frame(np.zeros((1, 5), np.float32), info)
    # float64 input is published as float32
    np.testing.assert_allclose(frame_to_echo(echo_to_frame(echo.astype(np.float64), info))[0],
                               echo)


@pytest.mark.parametrize('spoil, why', [
    (lambda m: setattr(m, 'sample_rate', 0), r'unknown sample rate \(0 Hz\)'),
    (lambda m: setattr(m, 'channels', 0), 'has 0 channels'),
    (lambda m: setattr(m, 'samples', m.samples[:-1]), '599 samples, not a positive multiple '
                                                      'of its 2 channels'),
    (lambda m: setattr(m, 'samples', []), '0 samples'),
    (lambda m: m.samples.__setitem__(7, float('nan')), '1 NaN or infinite samples'),
    (lambda m: m.samples.__setitem__(8, float('inf')), '1 NaN or infinite samples'),
])
def test_corrupt_echo_frames_are_refused_with_the_reason(spoil, why):
    msg = echo_to_frame(np.ones((2, 300), np.float32), echo_info(window=300))
    spoil(msg)
    with pytest.raises(EchoFrameError, match=why):
        frame_to_echo(msg)
    assert issubclass(EchoFrameError, AvsInputError)


def test_echo_frames_read_from_bags_too():
    """Bags: rosbags has the type from the .msg file, a serialised rclpy EchoFrame reads back."""
    echo = np.arange(600, dtype=np.float32).reshape(2, 300) / 600
    raw = bytes(serialize_message(echo_to_frame(echo, echo_info(window=300), header(9))))
    bag_msg = typestore().deserialize_cdr(raw, ECHO_TYPE)
    back, info = frame_to_echo(bag_msg)
    np.testing.assert_array_equal(back, echo)
    assert info == echo_info(window=300) and stamp_to_ns(bag_msg.header.stamp) == 9
    # and what rosbags writes, rclpy reads (CDR padding bytes may differ: compare the fields)
    again = deserialize_message(typestore().serialize_cdr(bag_msg, ECHO_TYPE).tobytes(),
                                EchoFrame)
    assert frame_to_echo(again)[1] == info
    np.testing.assert_array_equal(frame_to_echo(again)[0], echo)


def test_rosbags_messages_convert_too():
    """The readers are duck-typed: rosbags' dataclasses (bag replay) work like rclpy's."""
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    raw = bytes(serialize_message(array_to_image(SAMPLES['32FC1'], '32FC1', header(9))))
    bag_msg = store.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    np.testing.assert_array_equal(image_to_array(bag_msg), SAMPLES['32FC1'])
    assert stamp_to_ns(bag_msg.header.stamp) == 9


def test_echo_info_from_the_settings_dict_and_errors():
    d = {'sample_rate': 44100, 'channels': 2, 'window_samples': 300, 'lead_in_samples': 0,
         'speed_of_sound': 340.0, 'max_range': 6.0, 'backend': 'test', 'alignment': {},
         'chirp': {'f_start': 20.0, 'f_end': 20000.0, 'duration': 0.003, 'method': 'linear',
                   'fade': 0.1}}
    assert EchoInfo.from_dict(d) == echo_info(window=300)
    assert EchoInfo.from_dict(dict(d, chirp={})).chirp_method == ''  # a data set: not known
    del d['sample_rate'], d['backend']
    with pytest.raises(AvsInputError, match=r'lacks sample_rate \(samples per second.*backend'):
        EchoInfo.from_dict(d)
    with pytest.raises(AvsInputError, match='wrong type for: sample_rate'):
        EchoInfo.from_dict(dict(d, sample_rate='44100', backend=''))


def test_stamps_and_headers():
    stamp = ns_to_stamp(3_000_000_007)
    assert (stamp.sec, stamp.nanosec) == (3, 7) and stamp_to_ns(stamp) == 3_000_000_007
    h = header(5_000_000_001, 'cam')
    c = header_copy(h)
    assert c is not h and stamp_to_ns(c.stamp) == 5_000_000_001 and c.frame_id == 'cam'
    assert header_copy(h, 'depth').frame_id == 'depth'
