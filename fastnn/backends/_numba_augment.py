"""The numba kernel of the augmentation defined in :mod:`fastnn.augment`.

One parallel region over the samples (each thread a contiguous range, with its
own scratch arrays); per sample: the keyed draws (the flip's too, when flips are
on), the affine sampling coordinates, the elastic field as two small banded
products, the bilinear interpolation, written straight into the output row,
counting its nonzeros for the sparse path.  Random erasing is a second, short
parallel pass (:func:`erase_rows`) over the rectangles that
:func:`fastnn.augment.erase_boxes` computes for both backends.  Arithmetic is in
float64 like the reference's, except the elastic field's two products: float32
register tiles (:func:`_rows32`), which halved the kernel's time (10.5 -> 5.5 us
per image on one core); see :func:`fastnn.augment.agreement_atol` for what that
costs in agreement.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .. import _keys
from .. import augment as _aug
from ..pixels import SIDE  # a compile-time constant in the kernels
from . import _numba_jitable  # noqa: F401  (registers the random keys for compiled code)
from ._numba_setup import FASTMATH, kernel, vectorizing

N_AFFINE_DRAWS = _aug.N_AFFINE_DRAWS


WIDTH = 32  # rows of the elastic products padded to 32 columns: one register tile


def _tile_source() -> str:
    """``out[o:o+32] = sum_{k0<=k<k1} w[wo + k - k0] * src[k, 0:32]`` with 32 named accumulators.

    Named locals let LLVM's SLP vectorizer keep the accumulators in registers (a loop
    over an array row reloads and stores them per ``k``: see :mod:`._numba_sparse`).
    """
    lines = ["def _rows32(src, k0, k1, w, wo, out, o):", "    zero = np.float32(0.0)"]
    lines += [f"    a{j} = zero" for j in range(WIDTH)]
    lines += ["    for k in range(k0, k1):", "        x = w[wo + k - k0]", "        row = src[k]"]
    lines += [f"        a{j} += x * row[{j}]" for j in range(WIDTH)]
    lines += [f"    out[o + {j}] = a{j}" for j in range(WIDTH)]
    return "\n".join(lines) + "\n"


exec(compile(_tile_source(), __file__, "exec"), globals())  # defines _rows32
_rows32 = kernel(fastmath=FASTMATH, inline="always")(globals()["_rows32"])


@kernel(inline="always")
def _signed_uniform(key, j):
    """2 u_j - 1 for draw ``j`` of the sample with key ``key``: uniform in [-1, 1)."""
    return 2.0 * _keys.uniform(key, np.uint64(j)) - 1.0


@kernel(parallel=True)
def augment_rows(
    X, out, counts, ekey, n_chunks, rotation, shear, scale, shift, elastic, amp, A, lo, hi, flip, flip_draw
):
    """Distort every row of ``X`` into ``out``; ``amp = alpha * sigma``, ``A, lo, hi`` the elastic grid,
    ``flip`` the flip probability and ``flip_draw`` the index of the flip draw.

    ``counts[i + 1]`` receives the number of nonzero pixels of ``out[i]`` (for the sparse path).
    Erasing is :func:`erase_rows`' (a pass of its own: in this loop, even never taken, it
    slowed the interpolation by 9%).
    """
    n = X.shape[0]
    K = A.shape[1]
    c = (SIDE - 1) / 2.0
    to_rad = math.pi / 180.0
    for t in prange(n_chunks):
        i0 = t * n // n_chunks
        i1 = (t + 1) * n // n_chunks
        U = np.empty(K * K, np.float32)
        T = np.zeros((K, WIDTH), np.float32)
        R = np.empty(WIDTH, np.float32)
        sx = np.empty((SIDE, SIDE))
        sy = np.empty((SIDE, SIDE))
        A32 = A.astype(np.float32)
        AT = np.zeros((K, WIDTH), np.float32)
        for a in range(K):
            for q in range(SIDE):
                AT[a, q] = A32[q, a]
        for i in range(i0, i1):
            nonzero = 0
            key = _keys.sample_key(ekey, np.uint64(i))
            theta = (rotation * _signed_uniform(key, 0)) * to_rad
            k = shear * _signed_uniform(key, 1)
            zx = 1.0 + scale * _signed_uniform(key, 2)
            zy = 1.0 + scale * _signed_uniform(key, 3)
            tx = shift * _signed_uniform(key, 4)
            ty = shift * _signed_uniform(key, 5)
            cs, sn = np.cos(theta), np.sin(theta)
            # two copies of the loop rather than a flip in it: a table of the (mirrored)
            # column offsets instead of the division cost 2% on every image
            if flip > 0.0 and _keys.uniform(key, np.uint64(flip_draw)) < flip:
                for r in range(SIDE):  # F: the output's columns mirrored, (q - c) -> (c - q)
                    py = (r - c) / zy
                    for q in range(SIDE):
                        px = (c - q) / zx + k * py
                        sx[r, q] = c + cs * px - sn * py - tx
                        sy[r, q] = c + sn * px + cs * py - ty
            else:
                for r in range(SIDE):
                    py = (r - c) / zy
                    for q in range(SIDE):
                        px = (q - c) / zx + k * py
                        sx[r, q] = c + cs * px - sn * py - tx
                        sy[r, q] = c + sn * px + cs * py - ty
            if elastic:
                for comp in range(2):
                    base = N_AFFINE_DRAWS + comp * K * K
                    for a in range(K * K):
                        U[a] = np.float32(_signed_uniform(key, base + a))
                    for a in range(K):  # T = U A^T  (K x SIDE, padded)
                        _rows32(AT, 0, K, U, a * K, T[a], 0)
                    S = sx if comp == 0 else sy
                    for r in range(SIDE):  # S += amp * A T, over each row's nonzero band of A
                        _rows32(T, lo[r], hi[r], A32[r], lo[r], R, 0)
                        for q in range(SIDE):
                            S[r, q] += amp * R[q]
            # bilinear interpolation, zero outside the image; the taps are read only where
            # one of them can lie in the ink's bounding box [r0, r1] x [c0, c1] (elsewhere
            # all four are zero: the same 0 without the loads)
            r0, r1, c0, c1 = SIDE, -1, SIDE, -1
            for r in range(SIDE):
                for q in range(SIDE):
                    if X[i, r * SIDE + q] != 0.0:
                        r0 = min(r0, r)
                        r1 = max(r1, r)
                        c0 = min(c0, q)
                        c1 = max(c1, q)
            for r in range(SIDE):
                for q in range(SIDE):
                    x = sx[r, q]
                    y = sy[r, q]
                    fx = math.floor(x)
                    fy = math.floor(y)
                    ax = x - fx
                    ay = y - fy
                    ix = int(fx)
                    iy = int(fy)
                    v = 0.0
                    if iy + 1 >= r0 and iy <= r1 and ix + 1 >= c0 and ix <= c1:
                        if 0 <= iy < SIDE:
                            if 0 <= ix < SIDE:
                                v += (1.0 - ay) * (1.0 - ax) * X[i, iy * SIDE + ix]
                            if 0 <= ix + 1 < SIDE:
                                v += (1.0 - ay) * ax * X[i, iy * SIDE + ix + 1]
                        if 0 <= iy + 1 < SIDE:
                            if 0 <= ix < SIDE:
                                v += ay * (1.0 - ax) * X[i, (iy + 1) * SIDE + ix]
                            if 0 <= ix + 1 < SIDE:
                                v += ay * ax * X[i, (iy + 1) * SIDE + ix + 1]
                    at = r * SIDE + q
                    out[i, at] = v  # rounded to out's dtype
                    nonzero += out[i, at] != 0.0
            counts[i + 1] = nonzero


@kernel(parallel=True)
def erase_rows(out, counts, boxes, n_chunks):
    """Random erasing: set ``out[i]``'s rectangle ``boxes[i] = [y0, x0, h, w]`` to 0 (none when
    ``h = w = 0``), taking the nonzeros it held off ``counts[i + 1]``."""
    n = out.shape[0]
    for t in prange(n_chunks):
        for i in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            y0, x0, h, w = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
            erased = 0
            for r in range(y0, y0 + h):
                for q in range(x0, x0 + w):
                    at = r * SIDE + q
                    erased += out[i, at] != 0.0
                    out[i, at] = 0.0
            counts[i + 1] -= erased


@kernel(parallel=True)
def fill_rows(X, indptr, idx, val, n_chunks):
    """The CSR rows of ``X`` (as :func:`._numba_sparse.compress_rows` makes them), in parallel.

    Branch-free: every pixel is written at the next free place of its row, which only a
    nonzero one advances; once the row is full, the remaining zeros go to the spare
    slot ``idx[nnz]`` at the very end (never into the next row, which may be another
    thread's).
    """
    n, d = X.shape
    spare = idx.shape[0] - 1
    for t in prange(n_chunks):
        for i in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            k = indptr[i]
            end = indptr[i + 1]
            for j in range(d):
                v = X[i, j]
                kk = k if k < end else spare
                idx[kk] = j
                val[kk] = v
                k += v != 0.0


# --- augmentation -------------------------------------------------------------


def augment(X, seed: int, epoch: int, spec, out, ws=None) -> None:
    """Write epoch ``epoch``'s random distortion of every image of ``X (n, 784)`` into ``out``.

    The same images as the reference's (to :data:`fastnn.augment.AGREEMENT_ATOL`), in one
    parallel pass over the samples.  With the training workspace ``ws``, ``out`` is then
    made the data ``ws`` trains on (its path chosen and, on the sparse path, its rows
    compressed anew: :meth:`Workspace.prepare` with ``refresh=True``).
    """
    X = np.asarray(X)
    n = X.shape[0]
    if X.ndim != 2 or X.shape[1] != _aug.SIDE * _aug.SIDE:
        raise ValueError(f"augmentation takes (n, {_aug.SIDE * _aug.SIDE}) images, got shape {X.shape}")
    if not (
        isinstance(out, np.ndarray)
        and out.shape == X.shape
        and out.dtype in (np.float32, np.float64)
        and out.flags.c_contiguous
        and out.flags.writeable
    ):
        raise ValueError(f"out must be a writable C-contiguous float array of shape {X.shape}")
    X = np.ascontiguousarray(X, dtype=out.dtype)
    if np.shares_memory(X, out):
        raise ValueError("augment cannot write over its own input")
    if spec.elastic:
        A, lo, hi = _aug.elastic_grid(spec.sigma)
    else:
        A, lo, hi = np.zeros((_aug.SIDE, 1)), np.zeros(_aug.SIDE, np.int64), np.zeros(_aug.SIDE, np.int64)
    n_chunks = max(1, min(n, numba.get_num_threads()))
    counts = np.zeros(n + 1, np.int64)
    with vectorizing():
        augment_rows(
            X,
            out,
            counts,
            np.uint64(_aug.epoch_key(seed, epoch)),
            n_chunks,
            float(spec.rotation),
            float(spec.shear),
            float(spec.scale),
            float(spec.shift),
            spec.elastic,
            float(spec.alpha) * float(spec.sigma),
            A,
            lo,
            hi,
            float(spec.flip),
            spec.flip_draw(),
        )
        if spec.erase > 0:
            boxes = _aug.erase_boxes(_aug.erase_draws(_aug.sample_keys(seed, epoch, n), spec), spec)
            erase_rows(out, counts, boxes, n_chunks)
    if ws is not None:
        ws.adopt(out, counts, n_chunks)
