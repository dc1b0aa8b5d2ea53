"""The sparse first layer of the numba backend: compressed pixels and register-tile kernels.

MNIST's pixels are 81% zeros.  The first layer's two big products only need
the nonzero ones:

* forward, image-major: ``A1[i, cols] = sum over the image's nonzero pixels p
  of X[i, p] * W1[p, cols]``;
* weight gradient, pixel-major: ``dW1[p, cols] = sum over the batch's images i
  with X[i, p] != 0 of X[i, p] * dZ1[i, cols]``, applied to ``W1[p]`` by the
  optimizer in the same pass (rows no image touched get a zero gradient).

Both are one operation, ``out[0:T] = sum_k val[k] * src[idx[k], col:col+T]``
(:func:`rows_axpy`), run on a *register tile*: ``T`` accumulators that stay in
vector registers for the whole loop over ``k``.  Written as a loop over a row
of an array, numba reloads and stores the accumulators for every ``k`` (it
cannot prove that ``out`` and ``src`` do not overlap), which costs a
store-to-load round trip per nonzero; written as ``T`` scalar locals, LLVM's
SLP vectorizer packs them into ``T/8`` (AVX2) or ``T/16`` (AVX-512) registers.
So the tile kernels are generated below as source text with named locals: the
one place in fastnn where code is generated, for that reason alone.  They need
``fastmath={"contract"}`` for FMA instructions and numba's SLP vectorizer
(off by default; see :func:`fastnn.backends._numba_setup.vectorizing`).

The data are compressed once per run (:func:`compress_rows`, CSR with
``uint16`` pixel indices) and each batch's columns are built from it per step
(:func:`batch_columns`, a bucket sort of the batch's nonzeros by pixel, each
thread sorting its own range of pixels).
"""

from __future__ import annotations

import numpy as np

from ._numba_jitable import like
from ._numba_setup import FASTMATH, kernel

# Tile widths, widest first; a remainder narrower than the last is done one column at a time.
TILES = (64, 16)


def _tile_source(width: int) -> str:
    lines = [f"def _axpy{width}(src, ld, col, idx, val, k0, k1, out, o):", "    zero = like(out, 0.0)"]
    lines += [f"    a{j} = zero" for j in range(width)]
    lines += [
        "    for k in range(k0, k1):",
        "        x = val[k]",
        # unsigned offsets: numba's negative-index wraparound would hide that they are consecutive
        "        b = np.uint64(idx[k]) * ld + col",
    ]
    lines += [f"        a{j} += x * src[b + np.uint64({j})]" for j in range(width)]
    lines += [f"    out[o + np.uint64({j})] = a{j}" for j in range(width)]
    return "\n".join(lines) + "\n"


for _width in TILES:
    exec(compile(_tile_source(_width), __file__, "exec"), globals())  # defines _axpy64, _axpy16
_tiles = {w: kernel(fastmath=FASTMATH, inline="always")(globals()[f"_axpy{w}"]) for w in TILES}
_axpy64, _axpy16 = _tiles[64], _tiles[16]


@kernel(fastmath=FASTMATH, nogil=True)
def rows_axpy(src, base, ld, col, width, idx, val, k0, k1, out):
    """``out[0:width] = sum_{k0<=k<k1} val[k] * src[base + idx[k] * ld + col + (0..width)]``.

    ``src`` is a flat buffer holding a row-major matrix of row stride ``ld`` at
    offset ``base``, ``out`` a 1-D array of at least ``width``; the sum runs in
    ``k`` order (so both paths of the same data agree).
    """
    j = 0
    start = np.uint64(base + col)
    uld = np.uint64(ld)
    while j + 64 <= width:
        _axpy64(src, uld, start + np.uint64(j), idx, val, k0, k1, out, np.uint64(j))
        j += 64
    while j + 16 <= width:
        _axpy16(src, uld, start + np.uint64(j), idx, val, k0, k1, out, np.uint64(j))
        j += 16
    if j < width and width >= 16:
        # The last columns as one more tile ending at the width: it recomputes a few columns
        # already written, with the same sums in the same order (so the same values), instead
        # of a scalar loop per column (a 100-unit layer's last 4 columns cost as much as 64).
        _axpy16(src, uld, start + np.uint64(width - 16), idx, val, k0, k1, out, np.uint64(width - 16))
        j = width
    for jj in range(j, width):
        s = like(out, 0.0)
        for k in range(k0, k1):
            s += val[k] * src[base + np.int64(idx[k]) * ld + col + jj]
        out[jj] = s


# Serial on purpose: this runs once per training run (~0.1 s for MNIST), and a
# parallel loop costs about a second more to compile on the first run.
@kernel()
def _count_nonzeros(X, counts):
    for i in range(X.shape[0]):
        c = 0
        for v in X[i]:
            if v != 0.0:
                c += 1
        counts[i + 1] = c


@kernel()
def _fill_rows(X, indptr, idx, val):
    for i in range(X.shape[0]):
        k = indptr[i]
        row = X[i]
        for j in range(row.shape[0]):
            if row[j] != 0.0:
                idx[k] = j
                val[k] = row[j]
                k += 1


def compress_rows(X: np.ndarray):
    """CSR of ``X (n, d)``: ``indptr (n+1,) int64, idx (nnz,) uint16, val (nnz,)`` of ``X``'s dtype.

    Pixel indices fit ``uint16`` (``d <= 65536``, checked by the caller): 6 bytes
    per nonzero, so MNIST's training set streams 54 MB per epoch instead of 188 MB.
    """
    counts = np.zeros(X.shape[0] + 1, np.int64)
    _count_nonzeros(X, counts)
    indptr = np.cumsum(counts)
    idx = np.empty(indptr[-1], np.uint16)
    val = np.empty(indptr[-1], X.dtype)
    _fill_rows(X, indptr, idx, val)
    return indptr, idx, val


@kernel(nogil=True)
def batch_columns(indptr, idx, val, perm, lo, m, p0, p1, cend, crow, cval):
    """Pixels ``[p0, p1)`` of the batch ``perm[lo:lo+m]`` by pixel (CSC, one pass).

    Column ``p`` is ``crow/cval[p * m:cend[p]]``: the batch positions ``0..m-1``
    (increasing, so gradient sums run over the images in batch order) of the
    images whose pixel ``p`` is nonzero, and those values.  Every column has
    room for all ``m`` images, so one pass places each nonzero with no counting
    pass first, and threads can build disjoint pixel ranges at once.  Each
    image's pixel list is sorted: its part in ``[p0, p1)`` is found by bisection.
    """
    for p in range(p0, p1):
        cend[p] = p * m
    for i in range(m):
        r = perm[lo + i]
        k0, k1 = indptr[r], indptr[r + 1]
        k = k0 + np.searchsorted(idx[k0:k1], p0)
        while k < k1:
            p = np.int64(idx[k])
            if p >= p1:
                break
            at = cend[p]
            crow[at] = i
            cval[at] = val[k]
            cend[p] = at + 1
            k += 1
