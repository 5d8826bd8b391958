"""numpy <-> message conversion: every encoding, row padding, byte order, echoes, echo info."""

import json

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.messages import (array_to_image, echo_info_to_string, echo_to_image, EchoInfo,
                                  header_copy, image_to_array, image_to_echo, image_to_rgb,
                                  ImageConversionError, ns_to_stamp, stamp_to_ns,
                                  string_to_echo_info)
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from ros_fixtures import echo_info_msg, header
from sensor_msgs.msg import Image
from std_msgs.msg import String

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


def test_echo_rows_are_left_then_right():
    echo = np.stack([np.linspace(-1, 1, 300), np.linspace(1, -1, 300)]).astype(np.float32)
    msg = echo_to_image(echo, header(42))
    assert (msg.height, msg.width, msg.encoding) == (2, 300, '32FC1')
    back = image_to_echo(deserialize_message(serialize_message(msg), Image))
    np.testing.assert_array_equal(back, echo)
    assert back[0, 0] == -1 and back[1, 0] == 1
    with pytest.raises(ImageConversionError, match="encoding is 'mono8', expected '32FC1'"):
        image_to_echo(array_to_image(np.zeros((2, 5), np.uint8), 'mono8'))
    with pytest.raises(ImageConversionError, match='float array'):
        echo_to_image(np.zeros(5, np.float32))
    # float64 input is published as float32
    np.testing.assert_allclose(image_to_echo(echo_to_image(echo.astype(np.float64))), echo)


def test_rosbags_messages_convert_too():
    """The readers are duck-typed: rosbags' dataclasses (bag replay) work like rclpy's."""
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    raw = bytes(serialize_message(array_to_image(SAMPLES['32FC1'], '32FC1', header(9))))
    bag_msg = store.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    np.testing.assert_array_equal(image_to_array(bag_msg), SAMPLES['32FC1'])
    assert stamp_to_ns(bag_msg.header.stamp) == 9


def test_echo_info_round_trip_and_errors():
    info = string_to_echo_info(deserialize_message(serialize_message(echo_info_msg()),
                                                   String))
    assert isinstance(info, EchoInfo)
    assert (info.sample_rate, info.channels, info.backend) == (44100, 2, 'test')
    assert string_to_echo_info(echo_info_to_string(info)) == info
    d = json.loads(echo_info_msg().data)
    del d['sample_rate'], d['backend']
    with pytest.raises(AvsInputError, match=r'lacks sample_rate \(samples per second.*backend'):
        string_to_echo_info(String(data=json.dumps(d)))
    d = json.loads(echo_info_msg().data)
    d['sample_rate'] = '44100'
    with pytest.raises(AvsInputError, match='wrong type for: sample_rate'):
        string_to_echo_info(String(data=json.dumps(d)))
    with pytest.raises(AvsInputError, match='not valid JSON'):
        string_to_echo_info(String(data='{sample_rate: 1'))
    with pytest.raises(AvsInputError, match='JSON object'):
        string_to_echo_info(String(data='[1, 2]'))


def test_stamps_and_headers():
    stamp = ns_to_stamp(3_000_000_007)
    assert (stamp.sec, stamp.nanosec) == (3, 7) and stamp_to_ns(stamp) == 3_000_000_007
    h = header(5_000_000_001, 'cam')
    c = header_copy(h)
    assert c is not h and stamp_to_ns(c.stamp) == 5_000_000_001 and c.frame_id == 'cam'
    assert header_copy(h, 'depth').frame_id == 'depth'
