"""The numba kernel of the augmentation defined in :mod:`fastnn.augment`.

One parallel region over the samples (each thread a contiguous range, with its
own scratch arrays); per sample: the keyed draws, the affine sampling
coordinates, the elastic field as two small banded products, and the bilinear
interpolation, written straight into the output row.  All arithmetic is in
float64, like the reference; only the pixel written is rounded to float32.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._numba_setup import CACHE as _CACHE

SIDE = 28
GOLDEN = 0x9E3779B97F4A7C15
N_AFFINE_DRAWS = 6


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _signed_uniform(key, j):
    """2 u_j - 1 for draw ``j`` of the sample with key ``key``: uniform in [-1, 1)."""
    z = _mix(key + np.uint64(j + 1) * np.uint64(GOLDEN))
    return 2.0 * (np.float64(z >> np.uint64(11)) * 2.0 ** -53) - 1.0


@njit(cache=_CACHE, error_model="numpy", parallel=True)
def augment_rows(X, out, ekey, n_chunks, rotation, shear, scale, shift, elastic, amp, A, lo, hi):
    """Distort every row of ``X`` into ``out``; ``amp = alpha * sigma``, ``A, lo, hi`` the elastic grid."""
    n = X.shape[0]
    K = A.shape[1]
    c = (SIDE - 1) / 2.0
    to_rad = math.pi / 180.0
    for t in prange(n_chunks):
        i0 = t * n // n_chunks
        i1 = (t + 1) * n // n_chunks
        U = np.empty((K, K))
        T = np.empty((K, SIDE))
        sx = np.empty((SIDE, SIDE))
        sy = np.empty((SIDE, SIDE))
        R = np.empty(SIDE)
        AT = np.ascontiguousarray(A.T)
        for i in range(i0, i1):
            key = _mix(ekey + np.uint64(i) * np.uint64(GOLDEN))
            theta = (rotation * _signed_uniform(key, 0)) * to_rad
            k = shear * _signed_uniform(key, 1)
            zx = 1.0 + scale * _signed_uniform(key, 2)
            zy = 1.0 + scale * _signed_uniform(key, 3)
            tx = shift * _signed_uniform(key, 4)
            ty = shift * _signed_uniform(key, 5)
            cs, sn = np.cos(theta), np.sin(theta)
            for r in range(SIDE):
                py = (r - c) / zy
                for q in range(SIDE):
                    px = (q - c) / zx + k * py
                    sx[r, q] = c + cs * px - sn * py - tx
                    sy[r, q] = c + sn * px + cs * py - ty
            if elastic:
                for comp in range(2):
                    base = N_AFFINE_DRAWS + comp * K * K
                    for a in range(K):
                        for b in range(K):
                            U[a, b] = _signed_uniform(key, base + a * K + b)
                    # T = U A^T  (K x SIDE), row by row of A^T (contiguous: vectorizes over q)
                    for a in range(K):
                        for q in range(SIDE):
                            T[a, q] = 0.0
                        for b in range(K):
                            u = U[a, b]
                            for q in range(SIDE):
                                T[a, q] += u * AT[b, q]
                    # S += amp * A T, over each row's nonzero band of A
                    S = sx if comp == 0 else sy
                    for r in range(SIDE):
                        for q in range(SIDE):
                            R[q] = 0.0
                        for a in range(lo[r], hi[r]):
                            w = A[r, a]
                            for q in range(SIDE):
                                R[q] += w * T[a, q]
                        for q in range(SIDE):
                            S[r, q] += amp * R[q]
            # bilinear interpolation, zero outside the image
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
                    out[i, r * SIDE + q] = np.float32(v)
