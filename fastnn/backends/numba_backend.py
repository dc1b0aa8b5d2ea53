"""The fast backend: the reference kernels compiled with Numba and run in parallel.

Same functions, same arguments and same results (to float32 rounding) as
:mod:`fastnn.backends.numpy_backend`; read that module for the math.  What is
different here is *how* the work is spread over cores:

* **Matmuls go to single-threaded BLAS, one call per thread.**  Numba cannot
  beat a tuned sgemm, but an ``@njit(parallel=True)`` region that calls a
  multithreaded BLAS makes two thread pools fight over the same cores (we
  measured 50x slower than NumPy).  So sgemm is called straight from compiled
  code through SciPy's BLAS (``scipy.linalg.cython_blas``), with that library
  pinned to one thread while our kernels run (:func:`_blas_single_threaded`),
  and the parallelism is ours.
* **The hidden layer is split across threads, not the batch.**  Thread ``t``
  owns hidden units ``[h0, h1)``: it computes its columns of ``A1``, its rows
  of ``W2``'s contribution to the logits, and later its columns of ``dW1``.
  Nothing large is ever reduced across threads (data-parallel splitting would
  have to sum a full ``d x h`` gradient every step); only the ``m x c`` partial
  logits are added up.  ``W1`` and ``W2`` are updated by the thread that owns
  the slice.  For plain SGD the ``W1`` update is fused into its gradient sgemm
  (``W1 += -lr * Xb^T dZ1`` with ``beta = 1``), so ``dW1`` is never stored;
  other optimizers (or weight decay) have the sgemm write ``dW1`` and each
  thread applies the rule to its own slice.
* **Whole chunks of an epoch run without returning to Python**
  (:func:`train_steps`): per mini-batch there are three parallel regions
  (gather, forward, backward+update) and a tiny serial softmax between them.

Measured on the project's 2-core machines (README, "Performance"): on the
standard 784-128-10 / batch 128 epoch the two sgemms of a step run at ~74
GFLOP/s per thread, which alone costs 0.17 s per epoch; the whole epoch takes
about 0.20 s (NumPy: 0.29 s).

Kernels are compiled with ``cache=True`` where a cache folder is writable; see
:mod:`fastnn.backends._numba_setup` for the threading layer and the cache location.
"""

from __future__ import annotations

import contextlib

import llvmlite.binding
import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS we call, so threadpoolctl can see it)
from numba import njit, prange
from numba.core import types
from numba.extending import get_cython_function_address

from . import _optim, _permute
from ._numba_setup import CACHE as _CACHE  # also picks the threading layer before numba compiles

NAME = "numba"

# --- BLAS -----------------------------------------------------------------------

# Bound by symbol name rather than as a ctypes pointer: compiled code that holds a
# ctypes pointer cannot be cached, code that calls a named symbol can.
_SGEMM_SYMBOL = "fastnn_scipy_sgemm"
llvmlite.binding.add_symbol(_SGEMM_SYMBOL, get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))
_sgemm = types.ExternalFunction(_SGEMM_SYMBOL, types.void(*([types.voidptr] * 13)))
_N, _T = ord("N"), ord("T")
_SGD, _NESTEROV, _ADAM = _optim.SGD, _optim.NESTEROV, _optim.ADAM

if numba.config.DISABLE_JIT:
    # Uncompiled, the sgemm binding would silently do nothing and leave garbage.
    raise ImportError("the numba backend calls BLAS from compiled code; unset NUMBA_DISABLE_JIT to use it")


@njit(cache=_CACHE, nogil=True)
def _gemm(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    """Row-major ``C = alpha * op(A) @ op(B) + beta * C`` on sub-matrices of flat buffers.

    ``A``, ``B``, ``C`` are C-contiguous arrays; ``*_off`` is the flat offset of
    the sub-matrix's first element and ``ld*`` its row stride, so column blocks
    (a thread's hidden slice) are passed without copying.  Fortran sgemm is
    column-major, so it is asked for ``C^T = op(B)^T op(A)^T`` instead.
    """
    if m == 0 or n == 0:
        return
    if k == 0:  # sgemm would leave C untouched with beta; keep the row-major meaning
        for i in range(m):
            for j in range(n):
                C.ravel()[c_off + i * ldc + j] *= beta
        return
    chars = np.empty(2, np.uint8)
    chars[0] = tb
    chars[1] = ta
    ints = np.empty(6, np.int32)
    ints[0] = n
    ints[1] = m
    ints[2] = k
    ints[3] = ldb
    ints[4] = lda
    ints[5] = ldc
    scal = np.empty(2, np.float32)
    scal[0] = alpha
    scal[1] = beta
    _sgemm(chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes,
           scal[0:].ctypes, B.ravel()[b_off:].ctypes, ints[3:].ctypes,
           A.ravel()[a_off:].ctypes, ints[4:].ctypes, scal[1:].ctypes,
           C.ravel()[c_off:].ctypes, ints[5:].ctypes)


def _scipy_blas_controllers():
    """threadpoolctl handles for the BLAS that numba's sgemm calls (SciPy's), else all BLAS."""
    import os

    import scipy
    from threadpoolctl import ThreadpoolController

    blas = [lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"]
    # Wheels bundle SciPy's OpenBLAS in site-packages/scipy.libs (or inside scipy/); NumPy's
    # own copy lives elsewhere and is left alone, so the NumPy backend keeps its threads.
    scipy_dir = os.path.realpath(os.path.dirname(scipy.__file__))
    roots = (scipy_dir + os.sep, scipy_dir + ".libs" + os.sep)
    ours = [lc for lc in blas if os.path.realpath(lc.filepath).startswith(roots)]
    return ours or blas


_BLAS = None


@contextlib.contextmanager
def _blas_single_threaded():
    """Pin SciPy's BLAS to one thread for the duration: the parallelism is ours."""
    global _BLAS
    if _BLAS is None:
        _BLAS = _scipy_blas_controllers()
    before = [lc.num_threads for lc in _BLAS]
    for lc in _BLAS:
        lc.set_num_threads(1)
    try:
        yield
    finally:
        for lc, n in zip(_BLAS, before):
            lc.set_num_threads(n)


@njit(cache=_CACHE, inline="always")
def _slice(h, t, parts):
    """Hidden units ``[h0, h1)`` owned by part ``t`` of ``parts`` (sizes differ by at most 1)."""
    return (h * t) // parts, (h * (t + 1)) // parts


# --- shuffling and batching -------------------------------------------------


@njit(cache=_CACHE, inline="always")
def _feistel(x, keys, k):
    mask = np.uint64((1 << k) - 1)
    left = x >> np.uint64(k)
    right = x & mask
    for r in range(keys.shape[0]):
        z = right ^ keys[r]
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        left, right = right, left ^ (z & mask)
    return (left << np.uint64(k)) | right


@njit(cache=_CACHE, parallel=True)
def _permutation(n, keys, k, out):
    for i in prange(n):
        x = _feistel(np.uint64(i), keys, k)
        while x >= n:  # cycle walking, as in the reference
            x = _feistel(x, keys, k)
        out[i] = x


def permutation(n: int, seed: int, epoch: int, out: np.ndarray) -> None:
    """Write epoch ``epoch``'s shuffle of ``range(n)`` into ``out``; equal to the reference's."""
    if out.shape != (n,) or out.dtype != np.int64:
        raise ValueError(f"out must be an int64 array of length {n}, got {out.dtype} {out.shape}")
    keys = np.array(_permute.round_keys(seed, epoch), dtype=np.uint64)
    _permutation(n, keys, _permute.half_bits(n), out)


@njit(cache=_CACHE, parallel=True)
def _gather(X, y, idx, Xb, yb):
    d = X.shape[1]
    for i in prange(idx.shape[0]):
        src = idx[i]
        for j in range(d):
            Xb[i, j] = X[src, j]
        yb[i] = y[src]


def gather(X, y, idx, Xb, yb) -> None:
    """Copy the rows ``idx`` of ``X, y`` into ``Xb, yb``."""
    if idx.size and (idx.min() < 0 or idx.max() >= X.shape[0]):
        raise IndexError("gather index out of range")
    _gather(X, y, idx, Xb, yb)


# --- forward ------------------------------------------------------------------


@njit(cache=_CACHE, nogil=True)
def _forward_part(Xb, m, W1, b1, W2, A1, part, h0, h1):
    """This thread's hidden slice: A1[:, h0:h1] = relu(Xb W1[:, h0:h1] + b1); part = A1[:, h0:h1] W2[h0:h1]."""
    d, h = W1.shape
    c = W2.shape[1]
    _gemm(_N, _N, m, h1 - h0, d, 1.0, Xb, 0, d, W1, h0, h, 0.0, A1, h0, h)
    bias = b1[h0:h1]
    for i in range(m):
        row = A1[i, h0:h1]  # row views let LLVM vectorise these loops
        for j in range(h1 - h0):
            v = row[j] + bias[j]
            row[j] = v if v > 0.0 else np.float32(0.0)
    _gemm(_N, _N, m, c, h1 - h0, 1.0, A1, h0, h, W2, h0 * c, c, 0.0, part, 0, c)


@njit(cache=_CACHE, parallel=True)
def _forward(Xb, m, W1, b1, W2, b2, A1, parts, logits):
    n_parts = parts.shape[0]
    for t in prange(n_parts):
        h0, h1 = _slice(W1.shape[1], t, n_parts)
        _forward_part(Xb, m, W1, b1, W2, A1, parts[t], h0, h1)
    _sum_parts(parts, b2, m, logits)


@njit(cache=_CACHE)
def _sum_parts(parts, b2, m, logits):
    c = logits.shape[1]
    for i in range(m):
        for j in range(c):
            s = b2[j]
            for t in range(parts.shape[0]):
                s += parts[t, i, j]
            logits[i, j] = s


def _n_parts(hidden: int) -> int:
    return max(1, min(numba.get_num_threads(), hidden))


def forward(Xb, W1, b1, W2, b2, A1, logits) -> None:
    """A1 = relu(Xb @ W1 + b1);  logits = A1 @ W2 + b2."""
    m = Xb.shape[0]
    _check_shapes(Xb=Xb, W1=W1, b1=b1, W2=W2, b2=b2, A1=A1, logits=logits)
    parts = np.empty((_n_parts(W1.shape[1]), m, W2.shape[1]), np.float32)
    with _outputs(A1, logits) as (A1_, logits_), _blas_single_threaded():
        _forward(_f32(Xb), m, _f32(W1), _f32(b1), _f32(W2), _f32(b2), A1_, parts, logits_)


# --- loss -----------------------------------------------------------------------


@njit(cache=_CACHE)
def _softmax_xent(logits, m, yb, dlogits):
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


def softmax_xent(logits, yb, dlogits) -> tuple[float, int]:
    """Softmax cross-entropy and its gradient; see the reference for the math."""
    _check_shapes(logits=logits, dlogits=dlogits)
    _check_labels(yb, logits.shape[1], logits.shape[0])
    with _outputs(dlogits) as (dlogits_,):
        loss, correct = _softmax_xent(_f32(logits), logits.shape[0], yb, dlogits_)
    return float(loss), int(correct)


# --- backward and update ------------------------------------------------------


@njit(cache=_CACHE, nogil=True)
def _backward_part(Xb, m, A1, W2, dlogits, dW2, dA1, db1, h0, h1):
    """This thread's slice: dW2[h0:h1], dZ1[:, h0:h1] (into dA1) and db1[h0:h1]."""
    h = A1.shape[1]
    c = W2.shape[1]
    _gemm(_T, _N, h1 - h0, c, m, 1.0, A1, h0, h, dlogits, 0, c, 0.0, dW2, h0 * c, c)
    _gemm(_N, _T, m, h1 - h0, c, 1.0, dlogits, 0, c, W2, h0 * c, c, 0.0, dA1, h0, h)
    db = db1[h0:h1]
    db[:] = 0.0
    for i in range(m):
        grad, act = dA1[i, h0:h1], A1[i, h0:h1]
        for j in range(h1 - h0):
            g = grad[j] if act[j] > 0.0 else np.float32(0.0)
            grad[j] = g
            db[j] += g


@njit(cache=_CACHE, parallel=True)
def _backward(Xb, m, A1, W2, dlogits, dW1, db1, dW2, db2, dA1, n_parts):
    d, h = dW1.shape
    for t in prange(n_parts):
        h0, h1 = _slice(h, t, n_parts)
        _backward_part(Xb, m, A1, W2, dlogits, dW2, dA1, db1, h0, h1)
        _gemm(_T, _N, d, h1 - h0, m, 1.0, Xb, 0, d, dA1, h0, h, 0.0, dW1, h0, h)
    _column_sums(dlogits, m, db2)


@njit(cache=_CACHE)
def _column_sums(a, m, out):
    for j in range(a.shape[1]):
        out[j] = 0.0
    for i in range(m):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


def backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1) -> None:
    """Gradients of the mean loss; ``dA1`` holds dZ1 afterwards (as in the reference)."""
    _check_shapes(Xb=Xb, A1=A1, W2=W2, logits=dlogits, W1=dW1, b1=db1, dW2=dW2, b2=db2, dA1=dA1)
    with _outputs(dW1, db1, dW2, db2, dA1) as outs, _blas_single_threaded():
        _backward(_f32(Xb), Xb.shape[0], _f32(A1), _f32(W2), _f32(dlogits), *outs,
                  _n_parts(dW1.shape[1]))


@njit(cache=_CACHE, parallel=True)
def _update(W1, b1, W2, b2, dW1, db1, dW2, db2, lr):
    w1, g1 = W1.ravel(), dW1.ravel()
    for i in prange(w1.shape[0]):
        w1[i] -= lr * g1[i]
    b1 -= lr * db1
    W2 -= lr * dW2
    b2 -= lr * db2


def update(W1, b1, W2, b2, dW1, db1, dW2, db2, lr: float) -> None:
    """Plain SGD: p -= lr * dp for every parameter."""
    with _outputs(W1, b1, W2, b2) as params:
        _update(*params, _f32(dW1), _f32(db1), _f32(dW2), _f32(db2), np.float32(lr))


_SHAPES = {"Xb": "md", "W1": "dh", "b1": "h", "W2": "hc", "dW2": "hc", "b2": "c",
           "A1": "mh", "dA1": "mh", "logits": "mc", "dlogits": "mc"}


def _check_labels(y, n_classes: int, n: int) -> None:
    """Labels index the logits' columns in compiled code: they must lie in [0, c)."""
    if np.shape(y) != (n,):
        raise ValueError(f"expected {n} labels, got shape {np.shape(y)}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), found {y.min()}..{y.max()}")


def _check_shapes(**arrays):
    """Refuse arrays whose shapes disagree: the compiled kernels index without bounds checks.

    Each array's axes are named (m batch, d features, h hidden, c classes) and
    every name must mean the same length everywhere.
    """
    sizes = {}
    for name, a in arrays.items():
        axes = _SHAPES[name]
        shape = np.shape(a)
        if len(shape) != len(axes):
            raise ValueError(f"{name} must have {len(axes)} dimensions, got shape {shape}")
        for axis, n in zip(axes, shape):
            if sizes.setdefault(axis, (n, name))[0] != n:
                raise ValueError(f"{name} has shape {shape}, which does not match "
                                 f"{sizes[axis][1]} (shape {np.shape(arrays[sizes[axis][1]])})")


def _f32(a):
    """Inputs as C-contiguous float32: the sgemm calls address flat buffers by row stride.

    A no-op for the arrays the training loop passes; other layouts are copied.
    """
    a = np.asarray(a)
    if a.dtype != np.float32:
        raise TypeError(f"the numba backend computes in float32, got an array of {a.dtype}")
    return np.ascontiguousarray(a)


@contextlib.contextmanager
def _outputs(*arrays):
    """Yield C-contiguous float32 stand-ins for output arrays; copy back any that were not."""
    work = [_f32(a) for a in arrays]
    yield work
    for a, w in zip(arrays, work):
        if w is not a:
            a[...] = w


# --- whole steps ----------------------------------------------------------------


class Workspace:
    """Preallocated buffers for one batch size and network shape (per-thread partials included)."""

    def __init__(self, batch_size, n_features, hidden, n_classes):
        f32 = np.float32
        self.n_parts = _n_parts(hidden)
        self.Xb = np.empty((batch_size, n_features), f32)
        self.yb = np.empty(batch_size, np.int64)
        self.A1 = np.empty((batch_size, hidden), f32)
        self.parts = np.empty((self.n_parts, batch_size, n_classes), f32)
        self.logits = np.empty((batch_size, n_classes), f32)
        self.dlogits = np.empty((batch_size, n_classes), f32)
        self.dA1 = np.empty((batch_size, hidden), f32)
        self.dW1 = np.empty((n_features, hidden), f32)  # only used when the update is not fused
        self.dW2 = np.empty((hidden, n_classes), f32)
        self.db1 = np.empty(hidden, f32)
        self.db2 = np.empty(n_classes, f32)


def make_workspace(batch_size: int, n_features: int, hidden: int, n_classes: int) -> Workspace:
    """Allocate the buffers :func:`train_steps` needs."""
    return Workspace(batch_size, n_features, hidden, n_classes)


@njit(cache=_CACHE, nogil=True)
def _apply(p, g, m, v, lr, kind, mu, b2, eps, wd, bc1, bc2):
    """One optimizer step on 1-D views; the rules (and their float32 order) as in the reference."""
    one = np.float32(1.0)
    for j in range(p.shape[0]):
        gj = g[j] + wd * p[j]
        if kind == _SGD:
            p[j] -= lr * gj
        elif kind == _ADAM:
            mj = mu * m[j] + (one - mu) * gj
            vj = b2 * v[j] + (one - b2) * gj * gj
            m[j] = mj
            v[j] = vj
            p[j] -= lr * (mj / bc1) / (np.sqrt(vj / bc2) + eps)
        else:
            mj = mu * m[j] + gj
            m[j] = mj
            p[j] -= lr * (gj + mu * mj) if kind == _NESTEROV else lr * mj


def apply_update(p, g, m, v, lr: float, kind: int, momentum: float, beta2: float, eps: float,
                 weight_decay: float, bc1: float, bc2: float) -> None:
    """One optimizer step on one parameter array, in place; see the reference."""
    f32 = np.float32
    with _outputs(p) as (p_,):
        flat = p_.reshape(-1)
        m_ = m.reshape(-1) if m.size else flat  # unused buffers: any array of the right length
        v_ = v.reshape(-1) if v.size else flat
        g_ = _f32(g).reshape(-1)
        with _outputs(m_, v_) as (m2, v2):
            _apply(flat, g_, m2, v2, f32(lr), kind, f32(momentum), f32(beta2), f32(eps),
                   f32(weight_decay), f32(bc1), f32(bc2))


@njit(cache=_CACHE, parallel=True)
def _train_steps(X, y, perm, start, stop, batch_size, lrs, W1, b1, W2, b2,
                 Xb, yb, A1, parts, logits, dlogits, dA1, dW1, dW2, db1, db2,
                 kind, mu, beta2, eps, wd, t0, mW1, mb1, mW2, mb2, vW1, vb1, vW2, vb2):
    d, h = W1.shape
    c = W2.shape[1]
    n_parts = parts.shape[0]
    fused = kind == _SGD and wd == 0.0
    f32 = np.float32
    mu32, b232, eps32, wd32 = f32(mu), f32(beta2), f32(eps), f32(wd)
    loss_sum = 0.0
    correct = 0
    step = 0
    for lo in range(start, stop, batch_size):
        m = min(batch_size, stop - lo)
        lr = lrs[step]
        t = t0 + step + 1
        bc1 = f32(1.0 - mu ** t) if kind == _ADAM else f32(1.0)
        bc2 = f32(1.0 - beta2 ** t) if kind == _ADAM else f32(1.0)
        for i in prange(m):  # gather
            src = perm[lo + i]
            for j in range(d):
                Xb[i, j] = X[src, j]
            yb[i] = y[src]
        for t_ in prange(n_parts):  # forward, one hidden slice per thread
            h0, h1 = _slice(h, t_, n_parts)
            _forward_part(Xb, m, W1, b1, W2, A1, parts[t_], h0, h1)
        _sum_parts(parts, b2, m, logits)
        batch_loss, batch_correct = _softmax_xent(logits, m, yb, dlogits)
        loss_sum += batch_loss
        correct += batch_correct
        for t_ in prange(n_parts):  # backward + update, same slices
            h0, h1 = _slice(h, t_, n_parts)
            _backward_part(Xb, m, A1, W2, dlogits, dW2, dA1, db1, h0, h1)
            if fused:
                # W1[:, h0:h1] += -lr * Xb^T dZ1[:, h0:h1]: the update fused into the sgemm
                _gemm(_T, _N, d, h1 - h0, m, -lr, Xb, 0, d, dA1, h0, h, 1.0, W1, h0, h)
                for j in range(h0, h1):
                    b1[j] -= lr * db1[j]
                w2, g2 = W2[h0:h1].ravel(), dW2[h0:h1].ravel()  # rows h0:h1 are contiguous
                for k in range(w2.shape[0]):
                    w2[k] -= lr * g2[k]
            else:
                _gemm(_T, _N, d, h1 - h0, m, 1.0, Xb, 0, d, dA1, h0, h, 0.0, dW1, h0, h)
                for r in range(d):
                    _apply(W1[r, h0:h1], dW1[r, h0:h1], mW1[r, h0:h1], vW1[r, h0:h1],
                           lr, kind, mu32, b232, eps32, wd32, bc1, bc2)
                _apply(W2[h0:h1].ravel(), dW2[h0:h1].ravel(), mW2[h0:h1].ravel(), vW2[h0:h1].ravel(),
                       lr, kind, mu32, b232, eps32, wd32, bc1, bc2)
                _apply(b1[h0:h1], db1[h0:h1], mb1[h0:h1], vb1[h0:h1],
                       lr, kind, mu32, b232, eps32, f32(0.0), bc1, bc2)
        _column_sums(dlogits, m, db2)
        if fused:
            for k in range(c):
                b2[k] -= lr * db2[k]
        else:
            _apply(b2, db2, mb2, vb2, lr, kind, mu32, b232, eps32, f32(0.0), bc1, bc2)
        step += 1
    return loss_sum, correct


def train_steps(X, y, perm, start: int, stop: int, batch_size: int, lr,
                W1, b1, W2, b2, ws: Workspace, opt=None) -> tuple[float, int]:
    """Mini-batch steps over ``perm[start:stop]``; returns (loss sum, number correct).

    ``lr`` is one learning rate or one per batch; ``opt`` an
    :class:`~._optim.OptimizerState` (None: plain SGD, whose update is fused
    into the gradient sgemm).  Parameters are updated in place (other layouts
    than C-contiguous float32 through a temporary copy, as in the single kernels).
    """
    _check_shapes(Xb=X, W1=W1, b1=b1, W2=W2, b2=b2)
    X = _f32(X)
    if ws.A1.shape[1] != W1.shape[1] or ws.logits.shape[1] != W2.shape[1] or ws.Xb.shape[1] != X.shape[1]:
        raise ValueError("the workspace was made for another network shape")
    if not 0 <= start <= stop <= len(perm) or len(y) != len(X):
        raise ValueError("sample range or label count does not match the data")
    if stop > start and (perm[start:stop].min() < 0 or perm[start:stop].max() >= len(X)):
        raise IndexError("permutation index out of range")  # compiled code does not bounds-check
    _check_labels(y, W2.shape[1], len(y))
    n_steps = -(-(stop - start) // batch_size)
    lrs = np.broadcast_to(np.asarray(lr, np.float32), (n_steps,)).copy() if np.ndim(lr) == 0 \
        else np.ascontiguousarray(lr, np.float32)
    if lrs.shape != (n_steps,):
        raise ValueError(f"expected {n_steps} learning rates, one per batch, got {lrs.shape}")
    if ws.n_parts != _n_parts(W1.shape[1]):  # thread count changed since the workspace was made
        ws.parts = np.empty((_n_parts(W1.shape[1]),) + ws.parts.shape[1:], np.float32)
        ws.n_parts = ws.parts.shape[0]
    with _outputs(W1, b1, W2, b2) as params, _blas_single_threaded():
        if opt is None:
            hyper, buffers = (_optim.SGD, 0.0, 0.0, 0.0, 0.0, 0), list(params) * 2
        else:
            # Unused buffers (SGD has none, momentum no v) are stood in for by the parameters:
            # the compiled rule never touches them, and no empty array is ever sliced.
            hyper = (opt.kind, opt.momentum, opt.beta2, opt.eps, opt.weight_decay, opt.t)
            buffers = [mb if mb.size else p for mb, p in zip(opt.m, params)] + \
                      [vb if vb.size else p for vb, p in zip(opt.v, params)]
        loss, correct = _train_steps(
            X, y, perm, start, stop, batch_size, lrs, *params,
            ws.Xb, ws.yb, ws.A1, ws.parts, ws.logits, ws.dlogits, ws.dA1, ws.dW1, ws.dW2, ws.db1,
            ws.db2, *hyper, *buffers)
    if opt is not None:
        opt.t += n_steps
    return float(loss), int(correct)


@njit(cache=_CACHE, parallel=True)
def _predict_logits(X, W1, b1, W2, b2, A1, out):
    # Inference splits the rows (not the hidden units): no partial sums at all.
    n, d = X.shape
    h = W1.shape[1]
    c = W2.shape[1]
    chunk = A1.shape[1]
    n_chunks = (n + chunk - 1) // chunk
    for t in prange(A1.shape[0]):
        for q in range(t, n_chunks, A1.shape[0]):
            lo = q * chunk
            m = min(chunk, n - lo)
            buf = A1[t]
            _gemm(_N, _N, m, h, d, 1.0, X, lo * d, d, W1, 0, h, 0.0, buf, 0, h)
            for i in range(m):
                for j in range(h):
                    v = buf[i, j] + b1[j]
                    buf[i, j] = v if v > 0.0 else 0.0
            _gemm(_N, _N, m, c, h, 1.0, buf, 0, h, W2, 0, c, 0.0, out, lo * c, c)
            for i in range(lo, lo + m):
                for j in range(c):
                    out[i, j] += b2[j]


def predict_logits(X, W1, b1, W2, b2, out) -> None:
    """Logits for every row of ``X`` into ``out (n, c)``."""
    _check_shapes(Xb=X, W1=W1, b1=b1, W2=W2, b2=b2, logits=out)
    n_threads = numba.get_num_threads()
    A1 = np.empty((n_threads, 256, W1.shape[1]), np.float32)
    with _outputs(out) as (out_,), _blas_single_threaded():
        _predict_logits(_f32(X), _f32(W1), _f32(b1), _f32(W2), _f32(b2), A1, out_)
