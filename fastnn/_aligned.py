"""Arrays whose data start on a cache-line boundary.

NumPy aligns large arrays to 16 bytes only.  The numba backend reads rows of
``W1`` as 64-byte vectors (AVX-512) or pairs of 32-byte ones; a row that starts
mid-line splits every such load across two lines, which cost the sparse
forward pass 18% when measured.  Parameters, optimizer state and workspaces
are therefore allocated here.
"""

from __future__ import annotations

import numpy as np

ALIGN = 64  # bytes: one cache line


def empty(shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data start on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start : start + n].view(dtype).reshape(shape)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    """Like :func:`empty`, filled with zeros."""
    out = empty(shape, dtype)
    out[...] = 0
    return out


def aligned(a, dtype=np.float32) -> np.ndarray:
    """``a`` as a C-contiguous, 64-byte-aligned array of ``dtype``: itself if it already is one."""
    a = np.asarray(a)
    if a.dtype == dtype and a.flags.c_contiguous and a.ctypes.data % ALIGN == 0:
        return a
    out = empty(a.shape, dtype)
    out[...] = a
    return out
