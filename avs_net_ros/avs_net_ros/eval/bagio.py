"""Read and write the package's topics in rosbag2 files (mcap or sqlite3) with rosbags.

No ROS install is needed: rosbags deserialises the CDR messages into dataclasses (the echo
type, ``avs_net_msgs/msg/EchoFrame``, is registered from its .msg file: ``typestore``), and the
package's duck-typed converters (``avs_net_ros.messages``) turn them into arrays.
Frames are paired by ``header.stamp`` (``pairing.StampPairer``), never by receive time.
"""

from dataclasses import dataclass, field
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.eval.pairing import PairingStats, StampPairer
from avs_net_ros.eval.salvage import salvage_reader, SalvageError
from avs_net_ros.eval.topics import BagTopics, normalize, require_topics
from avs_net_ros.messages import (EchoInfo, ENCODINGS, frame_to_echo, image_to_array,
                                  image_to_rgb, stamp_to_ns)
import numpy as np
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                QosReliability, QosTime)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

IMAGE_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
ECHO_TYPE = 'avs_net_msgs/msg/EchoFrame'
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
_TYPESTORE = None


class BagReadError(AvsInputError):
    """A bag cannot be opened or read (missing, not a rosbag2, corrupt)."""


def echo_frame_definition() -> str:
    """Return the text of ``avs_net_msgs/msg/EchoFrame.msg``.

    From a source tree it is the message package beside this package's folder, so the code
    reads the definition it sits with; installed, it is ``share/avs_net_msgs/msg`` found
    through ament's resource index.

    Raises:
        FileNotFoundError: neither exists.

    """
    here = os.path.abspath(__file__)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(here))))
    path = os.path.join(repo, 'avs_net_msgs', 'msg', 'EchoFrame.msg')
    if not os.path.isfile(path):
        try:
            from ament_index_python.packages import get_package_share_directory
            path = os.path.join(get_package_share_directory('avs_net_msgs'), 'msg',
                                'EchoFrame.msg')
        except (ImportError, LookupError, OSError) as e:
            raise FileNotFoundError(
                f'avs_net_msgs/msg/EchoFrame.msg not found: not beside the source tree '
                f'({repo}) and not in the ament index ({e}); build avs_net_msgs and source '
                f'the setup script of the install') from e
    with open(path) as f:
        return f.read()


def typestore() -> Any:
    """Return the (cached) ROS 2 Jazzy typestore, with the package's echo message added."""
    global _TYPESTORE
    if _TYPESTORE is None:
        store = get_typestore(Stores.ROS2_JAZZY)
        store.register(get_types_from_msg(echo_frame_definition(), ECHO_TYPE))
        _TYPESTORE = store
    return _TYPESTORE


def depth_to_metres(msg: Any) -> np.ndarray:
    """Return a depth Image (32FC1 metres, NaN invalid; or 16UC1 mm, 0 invalid) in metres."""
    if msg.encoding == '32FC1':
        return np.array(image_to_array(msg), dtype=np.float32)
    if msg.encoding in ('16UC1', 'mono16'):
        mm = image_to_array(msg).astype(np.float32)
        mm[mm == 0] = np.nan
        return mm / 1000.0
    raise AvsInputError(f'depth image encoding {msg.encoding!r} is not supported; use 32FC1 '
                        f'(metres, NaN = invalid) or 16UC1 (millimetres, 0 = invalid)')


@dataclass
class Frame:
    """One stamp-paired sample of a bag; arrays are None when the role was not read."""

    index: int
    stamp_ns: int
    rgb: Optional[np.ndarray] = None
    echo: Optional[np.ndarray] = None
    ground_truth: Optional[np.ndarray] = None
    predictions: Dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ReadReport:
    """What reading a bag found besides the frames."""

    path: str
    topics: Dict[str, str]
    message_counts: Dict[str, int]
    pairing: PairingStats
    echo_info: Optional[EchoInfo] = None
    damage: Optional[str] = None
    duration_s: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-friendly summary."""
        return {'path': self.path, 'topics': self.topics,
                'message_counts': self.message_counts, 'pairing': self.pairing.to_dict(),
                'echo_info': None if self.echo_info is None else self.echo_info.to_dict(),
                'damage': self.damage, 'duration_s': self.duration_s}


def _open(path: str) -> Reader:
    if not os.path.exists(path):
        raise BagReadError(f'bag {path!r} does not exist')
    try:
        reader = Reader(path)
        reader.open()
    except Exception as e:  # rosbags raises several types for foreign or broken files
        raise BagReadError(f'cannot open {path!r} as a rosbag2 (mcap or sqlite3): '
                           f'{type(e).__name__}: {e}') from e
    return reader


def bag_topics(path: str) -> Dict[str, Tuple[str, int]]:
    """Return topic -> (message type, message count) of the bag at ``path`` (salvaged)."""
    reader, _ = _open_or_salvage(path, True)
    try:
        out: Dict[str, Tuple[str, int]] = {}
        for c in reader.connections:
            n = out.get(c.topic, (c.msgtype, 0))[1]
            out[c.topic] = (c.msgtype, n + c.msgcount)
        return out
    finally:
        reader.close()


def _open_or_salvage(path: str, salvage: bool) -> Tuple[Any, Optional[str]]:
    try:
        return _open(path), None
    except BagReadError as e:
        if not salvage or not os.path.exists(path):
            raise
        try:
            reader = salvage_reader(path)
        except (SalvageError, OSError) as s:
            raise BagReadError(f'{e}; salvage failed too: {s}') from e
        if not reader.connections:
            reader.close()
            raise
        read = sum(c.msgcount for c in reader.connections)
        return reader, (f'{str(e).rstrip(".")}. Salvaged {read} message(s) written before '
                        f'the damage ({reader.damage or "no damaged record found"})')


class BagFrames:
    """Iterate the stamp-paired frames of a bag.

    Roles: 'image', 'echoes', 'ground_truth' and the recorded predictions 'metric',
    'pseudo_dense', 'relative'. ``key`` is the role each frame is built around (the camera
    image offline, a prediction when scoring recorded outputs); ``need`` are the roles paired
    to it; ``want`` are roles paired when present but not required.
    """

    def __init__(self, path: str, topics: BagTopics = BagTopics(), key: str = 'image',
                 need: Sequence[str] = ('ground_truth',), want: Sequence[str] = (),
                 slop_s: float = 0.0, horizon_s: float = 2.0, salvage: bool = True) -> None:
        """Open the bag and check that it has the topics of ``key`` and ``need``.

        A bag that rosbags cannot open (truncated, corrupt) is read front to back up to the
        damage when ``salvage`` is set; ``report.damage`` then says what happened.

        Raises:
            BagReadError: the bag is missing or unreadable.
            BagTopicsError: a required topic is absent (listing the bag's topics).

        """
        self.path = path
        self.topics = topics.resolved()
        self.key = key
        self.want = [r for r in want if r != key and r not in need]
        roles = [key, *need, *self.want]
        self._reader, damage = _open_or_salvage(path, salvage)
        available = {c.topic: c.msgtype for c in self._reader.connections}
        wanted = {r: getattr(self.topics, r) for r in roles}
        try:
            self.found = require_topics(available, wanted, optional=self.want, bag=path)
            for role, topic in self.found.items():
                want_type = ECHO_TYPE if role == 'echoes' else IMAGE_TYPE
                if available[topic] != want_type:
                    raise AvsInputError(f'{path}: topic {topic} ({role}) has type '
                                        f'{available[topic]}, expected {want_type}')
        except Exception:
            self._reader.close()
            raise
        self.available = available
        self.pairer = StampPairer(key, [r for r in roles if r != key and r in self.found],
                                  int(round(slop_s * 1e9)), int(round(horizon_s * 1e9)),
                                  optional=[r for r in self.want if r in self.found])
        self.report = ReadReport(path, dict(self.found), {}, self.pairer.stats, damage=damage)
        self.report.duration_s = self._reader.duration / 1e9 if self._reader.duration else 0.0
        self.report.echo_info = self._read_echo_info()

    def __enter__(self) -> 'BagFrames':
        """Use as a context manager (closes the bag)."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Close the bag."""
        self.close()

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()

    def message_count(self, role: str) -> Optional[int]:
        """Return how many messages the bag holds for ``role`` (None if unknown)."""
        topic = self.found.get(role)
        n = sum(c.msgcount for c in self._reader.connections if c.topic == topic)
        return n or None

    def _read_echo_info(self) -> Optional[EchoInfo]:
        """Return the settings of the bag's first echo (None without echoes)."""
        topic = self.topics.echoes
        conns = [c for c in self._reader.connections if c.topic == topic]
        if not conns:
            return None
        if conns[0].msgtype != ECHO_TYPE:
            raise AvsInputError(f'{self.path}: {topic} has type {conns[0].msgtype}, expected '
                                f'{ECHO_TYPE}')
        try:
            for conn, _, raw in self._reader.messages(connections=conns):
                msg = typestore().deserialize_cdr(raw, conn.msgtype)
                return frame_to_echo(msg)[1]
        except AvsInputError:
            raise
        except Exception as e:
            raise BagReadError(f'{self.path}: cannot read {topic}: {e}') from e
        return None

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames in stamp order of completion; a read error ends them (``damage``)."""
        by_topic = {t: r for r, t in self.found.items()}
        conns = [c for c in self._reader.connections if c.topic in by_topic]
        counts = self.report.message_counts
        ts = typestore()
        index = 0
        it = self._reader.messages(connections=conns)
        while True:
            try:
                item = next(it)
                conn, _, raw = item
                role = by_topic.get(conn.topic)
                if role is None:
                    continue
                msg = ts.deserialize_cdr(raw, conn.msgtype)
                stamp = stamp_to_ns(msg.header.stamp)
            except StopIteration:
                break
            except Exception as e:  # a truncated or corrupt file: keep what was read
                self.report.damage = (f'reading stopped after {sum(counts.values())} '
                                      f'message(s): {type(e).__name__}: {e}')
                break
            counts[role] = counts.get(role, 0) + 1
            for stamp_ns, group in self.pairer.add(role, stamp, msg):
                yield self._frame(index, stamp_ns, group)
                index += 1
        for stamp_ns, group in self.pairer.finish():
            yield self._frame(index, stamp_ns, group)
            index += 1

    def _frame(self, index: int, stamp_ns: int, group: Mapping[str, Any]) -> Frame:
        f = Frame(index, stamp_ns)
        for role, msg in group.items():
            if role == 'image':
                f.rgb = image_to_rgb(msg)
            elif role == 'echoes':
                f.echo = frame_to_echo(msg)[0]
            elif role == 'ground_truth':
                f.ground_truth = depth_to_metres(msg)
            else:
                f.predictions[role] = depth_to_metres(msg)
        return f


def _qos(latched: bool) -> List[Qos]:
    zero = QosTime(sec=0, nsec=0)
    inf = QosTime(sec=2147483647, nsec=4294967295)
    return [Qos(QosHistory.KEEP_LAST, 1 if latched else 10, QosReliability.RELIABLE,
                QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
                inf if not latched else zero, inf if not latched else zero,
                QosLiveliness.AUTOMATIC, inf if not latched else zero, False)]


class BagWriter:
    """Write camera frames, echoes, ground truth and predictions as the package's topics."""

    def __init__(self, path: str, storage: str = 'mcap', topics: BagTopics = BagTopics(),
                 frame_id: str = 'camera_optical', echo_frame_id: str = 'speaker_link') -> None:
        """Create the bag directory ``path`` (it must not exist).

        Raises:
            AvsInputError: unknown storage or an existing path.

        """
        if storage not in STORAGES:
            raise AvsInputError(f'unknown bag storage {storage!r}; choose one of '
                                f'{", ".join(STORAGES)}')
        if os.path.exists(path):
            raise AvsInputError(f'bag path {path!r} already exists; choose a new one')
        self.path = path
        self.topics = topics.resolved()
        self.frame_id = frame_id
        self.echo_frame_id = echo_frame_id
        self.echo_info: Optional[EchoInfo] = None
        self._writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._conns: Dict[str, Any] = {}
        self.count = 0

    def __enter__(self) -> 'BagWriter':
        """Use as a context manager (closes the bag)."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Close the bag."""
        self.close()

    def close(self) -> None:
        """Finish the bag (writes the metadata)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _conn(self, topic: str, msgtype: str, latched: bool = False) -> Any:
        topic = normalize(topic)
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(
                topic, msgtype, typestore=typestore(), offered_qos_profiles=_qos(latched))
        return self._conns[topic]

    def _header(self, stamp_ns: int, frame_id: Optional[str] = None) -> Any:
        t = typestore().types
        sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
        return t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](
            sec=sec, nanosec=nsec), frame_id=self.frame_id if frame_id is None else frame_id)

    def write_message(self, topic: str, msgtype: str, msg: Any, receive_ns: int,
                      latched: bool = False) -> None:
        """Write a rosbags message dataclass on ``topic`` at bag time ``receive_ns``."""
        conn = self._conn(topic, msgtype, latched)
        self._writer.write(conn, int(receive_ns), typestore().serialize_cdr(msg, msgtype))
        self.count += 1

    def write_raw(self, topic: str, msgtype: str, raw: bytes, receive_ns: int) -> None:
        """Write already serialised CDR bytes of ``msgtype`` on ``topic``."""
        conn = self._conn(topic, msgtype)
        self._writer.write(conn, int(receive_ns), raw)
        self.count += 1

    def write_image(self, topic: str, array: np.ndarray, encoding: str, stamp_ns: int,
                    receive_ns: Optional[int] = None) -> None:
        """Write ``array`` as a sensor_msgs/Image in ``encoding`` stamped ``stamp_ns``."""
        if encoding not in ENCODINGS:
            raise AvsInputError(f'unsupported image encoding {encoding!r}')
        dtype, channels = ENCODINGS[encoding]
        a = np.ascontiguousarray(np.asarray(array), dtype=dtype.newbyteorder('<'))
        if a.ndim != (2 if channels == 1 else 3):
            raise AvsInputError(f'{encoding} needs {"(H, W)" if channels == 1 else "(H, W, 3)"}'
                                f' arrays, got {a.shape} for {topic}')
        h, w = a.shape[:2]
        msg = typestore().types[IMAGE_TYPE](
            header=self._header(stamp_ns), height=h, width=w, encoding=encoding,
            is_bigendian=0, step=w * channels * dtype.itemsize,
            data=a.view(np.uint8).reshape(-1))
        self.write_message(topic, IMAGE_TYPE, msg, stamp_ns if receive_ns is None
                           else receive_ns)

    def set_echo_info(self, info: Mapping[str, Any]) -> None:
        """Set the settings every echo frame written from now on carries (``EchoInfo`` keys)."""
        self.echo_info = EchoInfo.from_dict(dict(info))

    def write_echo(self, echo: np.ndarray, stamp_ns: int) -> None:
        """Write a (channels, samples) echo as an ``avs_net_msgs/EchoFrame`` on the echoes topic.

        Raises:
            AvsInputError: no echo settings were set, or the array does not fit them.

        """
        info = self.echo_info
        if info is None:
            raise AvsInputError('set the echo settings (set_echo_info) before writing echoes')
        e = np.asarray(echo, dtype=np.float32)
        if e.ndim != 2 or e.shape[0] != info.channels:
            raise AvsInputError(f'echo must be ({info.channels}, samples), got {e.shape}')
        msg = typestore().types[ECHO_TYPE](
            header=self._header(stamp_ns, self.echo_frame_id), sample_rate=info.sample_rate,
            channels=info.channels, lead_in_samples=info.lead_in_samples,
            speed_of_sound=info.speed_of_sound, max_range=info.max_range,
            chirp_start_hz=info.chirp_start_hz, chirp_end_hz=info.chirp_end_hz,
            chirp_duration=info.chirp_duration, chirp_method=info.chirp_method,
            backend=info.backend, samples=np.ascontiguousarray(e).reshape(-1))
        self.write_message(self.topics.echoes, ECHO_TYPE, msg, stamp_ns)

    def write_camera_info(self, k: np.ndarray, width: int, height: int, stamp_ns: int) -> None:
        """Write a plumb-bob CameraInfo with intrinsic matrix ``k`` (3x3)."""
        t = typestore().types
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        p = np.zeros((3, 4))
        p[:, :3] = k
        roi = t['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
        msg = t[CAMERA_INFO_TYPE](
            header=self._header(stamp_ns), height=height, width=width,
            distortion_model='plumb_bob', d=np.zeros(5), k=k.ravel(), r=np.eye(3).ravel(),
            p=p.ravel(), binning_x=0, binning_y=0, roi=roi)
        self.write_message(self.topics.camera_info, CAMERA_INFO_TYPE, msg, stamp_ns)

    def write_frame(self, stamp_ns: int, rgb: Optional[np.ndarray] = None,
                    echo: Optional[np.ndarray] = None,
                    ground_truth: Optional[np.ndarray] = None,
                    k: Optional[np.ndarray] = None, gt_encoding: str = '32FC1',
                    predictions: Optional[Mapping[str, np.ndarray]] = None) -> None:
        """Write one frame's messages, all stamped ``stamp_ns``.

        ``ground_truth`` is metres (NaN or 0 = invalid); with ``gt_encoding='16UC1'`` it is
        stored in millimetres, 0 = invalid. ``predictions`` maps a role ('metric',
        'pseudo_dense', 'relative') to a depth map in metres.
        """
        tp = self.topics
        if rgb is not None:
            self.write_image(tp.image, rgb, 'rgb8', stamp_ns)
            if k is not None:
                self.write_camera_info(k, rgb.shape[1], rgb.shape[0], stamp_ns)
        if echo is not None:
            self.write_echo(echo, stamp_ns)
        if ground_truth is not None:
            gt = np.asarray(ground_truth, dtype=np.float32)
            if gt_encoding == '16UC1':
                mm = np.where(np.isfinite(gt) & (gt > 0), np.round(gt * 1000.0), 0)
                self.write_image(tp.ground_truth, np.clip(mm, 0, 65535).astype(np.uint16),
                                 '16UC1', stamp_ns)
            elif gt_encoding == '32FC1':
                self.write_image(tp.ground_truth, gt, '32FC1', stamp_ns)
            else:
                raise AvsInputError(f'ground truth encoding must be 32FC1 or 16UC1, got '
                                    f'{gt_encoding!r}')
        for role, depth in (predictions or {}).items():
            self.write_image(getattr(tp, role), np.asarray(depth, dtype=np.float32), '32FC1',
                             stamp_ns)


def read_frames(path: str, topics: BagTopics = BagTopics(), **kwargs: Any
                ) -> Tuple[List[Frame], ReadReport]:
    """Read every paired frame of a (small) bag into memory; see ``BagFrames``."""
    with BagFrames(path, topics, **kwargs) as bag:
        frames = list(bag)
    return frames, bag.report
