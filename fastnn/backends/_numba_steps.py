"""The numba backend's compiled steps: what one mini-batch step does, per thread.

Used by :mod:`fastnn.backends.numba_backend` (read its docstring for the
design): the ``_step_*`` functions are the one definition of each step,
inlined into the public per-step kernels and into :func:`_train_steps`, the
fused loop over a chunk of an epoch.  Thread ``p`` of ``n_parts`` owns the
hidden units ``_slice(h, p, n_parts)``.  Every function is compiled with
``error_model="numpy"``: numba's default Python error model puts a zero test
before every division, which kept LLVM from vectorising Adam's update.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .. import _aligned
from . import _optim
from ._numba_blas import N as _N
from ._numba_blas import T as _T
from ._numba_blas import gemm
from ._numba_setup import CACHE as _CACHE
from ._numba_sparse import FASTMATH, TILES, batch_columns, rows_axpy

_SGD, _NESTEROV, _ADAM = _optim.SGD, _optim.NESTEROV, _optim.ADAM

@njit(cache=_CACHE, error_model="numpy", inline="always")
def _slice(h, t, parts):
    """Hidden units ``[h0, h1)`` owned by part ``t`` of ``parts`` (sizes differ by at most 1)."""
    return (h * t) // parts, (h * (t + 1)) // parts


# --- what the compiled steps carry ---------------------------------------------


class Buffers(NamedTuple):
    """One batch's working arrays (``m`` rows at most), plus per-thread scratch."""

    Xb: np.ndarray       # (m, d) the gathered batch (dense path only)
    yb: np.ndarray       # (m,) its labels
    A1: np.ndarray       # (m, h) hidden activations
    parts: np.ndarray    # (threads, m, c) per-thread partial logits
    logits: np.ndarray   # (m, c)
    dlogits: np.ndarray  # (m, c)
    dA1: np.ndarray      # (m, h) dZ1 after the backward pass
    dW1: np.ndarray      # (d, h) first-layer gradient (dense path with an optimizer only)
    dW2: np.ndarray      # (h, c)
    db1: np.ndarray      # (h,)
    db2: np.ndarray      # (c,)
    grow: np.ndarray     # (threads, h) one W1 gradient row per thread (sparse path)
    cend: np.ndarray     # (d,) the batch's pixel columns (sparse path): ends,
    crow: np.ndarray     # (m * d,) batch positions (uint16),
    cval: np.ndarray     # (m * d,) and values


class Rows(NamedTuple):
    """The training inputs in compressed rows (see :func:`._numba_sparse.compress_rows`)."""

    indptr: np.ndarray
    idx: np.ndarray
    val: np.ndarray


class Rule(NamedTuple):
    """The optimizer rule and its hyperparameters (see :mod:`._optim`)."""

    kind: int
    momentum: float
    beta2: float
    eps: float
    weight_decay: float


class Moments(NamedTuple):
    """The optimizer's buffers per parameter (stand-ins where a rule has none)."""

    mW1: np.ndarray
    mb1: np.ndarray
    mW2: np.ndarray
    mb2: np.ndarray
    vW1: np.ndarray
    vb1: np.ndarray
    vW2: np.ndarray
    vb2: np.ndarray


_NO_ROWS = Rows(np.zeros(1, np.int64), np.zeros(0, np.uint16), np.zeros(0, np.float32))


def _buffers(batch_size, n_features, hidden, n_classes, n_parts, sparse) -> Buffers:
    m, d, h, c = batch_size, n_features, hidden, n_classes
    f32, empty = np.float32, _aligned.empty
    n_cols = m * d if sparse else 0
    return Buffers(
        Xb=empty((0 if sparse else m, d)), yb=empty(m, np.int64),
        A1=empty((m, h)), parts=empty((n_parts, m, c)), logits=empty((m, c)), dlogits=empty((m, c)),
        dA1=empty((m, h)), dW1=empty((0 if sparse else d, h)), dW2=empty((h, c)),
        db1=empty(h), db2=empty(c), grow=empty((n_parts, h)),
        cend=empty(d, np.int64), crow=empty(n_cols, np.uint16),
        cval=empty(n_cols, f32))


# --- step functions: the one definition of each step, inlined everywhere -----------


@njit(cache=_CACHE, error_model="numpy", fastmath=FASTMATH, inline="always")
def _step_hidden_sparse(rows, perm, lo, m, W1, A1, h0, h1):
    """A1[:, h0:h1] = X[perm[lo:lo+m]] @ W1[:, h0:h1], over each image's nonzero pixels.

    A block of columns at a time, for every image: the block's part of ``W1``
    (784 x 64 floats, 200 KB) stays in the core's L2 cache while the images
    read it.  (Image by image over the whole slice re-read ``W1`` from L3 for
    every image once it outgrew L2: 4x slower at 800 hidden units.)
    """
    width = TILES[0]
    for j in range(h0, h1, width):
        w = min(width, h1 - j)
        for i in range(m):
            r = perm[lo + i]
            rows_axpy(W1, j, w, rows.idx, rows.val, rows.indptr[r], rows.indptr[r + 1], A1[i, j:j + w])


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_hidden_dense(Xb, m, W1, A1, h0, h1):
    """A1[:, h0:h1] = Xb @ W1[:, h0:h1] (single-threaded sgemm)."""
    d, h = W1.shape
    gemm(_N, _N, m, h1 - h0, d, 1.0, Xb, 0, d, W1, h0, h, 0.0, A1, h0, h)


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_activate(m, b1, W2, A1, part, h0, h1):
    """A1[:, h0:h1] = relu(A1[:, h0:h1] + b1[h0:h1]);  part = A1[:, h0:h1] @ W2[h0:h1]."""
    h = A1.shape[1]
    c = W2.shape[1]
    bias = b1[h0:h1]
    for i in range(m):
        row = A1[i, h0:h1]  # row views let LLVM vectorise these loops
        for j in range(h1 - h0):
            v = row[j] + bias[j]
            row[j] = v if v > 0.0 else np.float32(0.0)
    gemm(_N, _N, m, c, h1 - h0, 1.0, A1, h0, h, W2, h0 * c, c, 0.0, part, 0, c)


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_sum_parts(parts, b2, m, logits):
    c = logits.shape[1]
    for i in range(m):
        for j in range(c):
            s = b2[j]
            for t in range(parts.shape[0]):
                s += parts[t, i, j]
            logits[i, j] = s


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_softmax_xent(logits, m, yb, dlogits):
    # One pass per row: max, log-sum-exp, loss, gradient, argmax.  m x c is tiny,
    # so this stays serial; it runs between the two parallel regions of a step.
    c = logits.shape[1]
    inv_m = np.float32(1.0) / np.float32(m)
    loss = 0.0
    correct = 0
    for i in range(m):
        zmax = logits[i, 0]
        arg = 0
        for j in range(1, c):
            if logits[i, j] > zmax:
                zmax = logits[i, j]
                arg = j
        total = np.float32(0.0)
        for j in range(c):
            e = np.exp(logits[i, j] - zmax)
            dlogits[i, j] = e
            total += e
        label = yb[i]
        # float64 difference: logits can span more than float32's range
        loss += np.log(total) - (np.float64(logits[i, label]) - np.float64(zmax))
        inv_total = np.float32(1.0) / total
        for j in range(c):
            dlogits[i, j] = dlogits[i, j] * inv_total * inv_m
        dlogits[i, label] -= inv_m
        if arg == label:
            correct += 1
    return loss, correct


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_backward_small(m, A1, W2, dlogits, dW2, dA1, db1, h0, h1):
    """This thread's slice: dW2[h0:h1], dZ1[:, h0:h1] (into dA1) and db1[h0:h1]."""
    h = A1.shape[1]
    c = W2.shape[1]
    gemm(_T, _N, h1 - h0, c, m, 1.0, A1, h0, h, dlogits, 0, c, 0.0, dW2, h0 * c, c)
    gemm(_N, _T, m, h1 - h0, c, 1.0, dlogits, 0, c, W2, h0 * c, c, 0.0, dA1, h0, h)
    db = db1[h0:h1]
    db[:] = 0.0
    for i in range(m):
        grad, act = dA1[i, h0:h1], A1[i, h0:h1]
        for j in range(h1 - h0):
            g = grad[j] if act[j] > 0.0 else np.float32(0.0)
            grad[j] = g
            db[j] += g


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_column_sums(a, m, out):
    for j in range(a.shape[1]):
        out[j] = 0.0
    for i in range(m):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_apply(p, g, m, v, lr, rule, wd, bc1, bc2):
    """One optimizer step on 1-D views; the rules (and their float32 order) as in the reference.

    One loop per rule, so that each is a plain vector loop (a rule chosen inside
    the loop kept LLVM from vectorising it).
    """
    one = np.float32(1.0)
    kind = rule.kind
    mu, b2, eps = np.float32(rule.momentum), np.float32(rule.beta2), np.float32(rule.eps)
    if kind == _SGD:
        for j in range(p.shape[0]):
            p[j] -= lr * (g[j] + wd * p[j])
    elif kind == _ADAM:
        for j in range(p.shape[0]):
            gj = g[j] + wd * p[j]
            mj = mu * m[j] + (one - mu) * gj
            vj = b2 * v[j] + (one - b2) * gj * gj
            m[j] = mj
            v[j] = vj
            p[j] -= lr * (mj / bc1) / (np.sqrt(vj / bc2) + eps)
    elif kind == _NESTEROV:
        for j in range(p.shape[0]):
            gj = g[j] + wd * p[j]
            mj = mu * m[j] + gj
            m[j] = mj
            p[j] -= lr * (gj + mu * mj)
    else:
        for j in range(p.shape[0]):
            mj = mu * m[j] + (g[j] + wd * p[j])
            m[j] = mj
            p[j] -= lr * mj


@njit(cache=_CACHE, error_model="numpy", fastmath=FASTMATH, inline="always")
def _step_w1_sparse(b, m, W1, mW1, vW1, lr, rule, bc1, bc2, fused, grow, h0, h1):
    """W1[:, h0:h1] one optimizer step, its gradient summed over each pixel's nonzero images.

    One pass over the slice, a row at a time: the row's gradient goes into
    ``grow`` and the rule is applied to the row at once, so no ``dW1`` is
    stored.  Plain SGD (``fused``) skips the pixels no image in the batch lit
    (their gradient is zero); every other rule visits every row, as the
    reference does, so momentum still decays and weight decay still applies there.
    """
    d = W1.shape[0]
    wd = np.float32(rule.weight_decay)
    g = grow[:h1 - h0]
    for p in range(d):
        k0, k1 = p * m, b.cend[p]
        if k0 == k1:
            if fused:
                continue
            g[:] = 0.0
        else:
            rows_axpy(b.dA1, h0, h1 - h0, b.crow, b.cval, k0, k1, g)
        if fused:
            row = W1[p, h0:h1]
            for q in range(h1 - h0):
                row[q] -= lr * g[q]
        else:
            _step_apply(W1[p, h0:h1], g, mW1[p, h0:h1], vW1[p, h0:h1], lr, rule, wd, bc1, bc2)


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _step_w1_dense(b, m, W1, mW1, vW1, lr, rule, bc1, bc2, fused, h0, h1):
    """W1[:, h0:h1] one optimizer step with the gradient from sgemm (fused into it for plain SGD)."""
    d, h = W1.shape
    # (no early return: numba's inliner does not keep one inside a parallel loop)
    if fused:  # W1[:, h0:h1] += -lr * Xb^T dZ1[:, h0:h1], the update inside the sgemm
        gemm(_T, _N, d, h1 - h0, m, -lr, b.Xb, 0, d, b.dA1, h0, h, 1.0, W1, h0, h)
    else:
        gemm(_T, _N, d, h1 - h0, m, 1.0, b.Xb, 0, d, b.dA1, h0, h, 0.0, b.dW1, h0, h)
        wd = np.float32(rule.weight_decay)
        for r in range(d):
            _step_apply(W1[r, h0:h1], b.dW1[r, h0:h1], mW1[r, h0:h1], vW1[r, h0:h1], lr, rule, wd, bc1, bc2)


@njit(cache=_CACHE, error_model="numpy", nogil=True)
def _forward_part(X, perm, lo, m, W1, b1, W2, b, rows, sparse, p, n_parts):
    """Part ``p`` of a step's forward region: its hidden slice, and (sparse) its pixels' columns."""
    d, h = W1.shape
    h0, h1 = _slice(h, p, n_parts)
    if sparse:
        _step_hidden_sparse(rows, perm, lo, m, W1, b.A1, h0, h1)
        q0, q1 = _slice(d, p, n_parts)  # the columns backward needs, a range of pixels per part
        batch_columns(rows.indptr, rows.idx, rows.val, perm, lo, m, q0, q1, b.cend, b.crow, b.cval)
    else:
        _step_hidden_dense(b.Xb, m, W1, b.A1, h0, h1)
    _step_activate(m, b1, W2, b.A1, b.parts[p], h0, h1)


@njit(cache=_CACHE, error_model="numpy", nogil=True)
def _backward_part(m, W1, b1, W2, b, sparse, rule, mo, lr, bc1, bc2, p, n_parts):
    """Part ``p`` of a step's backward region: every gradient and update of its hidden slice."""
    h = W1.shape[1]
    h0, h1 = _slice(h, p, n_parts)
    fused = rule.kind == _SGD and rule.weight_decay == 0.0
    _step_backward_small(m, b.A1, W2, b.dlogits, b.dW2, b.dA1, b.db1, h0, h1)
    if sparse:
        _step_w1_sparse(b, m, W1, mo.mW1, mo.vW1, lr, rule, bc1, bc2, fused, b.grow[p], h0, h1)
    else:
        _step_w1_dense(b, m, W1, mo.mW1, mo.vW1, lr, rule, bc1, bc2, fused, h0, h1)
    _step_apply(W2[h0:h1].ravel(), b.dW2[h0:h1].ravel(), mo.mW2[h0:h1].ravel(), mo.vW2[h0:h1].ravel(),
                lr, rule, np.float32(rule.weight_decay), bc1, bc2)
    _step_apply(b1[h0:h1], b.db1[h0:h1], mo.mb1[h0:h1], mo.vb1[h0:h1], lr, rule, np.float32(0.0), bc1, bc2)


@njit(cache=_CACHE, error_model="numpy", nogil=True)
def _gather_part(X, perm, lo, m, Xb, p, n_parts):
    i0, i1 = _slice(m, p, n_parts)
    for i in range(i0, i1):
        src = perm[lo + i]
        for j in range(X.shape[1]):
            Xb[i, j] = X[src, j]


@njit(cache=_CACHE, error_model="numpy", parallel=True)
def _train_steps(X, y, perm, start, stop, batch_size, lrs, W1, b1, W2, b2, b, rows, sparse,
                 rule, mo, t0):
    # The parallel loops only call the parts: numba compiles a parallel loop's body
    # slowly, so it is kept to one call (with an int64 part number: the loop's own
    # index is unsigned inside the parallel region, which would compile each part twice).
    n_parts = b.parts.shape[0]
    loss_sum = 0.0
    correct = 0
    step = 0
    for lo in range(start, stop, batch_size):
        m = min(batch_size, stop - lo)
        lr = lrs[step]
        t = t0 + step + 1
        bc1 = np.float32(1.0 - rule.momentum ** t) if rule.kind == _ADAM else np.float32(1.0)
        bc2 = np.float32(1.0 - rule.beta2 ** t) if rule.kind == _ADAM else np.float32(1.0)
        for i in range(m):
            b.yb[i] = y[perm[lo + i]]
        if not sparse:
            for p in prange(n_parts):
                _gather_part(X, perm, lo, m, b.Xb, np.int64(p), n_parts)
        for p in prange(n_parts):
            _forward_part(X, perm, lo, m, W1, b1, W2, b, rows, sparse, np.int64(p), n_parts)
        _step_sum_parts(b.parts, b2, m, b.logits)
        batch_loss, batch_correct = _step_softmax_xent(b.logits, m, b.yb, b.dlogits)
        loss_sum += batch_loss
        correct += batch_correct
        for p in prange(n_parts):
            _backward_part(m, W1, b1, W2, b, sparse, rule, mo, lr, bc1, bc2, np.int64(p), n_parts)
        _step_column_sums(b.dlogits, m, b.db2)
        _step_apply(b2, b.db2, mo.mb2, mo.vb2, lr, rule, np.float32(0.0), bc1, bc2)
        step += 1
    return loss_sum, correct
