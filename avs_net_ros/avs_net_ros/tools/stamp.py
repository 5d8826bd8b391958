"""Content stamps: a short hash of the settings and files a cached artefact was made from.

The demo's models and the Table 2 command's MiDaS-style model are rebuilt only when their
stamp changes, so a model made by other code or settings is never reused silently.
"""

import glob
import hashlib
import os
from typing import Sequence


def content_stamp(text: str, files: Sequence[str], patterns: Sequence[str] = (),
                  repo: str = '.') -> str:
    """Return 16 hex digits hashing ``text``, then each file's relative path and bytes.

    ``files`` come first in the given order, then the files matching the glob ``patterns``
    (relative to ``repo``), sorted.
    """
    h = hashlib.sha256(text.encode())
    paths = list(files) + sorted(f for pattern in patterns
                                 for f in glob.glob(os.path.join(repo, pattern)))
    for f in paths:
        h.update(os.path.relpath(f, repo).encode())
        with open(f, 'rb') as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]
