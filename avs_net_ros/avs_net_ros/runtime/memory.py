"""Allocator settings for processes that make many image-sized NumPy temporaries.

glibc's malloc serves blocks above its mmap threshold (dynamic, 128 KiB to 32 MiB) with fresh
``mmap`` pages and hands freed heap tops back to the kernel, so each camera-sized temporary
(a 480x640 float64 map is 2.4 MiB) is paid for again in page faults. Measured here on the
metrics of one 480x640 map (``benchmarks/bench_metrics.py``): 6.7 ms per call with the default
settings, 2.8 ms with freed memory kept. The cost is that a process keeps its peak heap
instead of shrinking.

``keep_freed_memory`` is called by the package's entry points (the nodes, bringup and the
command-line tools), not on import. It leaves the allocator alone when the environment already
sets ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``, or ``AVS_NET_ROS_MALLOC=default``,
and does nothing where the C library is not glibc.
"""

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Keep freed memory for reuse; return whether the settings were applied.

    Blocks up to ``mmap_threshold`` bytes come from the heap, and up to ``trim_threshold``
    bytes of freed heap stay with the process.
    """
    if os.environ.get('AVS_NET_ROS_MALLOC') == 'default' or any(
            k in os.environ for k in ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
        gnu = libc.gnu_get_libc_version  # only glibc has both
    except (OSError, AttributeError):
        return False
    del gnu
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
                and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
