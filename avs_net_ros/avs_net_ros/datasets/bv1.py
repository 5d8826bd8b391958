"""BatVision V1 layout: one root, per-split CSVs, date folders with per-ear audio arrays.

::

    <root>/{train,val,test}.csv                            paths relative to the root
    <root>/<YYYY.MM.DD>/audio/raw_long/<HHMMSS.micro>_left.npy, ..._right.npy
                                                           1-D float32, ~4410 samples, 44.1 kHz
    <root>/<YYYY.MM.DD>/camera/left/<HHMMSS.micro>.jpeg    RGB
    <root>/<YYYY.MM.DD>/depth/<HHMMSS.micro>.npy           float32 mm, NaN/inf = invalid

The official loader needs 'audio path left', 'audio path right' and 'depth path'; third-party
loaders add 'camera path left'. The real column positions are 2, 3 (audio), 5 (camera), 7
(depth); the names of columns 0, 1, 4, 6 are unknown, so the writer uses 'index', 'time',
'camera time' and 'depth time' there and the reader selects columns by name only.
"""

import os
from typing import Dict, List, Sequence

from avs_net_ros.datasets.bv2 import read_image, write_jpeg
from avs_net_ros.datasets.common import (check_split, DatasetFormatError, read_csv, Record,
                                         require_file, write_csv)

import numpy as np

BV1_COLUMNS = ('index', 'time', 'audio path left', 'audio path right', 'camera time',
               'camera path left', 'depth time', 'depth path')
BV1_REQUIRED = ('audio path left', 'audio path right', 'depth path')
BV1_SAMPLES = 4410
BV1_MAX_DEPTH = 12.0


def encode_depth_mm(depth_m: np.ndarray, valid: np.ndarray, max_range: float) -> np.ndarray:
    """Return float32 mm with NaN where the sensor failed and +inf beyond ``max_range``."""
    mm = (np.asarray(depth_m, dtype=np.float64) * 1000.0).astype(np.float32)
    out = np.where(valid, mm, np.float32(np.nan))
    out[depth_m > max_range] = np.inf
    return out.astype(np.float32)


def stem_for(time: float) -> str:
    """Return the HHMMSS.micro file stem of an epoch time (UTC)."""
    import datetime
    t = datetime.datetime.fromtimestamp(time, datetime.timezone.utc)
    return t.strftime('%H%M%S.%f')


def date_folder(time: float) -> str:
    """Return the YYYY.MM.DD folder name of an epoch time (UTC)."""
    import datetime
    return datetime.datetime.fromtimestamp(time, datetime.timezone.utc).strftime('%Y.%m.%d')


def write_instance(root: str, index: int, time: float, rgb: np.ndarray, depth_mm: np.ndarray,
                   audio: np.ndarray, jpeg_quality: int = 75) -> List[str]:
    """Write one instance under its date folder; return its CSV row (BV1_COLUMNS order)."""
    day, stem = date_folder(time), stem_for(time)
    rel_audio = f'{day}/audio/raw_long'
    rel_cam = f'{day}/camera/left'
    rel_depth = f'{day}/depth'
    for d in (rel_audio, rel_cam, rel_depth):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != 2:
        raise DatasetFormatError(f'BV1 audio must be (2, N), got {x.shape}')
    left, right = f'{rel_audio}/{stem}_left.npy', f'{rel_audio}/{stem}_right.npy'
    np.save(os.path.join(root, left), x[0], allow_pickle=False)
    np.save(os.path.join(root, right), x[1], allow_pickle=False)
    cam = f'{rel_cam}/{stem}.jpeg'
    write_jpeg(os.path.join(root, cam), rgb, jpeg_quality)
    dep = f'{rel_depth}/{stem}.npy'
    np.save(os.path.join(root, dep), depth_mm.astype(np.float32), allow_pickle=False)
    return [str(index), f'{time:.6f}', left, right, f'{time + 0.004:.6f}', cam,
            f'{time + 0.004:.6f}', dep]


def write_split_csv(root: str, split: str, rows: Sequence[Sequence[str]]) -> None:
    """Write <root>/<split>.csv with BV1_COLUMNS, rows in time order."""
    check_split(split)
    os.makedirs(root, exist_ok=True)
    write_csv(os.path.join(root, f'{split}.csv'), BV1_COLUMNS,
              sorted(rows, key=lambda r: float(r[1])))


def read_index(root: str, split: str) -> List[Record]:
    """Return the records of ``split``; location = the date folder of the depth path."""
    check_split(split)
    if not os.path.isdir(root):
        raise DatasetFormatError(f'BV1 root {root} is not a directory')
    path = os.path.join(root, f'{split}.csv')
    rows = read_csv(path, BV1_REQUIRED)
    out = []
    for i, row in enumerate(rows):
        location = row['depth path'].replace('\\', '/').split('/')[0]
        stem = os.path.splitext(os.path.basename(row['depth path']))[0]
        try:
            time = float(row['time']) if row.get('time') else _stem_seconds(stem)
            index = int(float(row['index'])) if row.get('index') else i
        except ValueError as exc:
            raise DatasetFormatError(f'{path}: bad index/time value ({exc})') from None
        cam = os.path.join(root, row['camera path left']) if row.get('camera path left') else ''
        out.append(Record(split, location, index, time,
                          (os.path.join(root, row['audio path left']),
                           os.path.join(root, row['audio path right'])),
                          cam, os.path.join(root, row['depth path']), row))
    return out


def _stem_seconds(stem: str) -> float:
    # HHMMSS.micro -> seconds of the day (orders frames within a date folder).
    return int(stem[:2]) * 3600 + int(stem[2:4]) * 60 + float(stem[4:])


def load_instance(record: Record, image: bool = True) -> Dict[str, object]:
    """Load one record's raw arrays: 'audio' (2, N) float32, 'depth_mm' as stored, 'rgb'."""
    chans = []
    for p in record.audio:
        a = np.load(require_file(p), allow_pickle=False)
        if a.ndim != 1:
            raise DatasetFormatError(f'{p}: BV1 audio must be 1-D, got shape {a.shape}')
        chans.append(a.astype(np.float32))
    if chans[0].shape != chans[1].shape:
        raise DatasetFormatError(f'left/right audio lengths differ: {record.audio}')
    depth = np.load(require_file(record.depth), allow_pickle=False)
    if depth.ndim != 2:
        raise DatasetFormatError(f'{record.depth}: depth must be 2-D, got shape {depth.shape}')
    out = {'audio': np.stack(chans), 'sample_rate': 44100, 'depth_mm': depth}
    if image:
        if not record.camera:
            raise DatasetFormatError(f"{record.depth}: CSV has no 'camera path left' column")
        out['rgb'] = read_image(record.camera)
    return out
