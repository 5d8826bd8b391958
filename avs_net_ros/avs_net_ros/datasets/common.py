"""Pieces shared by the BV1 and BV2 layouts: errors, records, WAV and depth conversions."""

from dataclasses import dataclass, field
import os
from typing import Dict, Iterable, List, Sequence, Tuple
import wave

from avs_net_ros.core.errors import AvsInputError

import numpy as np

SPLITS = ('train', 'val', 'test')


class DatasetFormatError(AvsInputError):
    """A dataset root, CSV, column or file does not follow the expected layout."""


@dataclass(frozen=True)
class Record:
    """One dataset instance: where its files are and how it sits in its sequence.

    Attributes:
        split: 'train', 'val' or 'test'.
        location: BV2 location folder or BV1 date folder.
        index: Frame id (BV2 'index' column; BV1 row order within the date folder).
        time: Epoch seconds (orders frames within a location).
        audio: Audio file path(s): one stereo WAV (BV2) or (left, right) .npy files (BV1).
        camera: Image path ('' when the layout row has none).
        depth: Depth .npy path.
        row: The CSV row as read (column name -> string).

    """

    split: str
    location: str
    index: int
    time: float
    audio: Tuple[str, ...]
    camera: str
    depth: str
    row: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)


def check_split(split: str) -> str:
    """Return ``split`` if it is one of train/val/test, else raise naming it."""
    if split not in SPLITS:
        raise DatasetFormatError(f'unknown split {split!r}; expected one of {SPLITS}')
    return split


def read_csv(path: str, required: Sequence[str]) -> List[Dict[str, str]]:
    """Read a comma-separated file with a header; check ``required`` columns by name."""
    import csv
    if not os.path.isfile(path):
        raise DatasetFormatError(f'missing CSV file {path}')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetFormatError(f'{path}: missing column(s) {missing}; header is {header}')
        return [dict(r) for r in reader]


def write_csv(path: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Write a header and rows, comma-separated, Unix line ends (pandas-readable)."""
    import csv
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(columns)
        for r in rows:
            w.writerow(r)


def require_file(path: str) -> str:
    """Return ``path`` if it is a file, else raise naming it."""
    if not os.path.isfile(path):
        raise DatasetFormatError(f'missing file {path}')
    return path


def write_wav_int32(path: str, audio: np.ndarray, sample_rate: int = 44100,
                    bits: int = 24) -> None:
    """Write (channels, N) float audio in [-1, 1] as PCM int32 carrying ``bits``-bit samples.

    BV2 files are canonical 44-byte-header PCM WAVs with 32-bit containers whose lowest byte is
    zero (24-bit data); Python's ``wave`` writes exactly that header.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2:
        raise AvsInputError(f'audio must be (channels, samples), got shape {x.shape}')
    full = 2 ** (bits - 1)
    q = np.clip(np.round(x * full), -full, full - 1).astype(np.int64) << (32 - bits)
    data = q.T.astype('<i4').tobytes()
    with wave.open(path, 'wb') as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(4)
        w.setframerate(int(sample_rate))
        w.writeframes(data)


def read_wav(path: str) -> Tuple[np.ndarray, int]:
    """Read a PCM WAV into (channels, N) float32 in [-1, 1] (torchaudio's normalisation)."""
    require_file(path)
    try:
        with wave.open(path, 'rb') as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), \
                w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise DatasetFormatError(f'{path}: not a PCM WAV file ({exc})') from None
    if width == 4:
        x = np.frombuffer(raw, '<i4').astype(np.float64) / 2 ** 31
    elif width == 2:
        x = np.frombuffer(raw, '<i2').astype(np.float64) / 2 ** 15
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16))
        v = np.where(v >= 2 ** 23, v - 2 ** 24, v)
        x = v.astype(np.float64) / 2 ** 23
    else:
        raise DatasetFormatError(f'{path}: unsupported sample width {width} bytes')
    return x.reshape(-1, ch).T.astype(np.float32), rate


def depth_to_metres(depth: np.ndarray, max_depth: float, beyond: str = 'clip') -> np.ndarray:
    """Convert stored depth (mm, any dtype) to float32 metres with 0 = invalid.

    As BatVision's loaders: divide by 1000, NaN/inf and negatives become 0; values above
    ``max_depth`` are clipped to it (``beyond='clip'``, the official behaviour) or marked
    invalid (``beyond='invalid'``).
    """
    if beyond not in ('clip', 'invalid'):
        raise AvsInputError(f"beyond must be 'clip' or 'invalid', got {beyond!r}")
    d = np.asarray(depth).astype(np.float32) / np.float32(1000.0)
    d[~np.isfinite(d) | (d < 0)] = 0.0
    over = d > max_depth
    d[over] = max_depth if beyond == 'clip' else 0.0
    return d


def sort_records(records: Iterable[Record]) -> List[Record]:
    """Sort records by location, then time, then index (frame order)."""
    return sorted(records, key=lambda r: (r.location, r.time, r.index))
