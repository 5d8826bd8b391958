"""Read what is left of a truncated or corrupt rosbag2 file, front to back.

rosbags needs an MCAP file's footer and summary and an intact SQLite database, so a bag cut
short by a crash or a full disk cannot be opened at all. These readers scan from the start
and stop at the first damaged record, so the messages written before the damage can still be
evaluated. They offer the subset of ``rosbags.rosbag2.Reader`` that ``BagFrames`` uses.
"""

from dataclasses import dataclass
import os
import sqlite3
import struct
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import yaml

MCAP_MAGIC = b'\x89MCAP0\r\n'
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = 0x03, 0x04, 0x05, 0x06, 0x0F


@dataclass(frozen=True)
class SalvagedConnection:
    """A topic found while salvaging (fields named as rosbags' Connection)."""

    id: int  # noqa: A003 (the name rosbags' Connection uses)
    topic: str
    msgtype: str
    msgcount: int = 0


class SalvageError(Exception):
    """Nothing could be salvaged (the message says why)."""


def bag_file(path: str) -> str:
    """Return the storage file of a bag directory (or ``path`` itself if it is a file)."""
    if os.path.isfile(path):
        return path
    files = []
    meta = os.path.join(path, 'metadata.yaml')
    if os.path.exists(meta):
        try:
            with open(meta) as f:
                info = yaml.safe_load(f)['rosbag2_bagfile_information']
            files = [os.path.join(path, os.path.basename(p))
                     for p in info.get('relative_file_paths', [])]
        except Exception:  # a damaged metadata file: fall back to the directory listing
            files = []
    files = [f for f in files if os.path.exists(f)] or sorted(
        os.path.join(path, f) for f in os.listdir(path) if f.endswith(('.mcap', '.db3')))
    if not files:
        raise SalvageError(f'{path} holds no .mcap or .db3 file')
    if len(files) > 1:
        raise SalvageError(f'{path} is split into {len(files)} files; salvage reads one')
    return files[0]


class _Buf:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise EOFError('record runs past the end of the data')
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack('<H', self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack('<I', self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack('<Q', self.take(8))[0]

    def string(self) -> str:
        return bytes(self.take(self.u32())).decode('utf-8')


def _records(data: memoryview) -> Iterator[Tuple[int, memoryview, bool]]:
    """Yield (opcode, body, complete); the last body is partial when the data is cut."""
    buf = _Buf(data)
    while buf.pos < len(buf.data):
        op = buf.take(1)[0]
        n = buf.u64()
        if n > len(buf.data) - buf.pos:
            yield op, buf.data[buf.pos:], False
            raise EOFError(f'record (opcode {op:#x}) of {n} bytes is cut after '
                           f'{len(buf.data) - buf.pos}')
        yield op, buf.take(n), True


class McapSalvageReader:
    """Scan an MCAP file record by record; stop at the first damaged one."""

    def __init__(self, path: str) -> None:
        """Read the file (bags are read whole; salvage is for the rare damaged one)."""
        self.path = path
        with open(path, 'rb') as f:
            self._data = f.read()
        if not self._data.startswith(MCAP_MAGIC):
            raise SalvageError(f'{path} does not start with the MCAP magic bytes')
        self.damage: Optional[str] = None
        self._schemas: Dict[int, str] = {}
        self._channels: Dict[int, SalvagedConnection] = {}
        self._messages: List[Tuple[int, int, bytes]] = []
        self._scan()
        counts: Dict[int, int] = {}
        for cid, _, _ in self._messages:
            counts[cid] = counts.get(cid, 0) + 1
        self.connections = [SalvagedConnection(c.id, c.topic, c.msgtype, counts.get(c.id, 0))
                            for c in self._channels.values()]
        stamps = [t for _, t, _ in self._messages]
        self.duration = (max(stamps) - min(stamps)) if stamps else 0

    def _scan(self) -> None:
        data = memoryview(self._data)[len(MCAP_MAGIC):]
        try:
            self._walk(data, top=True)
        except EOFError as e:
            self.damage = f'truncated MCAP file: {e}'
        except (struct.error, UnicodeDecodeError, ValueError) as e:
            self.damage = f'corrupt MCAP record: {e}'

    def _walk(self, data: memoryview, top: bool) -> None:
        for op, body, complete in _records(data):
            if not complete and op != _OP_CHUNK:
                continue  # _records raises next
            b = _Buf(body)
            if op == _OP_SCHEMA:
                sid = b.u16()
                self._schemas[sid] = b.string()
            elif op == _OP_CHANNEL:
                cid, sid = b.u16(), b.u16()
                topic = b.string()
                self._channels[cid] = SalvagedConnection(cid, topic, self._schemas.get(sid, ''))
            elif op == _OP_MESSAGE:
                cid = b.u16()
                b.u32()
                log_time = b.u64()
                b.u64()
                self._messages.append((cid, log_time, bytes(body[b.pos:])))
            elif op == _OP_CHUNK and top:
                b.u64(), b.u64(), b.u64(), b.u32()
                compression = b.string()
                size = b.u64()
                if not complete:
                    if not compression:  # walk the cut chunk's records up to the cut
                        self._walk(b.data[b.pos:b.pos + size], top=False)
                    continue  # _records raises next
                records = b.take(size)
                if compression == 'zstd':
                    import zstandard
                    records = memoryview(zstandard.ZstdDecompressor().decompress(
                        bytes(records), max_output_size=1 << 31))
                elif compression == 'lz4':
                    import lz4.frame
                    records = memoryview(lz4.frame.decompress(bytes(records)))
                elif compression:
                    raise ValueError(f'unknown chunk compression {compression!r}')
                self._walk(records, top=False)
            elif op == _OP_DATA_END and top:
                return

    def messages(self, connections: Sequence[Any] = ()) -> Iterator[Tuple[Any, int, bytes]]:
        """Yield (connection, log time, raw CDR) in file order for ``connections``."""
        want = {c.id: c for c in connections} if connections else {
            c.id: c for c in self.connections}
        for cid, t, raw in self._messages:
            if cid in want:
                yield want[cid], t, raw

    def close(self) -> None:
        """Release the data."""
        self._data = b''


def _checkpointed(path: str) -> Optional[bytes]:
    """Return the database with its ``-wal`` file applied, or None if that fails.

    A WAL-mode database (rosbag2's resilient storage preset) keeps recent commits in the
    ``-wal`` file beside it until a checkpoint; SQLite applies them only when it opens the
    files themselves, so a copy of both is opened and checkpointed in a temporary folder.
    """
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, 'bag.db3')
        shutil.copyfile(path, copy)
        shutil.copyfile(path + '-wal', copy + '-wal')
        try:
            db = sqlite3.connect(copy)
            try:
                db.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
                db.execute('PRAGMA journal_mode=DELETE').fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError:
            return None
        with open(copy, 'rb') as f:
            return f.read()


def _whole_pages(path: str) -> bytes:
    """Return the database cut to whole pages, its header's page count set to match.

    SQLite calls a file whose header promises more pages than it has malformed; with the
    count corrected, every intact page before the cut is readable. A WAL-mode file (header
    bytes 18 and 19 = 2) gets its ``-wal`` file applied when one is there and readable, and
    is marked as a rollback-journal file (1, 1): an in-memory database cannot open WAL mode.
    """
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    if len(data) < 100:
        raise SalvageError(f'{path} is shorter than an SQLite header')
    if 2 in data[18:20] and os.path.isfile(path + '-wal'):
        applied = _checkpointed(path)
        if applied is not None and len(applied) >= 100:
            data = bytearray(applied)
    data[18:20] = b'\x01\x01'
    page = struct.unpack('>H', data[16:18])[0]
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        raise SalvageError(f'{path}: invalid SQLite page size {page}')
    pages = len(data) // page
    if pages == 0:
        raise SalvageError(f'{path} holds no complete SQLite page')
    del data[pages * page:]
    data[28:32] = struct.pack('>I', pages)
    return bytes(data)


class Sqlite3SalvageReader:
    """Read the rows of a damaged rosbag2 SQLite file until SQLite reports the damage."""

    def __init__(self, path: str) -> None:
        """Open the database read-only and read its topics."""
        self.path = path
        self.damage: Optional[str] = None
        self._db = sqlite3.connect(':memory:')
        self._db.deserialize(_whole_pages(path))
        try:
            rows = self._db.execute('SELECT id, name, type FROM topics ORDER BY id').fetchall()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise SalvageError(f'{path}: the topics table cannot be read ({e})') from e
        self._rows: List[Tuple[int, int, bytes]] = []
        try:
            for row in self._db.execute(
                    'SELECT topic_id, timestamp, data FROM messages ORDER BY id'):
                self._rows.append((int(row[0]), int(row[1]), bytes(row[2])))
        except sqlite3.DatabaseError as e:
            self.damage = f'damaged SQLite database: {e}'
        counts: Dict[int, int] = {}
        for cid, _, _ in self._rows:
            counts[cid] = counts.get(cid, 0) + 1
        self.connections = [SalvagedConnection(i, n, t, counts.get(i, 0)) for i, n, t in rows]
        stamps = [t for _, t, _ in self._rows]
        self.duration = (max(stamps) - min(stamps)) if stamps else 0

    def messages(self, connections: Sequence[Any] = ()) -> Iterator[Tuple[Any, int, bytes]]:
        """Yield (connection, receive time, raw CDR) in row order for ``connections``."""
        want = {c.id: c for c in connections} if connections else {
            c.id: c for c in self.connections}
        for cid, t, raw in self._rows:
            if cid in want:
                yield want[cid], t, raw

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def salvage_reader(path: str) -> Any:
    """Return a salvage reader for the bag (directory or file) at ``path``.

    Raises:
        SalvageError: nothing readable (unknown format, no topics, not a bag).

    """
    f = bag_file(path)
    with open(f, 'rb') as fh:
        head = fh.read(16)
    if head.startswith(MCAP_MAGIC):
        return McapSalvageReader(f)
    if head.startswith(b'SQLite format 3'):
        return Sqlite3SalvageReader(f)
    raise SalvageError(f'{f} is neither an MCAP nor an SQLite file')
