"""BatVision V2 layout: location folders with per-split CSVs, WAV, JPEG and uint16 depth.

::

    <root>/<Location>/{train,val,test}.csv      12 columns, see BV2_COLUMNS
    <root>/<Location>/audio/audio_<i>.wav       PCM, 2 ch (L, R), 44.1 kHz, int32 with 24-bit data
    <root>/<Location>/camera/camera_<i>.jpeg    RGB JPEG (1280x720 in the real data)
    <root>/<Location>/depth/depth_<i>.npy       uint16 (H, W) millimetres, 0 = invalid

Path columns hold ``<Location>/audio/`` etc. (trailing slash, relative to the root) and files
are found at ``root/<path>/<file name>``, as the official loader joins them. The root must hold
only location folders (the official loader lists it); a stray file is an error here too.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

from avs_net_ros.datasets.common import (check_split, DatasetFormatError, read_csv, read_wav,
                                         Record, require_file, SPLITS, write_csv,
                                         write_wav_int32)

import numpy as np
from PIL import Image

#: The real BV2 CSV header, in order.
BV2_COLUMNS = ('index', 'time', 'left audio time', 'right audio time', 'audio path',
               'audio file name', 'camera time', 'camera path', 'camera file name',
               'depth time', 'depth path', 'depth file name')
#: Columns the reader needs (selected by name, never by position).
BV2_REQUIRED = ('audio path', 'audio file name', 'depth path', 'depth file name')
BV2_SAMPLES = 20000
BV2_SAMPLE_RATE = 44100
BV2_MAX_DEPTH = 30.0


def encode_depth_mm(depth_m: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Return uint16 millimetres, 0 where invalid or not representable (> 65.534 m)."""
    mm = np.round(np.where(valid, depth_m, 0.0) * 1000.0)
    mm[(mm < 0) | (mm > 65534) | ~np.isfinite(mm)] = 0
    return mm.astype(np.uint16)


def write_jpeg(path: str, rgb: np.ndarray, quality: int = 75) -> None:
    """Write an (H, W, 3) uint8 image as a baseline JFIF JPEG."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DatasetFormatError(f'image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
    Image.fromarray(rgb, 'RGB').save(path, 'JPEG', quality=quality, optimize=False,
                                     progressive=False)


def read_image(path: str) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB."""
    require_file(path)
    with Image.open(path) as im:
        return np.asarray(im.convert('RGB'))


def write_instance(root: str, location: str, index: int, rgb: np.ndarray, depth_mm: np.ndarray,
                   audio: np.ndarray, sample_rate: int = BV2_SAMPLE_RATE,
                   jpeg_quality: int = 75) -> Tuple[str, str, str]:
    """Write one instance's three files; return their (audio, camera, depth) file names."""
    names = (f'audio_{index}.wav', f'camera_{index}.jpeg', f'depth_{index}.npy')
    dirs = [os.path.join(root, location, d) for d in ('audio', 'camera', 'depth')]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    if depth_mm.dtype != np.uint16:
        raise DatasetFormatError(f'BV2 depth must be uint16 mm, got {depth_mm.dtype}')
    write_wav_int32(os.path.join(dirs[0], names[0]), audio, sample_rate, bits=24)
    write_jpeg(os.path.join(dirs[1], names[1]), rgb, jpeg_quality)
    np.save(os.path.join(dirs[2], names[2]), depth_mm, allow_pickle=False)
    return names


def csv_row(location: str, index: int, time: float) -> List[str]:
    """Return the 12 CSV values of one instance (per-sensor times as in the real rows)."""
    return [str(index), f'{time:.6f}', f'{time + 0.001:.6f}', f'{time + 0.001:.6f}',
            f'{location}/audio/', f'audio_{index}.wav', f'{time + 0.004:.6f}',
            f'{location}/camera/', f'camera_{index}.jpeg', f'{time + 0.004:.6f}',
            f'{location}/depth/', f'depth_{index}.npy']


def write_split_csvs(root: str, location: str, rows: Dict[str, Sequence[Sequence[str]]]) -> None:
    """Write <location>/{train,val,test}.csv; splits without rows get a header-only file."""
    os.makedirs(os.path.join(root, location), exist_ok=True)
    for split in SPLITS:
        ordered = sorted(rows.get(split, ()), key=lambda r: int(r[0]))
        write_csv(os.path.join(root, location, f'{split}.csv'), BV2_COLUMNS, ordered)


def list_locations(root: str, blacklist: Sequence[str] = ()) -> List[str]:
    """Return the location folders of a BV2 root (sorted), minus ``blacklist``."""
    if not os.path.isdir(root):
        raise DatasetFormatError(f'BV2 root {root} is not a directory')
    entries = sorted(os.listdir(root))
    stray = [e for e in entries if not os.path.isdir(os.path.join(root, e))]
    if stray:
        raise DatasetFormatError(f'BV2 root {root} must hold only location folders; found '
                                 f'file(s) {stray}')
    locs = [e for e in entries if e not in set(blacklist)]
    if not locs:
        raise DatasetFormatError(f'BV2 root {root} has no location folders')
    return locs


def read_index(root: str, split: str, locations: Optional[Sequence[str]] = None,
               blacklist: Sequence[str] = ()) -> List[Record]:
    """Return the records of ``split`` over ``locations`` (default: all in the root)."""
    check_split(split)
    locs = list(locations) if locations is not None else list_locations(root, blacklist)
    out = []
    for loc in locs:
        path = os.path.join(root, loc, f'{split}.csv')
        for row in read_csv(path, BV2_REQUIRED):
            audio = os.path.join(root, row['audio path'], row['audio file name'])
            depth = os.path.join(root, row['depth path'], row['depth file name'])
            cam = os.path.join(root, row['camera path'], row['camera file name']) \
                if row.get('camera path') and row.get('camera file name') else ''
            try:
                index = int(float(row['index'])) if row.get('index') else len(out)
                time = float(row['time']) if row.get('time') else float(index)
            except ValueError as exc:
                raise DatasetFormatError(f'{path}: bad index/time value ({exc})') from None
            out.append(Record(split, loc, index, time, (audio,), cam, depth, row))
    return out


def load_instance(record: Record, image: bool = True) -> Dict[str, object]:
    """Load one record's raw arrays.

    Returns a dict with 'audio' (2, N) float32 in [-1, 1], 'sample_rate', 'depth_mm' (H, W) as
    stored (uint16 mm) and, when ``image``, 'rgb' (H, W, 3) uint8.
    """
    audio, rate = read_wav(record.audio[0])
    if audio.shape[0] != 2:
        raise DatasetFormatError(f'{record.audio[0]}: expected 2 channels, got {audio.shape[0]}')
    depth = np.load(require_file(record.depth), allow_pickle=False)
    if depth.ndim != 2:
        raise DatasetFormatError(f'{record.depth}: depth must be 2-D, got shape {depth.shape}')
    out = {'audio': audio, 'sample_rate': rate, 'depth_mm': depth}
    if image:
        if not record.camera:
            raise DatasetFormatError(f'record {record.location}/{record.index} has no camera '
                                     f'path/file name column')
        out['rgb'] = read_image(record.camera)
    return out
