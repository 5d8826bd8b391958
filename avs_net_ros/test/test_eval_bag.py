"""Bag reading/writing and stamp pairing of avs_net_ros.eval (rosbags; no ROS install needed).

Bags "not written by this project" are made here with independent implementations (rosbag2's
own test bags cannot be shipped):

- SQLite: rclpy's own CDR serializer (``rclpy.serialization.serialize_message``, the rmw type
  support ROS uses when recording) and Python's sqlite3, following rosbag2's SQLite schema
  (Humble layout, schema 3), with a hand-written ``metadata.yaml``;
- mcap: the mcap project's ROS 2 writer (``mcap_ros2.writer``, its own CDR encoder working from
  the message definition text), as a bare ``.mcap`` file and as a bag folder.
"""

import json
import os
import sqlite3

from avs_net_ros.eval.bagio import (bag_topics, BagFrames, BagReadError, BagWriter,
                                    echo_frame_definition, read_frames)
from avs_net_ros.eval.pairing import StampPairer
from avs_net_ros.eval.topics import BagTopics, BagTopicsError
import numpy as np
import pytest

RNG = np.random.default_rng(3)
INFO = {'sample_rate': 44100, 'channels': 2, 'window_samples': 1600, 'lead_in_samples': 0,
        'speed_of_sound': 340.0, 'max_range': 6.0, 'chirp': {}, 'alignment': {},
        'backend': 'test'}


def _frames(n, h=12, w=16):
    out = []
    for i in range(n):
        gt = RNG.uniform(0.5, 8.0, (h, w)).astype(np.float32)
        gt[0, :3] = np.nan
        out.append((1_700_000_000_000_000_000 + i * 200_000_000,
                    RNG.integers(0, 256, (h, w, 3), dtype=np.uint8),
                    RNG.standard_normal((2, 1600)).astype(np.float32), gt))
    return out


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_written_bag_reads_back_exactly(tmp_path, storage):
    """Every array, stamp and the echo info survive a write/read round trip in both stores."""
    src = _frames(5)
    path = str(tmp_path / 'bag')
    with BagWriter(path, storage) as w:
        w.set_echo_info(INFO)
        for stamp, rgb, echo, gt in src:
            w.write_frame(stamp, rgb, echo, gt, k=np.eye(3))
    frames, report = read_frames(path, need=('ground_truth', 'echoes'))
    assert [f.stamp_ns for f in frames] == [s[0] for s in src]
    for f, (_, rgb, echo, gt) in zip(frames, src):
        np.testing.assert_array_equal(f.rgb, rgb)
        np.testing.assert_array_equal(f.echo, echo)
        np.testing.assert_array_equal(f.ground_truth, gt)
    assert report.echo_info.sample_rate == 44100
    assert report.pairing.paired == 5 and report.pairing.failures == 0
    assert bag_topics(path)['/camera_info'] == ('sensor_msgs/msg/CameraInfo', 5)


def test_16uc1_ground_truth_is_millimetres_with_zero_invalid(tmp_path):
    """16UC1 depth reads as metres, 0 mm as NaN (REP 118)."""
    path = str(tmp_path / 'bag')
    gt = np.array([[0.5, np.nan], [1.234, 0.0]], np.float32)
    with BagWriter(path) as w:
        w.write_frame(5, np.zeros((2, 2, 3), np.uint8), None, gt, gt_encoding='16UC1')
    (f,), _ = read_frames(path)
    np.testing.assert_allclose(f.ground_truth, [[0.5, np.nan], [1.234, np.nan]], rtol=1e-6)


# -- bags written without rosbags -------------------------------------------------------------

_QOS = ('- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 0\n'
        '    nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n  liveliness: 1\n'
        '  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n'
        '  avoid_ros_namespace_conventions: false')


def _rclpy_image(array, encoding, stamp_ns, frame='cam'):
    from sensor_msgs.msg import Image
    m = Image()
    m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    m.header.frame_id = frame
    m.height, m.width = array.shape[:2]
    m.encoding = encoding
    m.step = array.strides[0]
    m.data = np.ascontiguousarray(array).tobytes()
    return m


def _rclpy_echo(echo, stamp_ns):
    from avs_net_ros.messages import echo_to_frame, EchoInfo
    from std_msgs.msg import Header
    h = Header(frame_id='speaker_link')
    h.stamp.sec, h.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    return echo_to_frame(echo, EchoInfo.from_dict(INFO), h)


def write_foreign_sqlite_bag(folder, src, with_metadata=True):
    """Write ``src`` frames as rosbag2 (Humble, SQLite schema 3) with rclpy's serializer.

    Extra topics that the evaluation must ignore: /imu, /chatter, /tf_static-like strings.
    The camera is bgr8 under /robot/camera/image_raw, ground truth is 16UC1 millimetres, and
    echoes are recorded before their camera frame (receive order != stamp order).
    """
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Imu
    from std_msgs.msg import String

    os.makedirs(folder, exist_ok=True)
    db_path = os.path.join(folder, 'foreign_0.db3')
    db = sqlite3.connect(db_path)
    db.executescript("""
        CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
        CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL,
                              metadata TEXT NOT NULL);
        CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                            serialization_format TEXT NOT NULL,
                            offered_qos_profiles TEXT NOT NULL);
        CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL,
                              timestamp INTEGER NOT NULL, data BLOB NOT NULL);
        CREATE INDEX timestamp_idx ON messages (timestamp ASC);
        INSERT INTO schema VALUES (3, 'humble');
    """)
    topics = [('/imu', 'sensor_msgs/msg/Imu'), ('/robot/camera/image_raw',
                                                'sensor_msgs/msg/Image'),
              ('/robot/echoes', 'avs_net_msgs/msg/EchoFrame'),
              ('/chatter', 'std_msgs/msg/String'), ('/robot/depth/gt_mm', 'sensor_msgs/msg/Image')]
    for i, (name, typ) in enumerate(topics, start=1):
        db.execute('INSERT INTO topics VALUES (?, ?, ?, ?, ?)', (i, name, typ, 'cdr', _QOS))
    tid = {name: i for i, (name, _) in enumerate(topics, start=1)}
    rows = []
    for stamp, rgb, echo, gt in src:
        mm = np.where(np.isfinite(gt), np.round(gt * 1000), 0).astype(np.uint16)
        rows += [
            (tid['/imu'], stamp - 5, serialize_message(Imu())),
            (tid['/robot/echoes'], stamp + 1_000, serialize_message(_rclpy_echo(echo, stamp))),
            (tid['/robot/camera/image_raw'], stamp + 30_000_000, serialize_message(
                _rclpy_image(np.ascontiguousarray(rgb[..., ::-1]), 'bgr8', stamp))),
            (tid['/chatter'], stamp + 40_000_000, serialize_message(String(data='hello'))),
            (tid['/robot/depth/gt_mm'], stamp + 50_000_000, serialize_message(
                _rclpy_image(mm, '16UC1', stamp))),
        ]
    db.executemany('INSERT INTO messages(topic_id, timestamp, data) VALUES (?, ?, ?)', rows)
    db.commit()
    db.close()
    if with_metadata:
        counts = {t: sum(1 for r in rows if r[0] == tid[t]) for t, _ in topics}
        start = min(r[1] for r in rows)
        dur = max(r[1] for r in rows) - start
        entries = ''.join(
            f'    - topic_metadata:\n        name: {n}\n        type: {t}\n'
            f'        serialization_format: cdr\n'
            f'        offered_qos_profiles: {json.dumps(_QOS)}\n'
            f'      message_count: {counts[n]}\n' for n, t in topics)
        with open(os.path.join(folder, 'metadata.yaml'), 'w') as f:
            f.write('rosbag2_bagfile_information:\n  version: 5\n'
                    '  storage_identifier: sqlite3\n  duration:\n'
                    f'    nanoseconds: {dur}\n  starting_time:\n'
                    f'    nanoseconds_since_epoch: {start}\n'
                    f'  message_count: {len(rows)}\n  topics_with_message_count:\n'
                    f'{entries}  compression_format: ""\n  compression_mode: ""\n'
                    '  relative_file_paths:\n    - foreign_0.db3\n  files:\n'
                    '    - path: foreign_0.db3\n      starting_time:\n'
                    f'        nanoseconds_since_epoch: {start}\n      duration:\n'
                    f'        nanoseconds: {dur}\n      message_count: {len(rows)}\n')
    return db_path


# ROS 2 message definitions as rosbag2's mcap storage records them (dependencies appended).
_TIME_DEF = 'MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n'
_HEADER_DEF = ('MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n'
               + '=' * 80 + '\n' + _TIME_DEF)
_IMAGE_DEF = ('std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n'
              'uint8 is_bigendian\nuint32 step\nuint8[] data\n' + '=' * 80 + '\n'
              + _HEADER_DEF)
_ECHO_DEF = echo_frame_definition() + '=' * 80 + '\n' + _HEADER_DEF


def write_foreign_mcap_bag(folder, src, with_metadata=True, chunk_size=1 << 20):
    """Write ``src`` frames as a rosbag2 mcap file with the mcap project's own ROS 2 writer.

    Messages are encoded by mcap-ros2-support from the definitions above (no rosbags, no
    rclpy), with the same foreign layout as the SQLite bag: bgr8 camera under
    /robot/camera/image_raw, 16UC1 millimetre ground truth, echoes logged before their frame,
    and topics the evaluation must ignore (/chatter, /count).
    """
    from mcap_ros2.writer import Writer

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'foreign_0.mcap')

    def image(array, encoding, stamp_ns):
        sec, nanosec = divmod(stamp_ns, 10 ** 9)
        array = np.ascontiguousarray(array)
        return {'header': {'stamp': {'sec': sec, 'nanosec': nanosec}, 'frame_id': 'cam'},
                'height': array.shape[0], 'width': array.shape[1], 'encoding': encoding,
                'is_bigendian': 0, 'step': array.strides[0], 'data': array.tobytes()}

    with open(path, 'wb') as f:
        w = Writer(f, chunk_size=chunk_size)
        img = w.register_msgdef('sensor_msgs/msg/Image', _IMAGE_DEF)
        text = w.register_msgdef('std_msgs/msg/String', 'string data\n')
        count = w.register_msgdef('std_msgs/msg/Int32', 'int32 data\n')
        echo_schema = w.register_msgdef('avs_net_msgs/msg/EchoFrame', _ECHO_DEF)

        def echo_frame(echo, stamp_ns):
            sec, nanosec = divmod(stamp_ns, 10 ** 9)
            fields = {k: INFO[k] for k in ('sample_rate', 'channels', 'lead_in_samples',
                                           'speed_of_sound', 'max_range', 'backend')}
            return dict(fields, header={'stamp': {'sec': sec, 'nanosec': nanosec},
                                        'frame_id': 'speaker_link'},
                        chirp_start_hz=0.0, chirp_end_hz=0.0, chirp_duration=0.0,
                        chirp_method='', samples=echo.reshape(-1).tolist())
        for i, (stamp, rgb, echo, gt) in enumerate(src):
            mm = np.where(np.isfinite(gt), np.round(gt * 1000), 0).astype(np.uint16)
            for topic, schema, msg, t in (
                    ('/count', count, {'data': i}, stamp - 5),
                    ('/robot/echoes', echo_schema, echo_frame(echo, stamp), stamp + 1_000),
                    ('/robot/camera/image_raw', img, image(rgb[..., ::-1], 'bgr8', stamp),
                     stamp + 30_000_000),
                    ('/chatter', text, {'data': 'hello'}, stamp + 40_000_000),
                    ('/robot/depth/gt_mm', img, image(mm, '16UC1', stamp),
                     stamp + 50_000_000)):
                w.write_message(topic, schema, msg, t, t)
        w.finish()
    if with_metadata:
        n = len(src)
        topics = [('/count', 'std_msgs/msg/Int32', n),
                  ('/robot/echoes', 'avs_net_msgs/msg/EchoFrame', n),
                  ('/robot/camera/image_raw', 'sensor_msgs/msg/Image', n),
                  ('/chatter', 'std_msgs/msg/String', n),
                  ('/robot/depth/gt_mm', 'sensor_msgs/msg/Image', n)]
        start, dur, total = src[0][0] - 5, src[-1][0] - src[0][0] + 50_000_005, 5 * n
        entries = ''.join(
            f'    - topic_metadata:\n        name: {name}\n        type: {typ}\n'
            f'        serialization_format: cdr\n'
            # mcap_ros2 writes no QoS into its channels; the metadata must agree
            f'        offered_qos_profiles: ""\n'
            f'      message_count: {c}\n' for name, typ, c in topics)
        with open(os.path.join(folder, 'metadata.yaml'), 'w') as f:
            f.write('rosbag2_bagfile_information:\n  version: 5\n'
                    '  storage_identifier: mcap\n  duration:\n'
                    f'    nanoseconds: {dur}\n  starting_time:\n'
                    f'    nanoseconds_since_epoch: {start}\n'
                    f'  message_count: {total}\n  topics_with_message_count:\n'
                    f'{entries}  compression_format: ""\n  compression_mode: ""\n'
                    '  relative_file_paths:\n    - foreign_0.mcap\n  files:\n'
                    '    - path: foreign_0.mcap\n      starting_time:\n'
                    f'        nanoseconds_since_epoch: {start}\n      duration:\n'
                    f'        nanoseconds: {dur}\n      message_count: {total}\n')
    return path


FOREIGN_TOPICS = BagTopics(image='/robot/camera/image_raw', echoes='/robot/echoes',
                           ground_truth='robot/depth/gt_mm')


@pytest.mark.parametrize('as_file', [False, True])
@pytest.mark.parametrize('writer', [write_foreign_sqlite_bag, write_foreign_mcap_bag],
                         ids=['sqlite3_by_rclpy', 'mcap_by_mcap_ros2'])
def test_bag_written_by_another_writer_is_read(tmp_path, as_file, writer):
    """A rosbag2 bag from another writer, with other topics, reads frame for frame."""
    src = _frames(4)
    db = writer(str(tmp_path / 'foreign'), src, with_metadata=not as_file)
    path = db if as_file else str(tmp_path / 'foreign')
    frames, report = read_frames(path, FOREIGN_TOPICS, need=('ground_truth', 'echoes'))
    assert len(frames) == 4 and report.pairing.failures == 0
    assert report.echo_info.window_samples == 1600 and report.echo_info.backend == 'test'
    for f, (stamp, rgb, echo, gt) in zip(frames, src):
        assert f.stamp_ns == stamp
        np.testing.assert_array_equal(f.rgb, rgb)   # bgr8 converted to RGB
        np.testing.assert_array_equal(f.echo, echo)
        want = np.where(np.isfinite(gt), np.round(gt * 1000) / 1000, np.nan)
        np.testing.assert_allclose(f.ground_truth, want, rtol=1e-6)


@pytest.mark.parametrize('writer', [write_foreign_sqlite_bag, write_foreign_mcap_bag])
def test_missing_topics_are_named_with_what_the_bag_has(tmp_path, writer):
    """The error lists the required topics that are absent and every topic present."""
    writer(str(tmp_path / 'foreign'), _frames(1))
    with pytest.raises(BagTopicsError) as err:
        BagFrames(str(tmp_path / 'foreign'), BagTopics(), need=('ground_truth', 'echoes'))
    text = str(err.value)
    for missing in ('/image (image)', '/depth/ground_truth (ground_truth)', '/echoes (echoes)'):
        assert missing in text
    for present in ('/chatter [std_msgs/msg/String]',
                    '/robot/camera/image_raw [sensor_msgs/msg/Image]'):
        assert present in text


def test_a_topic_of_the_wrong_type_is_rejected(tmp_path):
    """A role mapped to a non-Image topic gets an error naming both types."""
    write_foreign_sqlite_bag(str(tmp_path / 'foreign'), _frames(1))
    topics = BagTopics(image='/chatter', ground_truth='/robot/depth/gt_mm')
    with pytest.raises(Exception, match='std_msgs/msg/String, expected sensor_msgs/msg/Image'):
        BagFrames(str(tmp_path / 'foreign'), topics)


def _truncate(path, fraction):
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(int(size * fraction))


@pytest.mark.parametrize('storage,ext', [('mcap', '.mcap'), ('sqlite3', '.db3')])
def test_truncated_bag_keeps_the_frames_before_the_damage(tmp_path, storage, ext):
    """A bag cut at 60 % is salvaged: the earlier frames read exactly, the damage is reported."""
    src = _frames(10, 24, 32)
    path = str(tmp_path / 'bag')
    with BagWriter(path, storage) as w:
        w.set_echo_info(INFO)
        for stamp, rgb, echo, gt in src:
            w.write_frame(stamp, rgb, echo, gt)
    (data_file,) = [f for f in os.listdir(path) if f.endswith(ext)]
    _truncate(os.path.join(path, data_file), 0.6)
    frames, report = read_frames(path, need=('ground_truth', 'echoes'))
    assert report.damage and 'Salvaged' in report.damage
    assert 3 <= len(frames) < 10
    for f in frames:
        i = [s[0] for s in src].index(f.stamp_ns)
        np.testing.assert_array_equal(f.rgb, src[i][1])
        np.testing.assert_array_equal(f.ground_truth, src[i][3])
    assert report.echo_info is not None


def test_truncated_foreign_mcap_keeps_the_frames_before_the_damage(tmp_path):
    """The salvage also works on an mcap file of the mcap project's writer (small chunks)."""
    src = _frames(10, 24, 32)
    # several chunks, as a long recording has: the damage leaves whole chunks before it
    path = write_foreign_mcap_bag(str(tmp_path / 'foreign'), src, chunk_size=8192)
    _truncate(path, 0.6)
    frames, report = read_frames(str(tmp_path / 'foreign'), FOREIGN_TOPICS,
                                 need=('ground_truth', 'echoes'))
    assert report.damage and 'Salvaged' in report.damage
    assert 3 <= len(frames) < 10
    for f in frames:
        i = [s[0] for s in src].index(f.stamp_ns)
        np.testing.assert_array_equal(f.rgb, src[i][1])


def test_unreadable_inputs_get_clear_errors(tmp_path):
    """A missing path, a non-bag file and an empty folder each name the problem."""
    with pytest.raises(BagReadError, match='does not exist'):
        BagFrames(str(tmp_path / 'nope'))
    junk = tmp_path / 'junk.mcap'
    junk.write_bytes(b'not a bag at all' * 10)
    with pytest.raises(BagReadError, match='cannot open'):
        BagFrames(str(junk))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BagReadError, match='cannot open'):
        BagFrames(str(tmp_path / 'empty'))


def test_writer_refuses_to_overwrite_and_unknown_storage(tmp_path):
    """Existing paths and unknown storage plugins are refused before anything is written."""
    with pytest.raises(Exception, match='already exists'):
        BagWriter(str(tmp_path))
    with pytest.raises(Exception, match='unknown bag storage'):
        BagWriter(str(tmp_path / 'x'), 'rosbag1')


# -- pairing -------------------------------------------------------------------------------

def test_pairer_matches_out_of_order_messages_by_stamp():
    """Receive order does not matter; each key takes the partner with its own stamp."""
    p = StampPairer('image', ['echoes', 'gt'])
    out = []
    for role, stamp in [('echoes', 2), ('image', 1), ('gt', 2), ('echoes', 1), ('image', 2),
                        ('gt', 1)]:
        out += p.add(role, stamp, f'{role}{stamp}')
    p.finish()
    assert sorted(out) == [(1, {'image': 'image1', 'echoes': 'echoes1', 'gt': 'gt1'}),
                           (2, {'image': 'image2', 'echoes': 'echoes2', 'gt': 'gt2'})]
    assert p.stats.paired == 2 and p.stats.failures == 0


def test_pairer_counts_failures_unused_and_duplicates():
    """A key whose partner never comes is a failure once the partner stream moves past."""
    p = StampPairer('image', ['gt'], slop_ns=0, horizon_ns=10)
    assert p.add('image', 100, 'a') == []
    assert p.add('image', 100, 'dup') == []
    assert p.add('gt', 105, 'x') == []       # no exact match
    assert p.add('gt', 111, 'y') == []       # 111 > 100 + 10: image 100 is given up
    assert p.stats.failures == 1 and p.stats.unpaired_key == {'gt': 1}
    assert p.stats.duplicate_key == 1
    p.finish()
    assert p.stats.unused == {'gt': 2}


def test_pairer_leaves_out_an_optional_role_that_has_no_message():
    """An optional role joins when it has the stamp and is left out once it moved past."""
    p = StampPairer('metric', ['gt', 'pseudo'], horizon_ns=10, optional=['pseudo'])
    assert p.add('metric', 100, 'm100') == [] and p.add('gt', 100, 'g100') == []
    assert p.add('metric', 105, 'm105') == [] and p.add('gt', 105, 'g105') == []
    # pseudo 105 arrives: 105 is complete; 100 waits, pseudo has not moved 10 past it yet
    assert p.add('pseudo', 105, 'p105') == [(105, {'metric': 'm105', 'gt': 'g105',
                                                   'pseudo': 'p105'})]
    assert p.add('pseudo', 111, 'p111') == [(100, {'metric': 'm100', 'gt': 'g100'})]
    # at the end, a key still waiting for an optional role is emitted without it
    assert p.add('metric', 120, 'm120') == [] and p.add('gt', 120, 'g120') == []
    assert p.finish() == [(120, {'metric': 'm120', 'gt': 'g120'})]
    assert p.stats.paired == 3 and p.stats.failures == 0 and p.stats.unused == {'pseudo': 1}
    with pytest.raises(ValueError, match='optional roles'):
        StampPairer('metric', ['gt'], optional=['pseudo'])


def test_recorded_frames_without_an_optional_prediction_are_still_scored(tmp_path):
    """A replay frame published without pseudo_dense (fallback) is scored on metric."""
    from avs_net_ros.eval.recorded import score_recorded

    path = str(tmp_path / 'rec')
    gt = np.full((4, 6), 2.0, np.float32)
    with BagWriter(path) as w:
        for i in range(3):
            preds = {'metric': gt * np.float32(1.1)}
            if i != 1:  # the middle frame had no echo
                preds['pseudo_dense'] = gt
            w.write_frame(1_000_000_000 * (i + 1), np.zeros((4, 6, 3), np.uint8), None, gt,
                          predictions=preds)
    res = score_recorded(path, ['metric', 'pseudo_dense'], progress=False)
    assert res.frames_scored == 3 and res.bag.pairing.failures == 0
    assert res.recorded['metric']['frames'] == 3
    assert res.recorded['pseudo_dense']['frames'] == 2
    assert res.recorded['metric']['abs_rel'] == pytest.approx(0.1, rel=1e-6)


def test_pairer_slop_takes_the_nearest_partner():
    """With a tolerance the nearest stamp within it is taken and the offset recorded."""
    p = StampPairer('image', ['gt'], slop_ns=5)
    p.add('gt', 97, 'far')
    p.add('gt', 102, 'near')
    (stamp, group), = p.add('image', 101, 'img')
    assert stamp == 101 and group['gt'] == 'near'
    assert p.stats.max_offset_ns == 1


@pytest.mark.parametrize('layout', ['bv2', 'bv1'])
def test_batvision_split_converts_to_a_bag(tmp_path, layout):
    """avs_write_bag batvision: one frame per record, depth and echoes as the dataset holds."""
    from avs_net_ros.datasets import bv1, bv2
    from avs_net_ros.datasets.common import depth_to_metres, sort_records
    from avs_net_ros.datasets.features import cut_window, echo_settings
    from avs_net_ros.datasets.generate import generate
    from avs_net_ros.tools import write_bag

    root = str(tmp_path / layout)
    generate(root, layout=layout, counts={'train': 0, 'val': 0, 'test': 3}, seed=2,
             size=(40, 30), frames_per_location=3, progress=False)
    bag = str(tmp_path / 'bag')
    assert write_bag.main(['batvision', bag, '--root', root, '--layout', layout,
                           '--gt-encoding', '16UC1', '--quiet']) == 0
    frames, report = read_frames(bag, need=('ground_truth', 'echoes'))
    mod = bv2 if layout == 'bv2' else bv1
    records = sort_records(mod.read_index(root, 'test'))
    settings = echo_settings(layout)
    assert len(frames) == len(records) == 3
    assert report.echo_info.window_samples == settings.features.window_samples
    assert report.echo_info.lead_in_samples == settings.lead_in_samples
    for f, rec in zip(frames, records):
        inst = mod.load_instance(rec)
        np.testing.assert_array_equal(f.rgb, inst['rgb'])
        np.testing.assert_array_equal(f.echo, cut_window(inst['audio'], settings))
        want = depth_to_metres(inst['depth_mm'], settings.echo_max_depth, beyond='invalid')
        np.testing.assert_allclose(np.nan_to_num(f.ground_truth), want, atol=5e-4)
    assert write_bag.main(['batvision', str(tmp_path / 'x'), '--root',
                           str(tmp_path / 'none')]) == 2


def _wal_bag(tmp_path, n):
    """Write a sqlite3 bag, switch it to WAL mode (rosbag2's resilient preset), drop metadata."""
    src = _frames(n, 24, 32)
    path = str(tmp_path / 'bag')
    with BagWriter(path, 'sqlite3') as w:
        w.set_echo_info(INFO)
        for stamp, rgb, echo, gt in src:
            w.write_frame(stamp, rgb, echo, gt)
    (db,) = [os.path.join(path, f) for f in os.listdir(path) if f.endswith('.db3')]
    con = sqlite3.connect(db)
    assert con.execute('PRAGMA journal_mode=WAL').fetchone()[0] == 'wal'
    con.close()
    os.remove(os.path.join(path, 'metadata.yaml'))
    return src, path, db


def test_wal_mode_db3_without_metadata_is_salvaged(tmp_path):
    """A WAL-mode file (header bytes 18/19 = 2) is read, every frame exactly."""
    src, path, db = _wal_bag(tmp_path, 6)
    with open(db, 'rb') as f:
        assert f.read(20)[18:20] == b'\x02\x02'
    frames, report = read_frames(path, need=('ground_truth', 'echoes'))
    assert [f.stamp_ns for f in frames] == [s[0] for s in src]
    for f, s in zip(frames, src):
        np.testing.assert_array_equal(f.ground_truth, s[3])


def test_wal_commits_not_yet_checkpointed_are_salvaged(tmp_path):
    """Rows that live only in the -wal file (the recorder died) are read too."""
    src, path, db = _wal_bag(tmp_path, 4)
    con = sqlite3.connect(db)
    con.execute('PRAGMA wal_autocheckpoint=0')
    last = con.execute('SELECT topic_id, timestamp, data FROM messages ORDER BY id').fetchall()
    shift = 10 ** 9
    con.executemany('INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)',
                    [(t, ts + shift, d) for t, ts, d in last])
    con.commit()
    # copy the files while the writer still holds them: the commits are in the -wal only
    os.makedirs(tmp_path / 'crashed')
    for suffix in ('', '-wal'):
        with open(db + suffix, 'rb') as f, open(tmp_path / 'crashed' / (
                os.path.basename(db) + suffix), 'wb') as g:
            g.write(f.read())
    con.close()
    assert os.path.getsize(tmp_path / 'crashed' / (os.path.basename(db) + '-wal')) > 0
    frames, _ = read_frames(str(tmp_path / 'crashed'), need=('ground_truth', 'echoes'))
    assert len(frames) == 2 * len(src)
