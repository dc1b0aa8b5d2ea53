"""The fast backend: the reference kernels compiled with Numba and run in parallel.

Same functions, same arguments and same results (to float32 rounding) as
:mod:`fastnn.backends.numpy_backend`; read that module for the math.  What is
different here is *how* the work is done:

* **The hidden layer is split across threads, not the batch.**  Thread ``t``
  owns hidden units ``[h0, h1)``: its columns of ``A1`` and of ``W1``, its rows
  of ``W2``.  Nothing large is ever reduced across threads (splitting the batch
  would sum a full ``d x h`` gradient every step); only the ``m x c`` partial
  logits are added up, and each thread updates its own slice of every weight.
* **Sparse inputs skip their zeros** (:mod:`._numba_sparse`).  When the data
  are at most :data:`SPARSE_MAX_DENSITY` nonzero (MNIST: 19%), the first
  layer's forward product runs over each image's nonzero pixels, and its
  weight gradient over each pixel's nonzero images, applied by the optimizer
  in the same pass over ``W1``.  Denser data take the dense path: single-
  threaded sgemm per thread (:mod:`._numba_blas`).  The two paths compute the
  same sums, in different orders.
* **Whole chunks of an epoch run without returning to Python**
  (:func:`train_steps`): per mini-batch two parallel regions (forward,
  backward+update; the dense path gathers the batch in a third) and a short
  serial part between them (partial-logit sums and softmax).

Every kernel is compiled with ``error_model="numpy"`` (a division by zero
gives inf, as in the reference): see :mod:`._numba_steps`.

The public per-step kernels and :func:`train_steps` are built from the same
``inline="always"`` step functions (the ``_step_*`` functions in
:mod:`._numba_steps`: both paths' forward pass, activation, softmax, the small
backward products and the optimizer rule), so a fix there is a fix in both.
Two parts differ on purpose: ``train_steps`` fuses the sparse ``W1`` gradient
with the optimizer (``_step_w1_sparse``), while the public :func:`backward`
stores ``dW1`` from the same tile kernel; and the parallel loops call
``_forward_part`` and ``_backward_part`` rather than inlining everything, which
doubled compile times.  Kernels are compiled with ``cache=True`` where a cache
folder is writable; see :mod:`._numba_setup`.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
from numba import njit, prange

from . import _optim, _permute
from ._checks import check_labels as _check_labels
from ._checks import check_shapes as _check_shapes
from ._checks import f32 as _f32
from ._checks import outputs as _outputs
from ._numba_augment import augment  # noqa: F401  (a kernel of this backend)
from ._numba_augment import fill_rows as _fill_rows
from ._numba_blas import N as _N
from ._numba_blas import T as _T
from ._numba_blas import blas_single_threaded, gemm
from ._numba_setup import CACHE as _CACHE  # also picks the threading layer before numba compiles
from ._numba_setup import vectorizing
from ._numba_sparse import FASTMATH, batch_columns, compress_rows, rows_axpy
from ._numba_steps import (_NO_ROWS, Moments, Rows, Rule, _buffers, _slice, _step_activate,
                           _step_apply, _step_backward_small, _step_column_sums, _step_hidden_dense,
                           _step_hidden_sparse, _step_softmax_xent, _step_sum_parts, _train_steps)

NAME = "numba"

#: Inputs with at most this fraction of nonzero values take the sparse first-layer path.
#: Measured crossover (``pytest benchmarks/ -k path_by_density``, README "Performance"): the
#: sparse step is faster up to a density of about 0.35-0.45 at hidden 128 and 800, slower
#: from 0.5 (Fashion-MNIST's density) on.
SPARSE_MAX_DENSITY = 0.4

if numba.config.DISABLE_JIT:
    # Uncompiled, the sgemm binding would silently do nothing and leave garbage.
    raise ImportError("the numba backend calls BLAS from compiled code; unset NUMBA_DISABLE_JIT to use it")


def _n_parts(hidden: int) -> int:
    return max(1, min(numba.get_num_threads(), hidden))


# --- the public per-step kernels --------------------------------------------------


@njit(cache=_CACHE, error_model="numpy", inline="always")
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


@njit(cache=_CACHE, error_model="numpy", parallel=True)
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


@njit(cache=_CACHE, error_model="numpy", parallel=True)
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


def _is_sparse(X, batch_size) -> bool:
    """Whether ``X`` is sparse enough for the sparse path.

    (Pixels and batch positions are stored as ``uint16``, so both must stay below 65536.)
    """
    return bool(X.shape[1] <= 65536 and batch_size <= 65536 and X.size > 0) and bool(
        np.count_nonzero(X) <= SPARSE_MAX_DENSITY * X.size)


def _batch_rows(Xb):
    """``Xb`` as compressed rows when the sparse path takes it, else the empty stand-in."""
    return (Rows(*compress_rows(Xb)), True) if _is_sparse(Xb, len(Xb)) else (_NO_ROWS, False)


@njit(cache=_CACHE, error_model="numpy", parallel=True, fastmath=FASTMATH)
def _forward(Xb, rows, sparse, m, W1, b1, W2, b2, A1, parts, logits):
    h = W1.shape[1]
    n_parts = parts.shape[0]
    perm = np.arange(m)
    for p in prange(n_parts):
        h0, h1 = _slice(h, p, n_parts)
        if sparse:
            _step_hidden_sparse(rows, perm, 0, m, W1, A1, h0, h1)
        else:
            _step_hidden_dense(Xb, m, W1, A1, h0, h1)
        _step_activate(m, b1, W2, A1, parts[p], h0, h1)
    _step_sum_parts(parts, b2, m, logits)


def forward(Xb, W1, b1, W2, b2, A1, logits) -> None:
    """A1 = relu(Xb @ W1 + b1);  logits = A1 @ W2 + b2."""
    m = Xb.shape[0]
    _check_shapes(Xb=Xb, W1=W1, b1=b1, W2=W2, b2=b2, A1=A1, logits=logits)
    Xb = _f32(Xb)
    rows, sparse = _batch_rows(Xb)
    parts = np.empty((_n_parts(W1.shape[1]), m, W2.shape[1]), np.float32)
    with _outputs(A1, logits) as (A1_, logits_), _compiled():
        _forward(Xb, rows, sparse, m, _f32(W1), _f32(b1), _f32(W2), _f32(b2), A1_, parts, logits_)


@njit(cache=_CACHE, error_model="numpy")
def _softmax_xent(logits, m, yb, dlogits):
    return _step_softmax_xent(logits, m, yb, dlogits)


def softmax_xent(logits, yb, dlogits) -> tuple[float, int]:
    """Softmax cross-entropy and its gradient; see the reference for the math."""
    _check_shapes(logits=logits, dlogits=dlogits)
    _check_labels(yb, logits.shape[1], logits.shape[0])
    with _outputs(dlogits) as (dlogits_,):
        loss, correct = _softmax_xent(_f32(logits), logits.shape[0], yb, dlogits_)
    return float(loss), int(correct)


@njit(cache=_CACHE, error_model="numpy", parallel=True, fastmath=FASTMATH)
def _backward(Xb, rows, sparse, m, A1, W2, dlogits, dW1, db1, dW2, db2, dA1, cend, crow, cval, n_parts):
    d, h = dW1.shape
    if sparse:
        batch_columns(rows.indptr, rows.idx, rows.val, np.arange(m), 0, m, 0, d, cend, crow, cval)
    for p in prange(n_parts):
        h0, h1 = _slice(h, p, n_parts)
        _step_backward_small(m, A1, W2, dlogits, dW2, dA1, db1, h0, h1)
        if sparse:  # dW1[r, h0:h1] = sum over the images lighting pixel r of x * dZ1[i, h0:h1]
            for r in range(d):
                rows_axpy(dA1, h0, h1 - h0, crow, cval, r * m, cend[r], dW1[r, h0:h1])
        else:
            gemm(_T, _N, d, h1 - h0, m, 1.0, Xb, 0, d, dA1, h0, h, 0.0, dW1, h0, h)
    _step_column_sums(dlogits, m, db2)


def backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1) -> None:
    """Gradients of the mean loss; ``dA1`` holds dZ1 afterwards (as in the reference)."""
    _check_shapes(Xb=Xb, A1=A1, W2=W2, logits=dlogits, W1=dW1, b1=db1, dW2=dW2, b2=db2, dA1=dA1)
    Xb = _f32(Xb)
    m, d = Xb.shape
    rows, sparse = _batch_rows(Xb)
    n_cols = m * d if sparse else 0
    cols = np.empty(d, np.int64), np.empty(n_cols, np.uint16), np.empty(n_cols, np.float32)
    with _outputs(dW1, db1, dW2, db2, dA1) as outs, _compiled():
        _backward(Xb, rows, sparse, m, _f32(A1), _f32(W2), _f32(dlogits), *outs, *cols,
                  _n_parts(dW1.shape[1]))


@njit(cache=_CACHE, error_model="numpy", parallel=True)
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


@njit(cache=_CACHE, error_model="numpy")
def _apply(p, g, m, v, lr, rule, wd, bc1, bc2):
    _step_apply(p, g, m, v, lr, rule, wd, bc1, bc2)


def apply_update(p, g, m, v, lr: float, kind: int, momentum: float, beta2: float, eps: float,
                 weight_decay: float, bc1: float, bc2: float) -> None:
    """One optimizer step on one parameter array, in place; see the reference."""
    f32 = np.float32
    if kind not in (_optim.SGD, _optim.MOMENTUM, _optim.NESTEROV, _optim.ADAM):
        raise ValueError(f"unknown optimizer code {kind}")
    rule = Rule(int(kind), float(momentum), float(beta2), float(eps), float(weight_decay))
    with _outputs(p) as (p_,):
        flat = p_.reshape(-1)
        m_ = m.reshape(-1) if m.size else flat  # unused buffers: any array of the right length
        v_ = v.reshape(-1) if v.size else flat
        with _outputs(m_, v_) as (m2, v2):
            _apply(flat, _f32(g).reshape(-1), m2, v2, f32(lr), rule, f32(weight_decay), f32(bc1), f32(bc2))


# --- whole steps ----------------------------------------------------------------


class Workspace:
    """Preallocated buffers for one batch size and network shape, and the data's compressed rows.

    The compressed rows are made on the first :func:`train_steps` call with a
    given ``X`` and kept for the next calls with the same array object (a run
    passes the same training set every chunk); the sparse or dense path is
    chosen then, from ``X``'s density.  A caller that changes ``X`` in place
    between calls must call :meth:`prepare` with ``refresh=True`` (or use a new
    workspace): the sparse path would otherwise train on the old values.
    """

    def __init__(self, batch_size, n_features, hidden, n_classes):
        self.shape = (batch_size, n_features, hidden, n_classes)
        self.source = None  # the X the rows were made from
        self.rows, self.sparse = _NO_ROWS, False
        self.buffers = None  # made by prepare, for the path the data take

    def prepare(self, X, refresh: bool = False) -> None:
        """Choose the path for ``X`` and (re)make what it needs; a no-op for the same ``X`` again."""
        n_parts = _n_parts(self.shape[2])
        if refresh or X is not self.source:
            self.sparse = _is_sparse(X, self.shape[0])
            self.rows = Rows(*compress_rows(X)) if self.sparse else _NO_ROWS
            self.source = X
            self.buffers = _buffers(*self.shape, n_parts, self.sparse)
        elif self.buffers.parts.shape[0] != n_parts:  # thread count changed since
            self.buffers = _buffers(*self.shape, n_parts, self.sparse)

    def adopt(self, X, counts, n_chunks: int) -> None:
        """:meth:`prepare` ``(X, refresh=True)`` for data just written by :func:`augment`,
        which also counted each row's nonzeros into ``counts[1:]``: the density test and the
        compressed rows come from those counts, the rows filled in parallel."""
        sparse = bool(X.shape[1] <= 65536 and self.shape[0] <= 65536 and X.size > 0) and bool(
            counts.sum() <= SPARSE_MAX_DENSITY * X.size)
        if sparse:
            indptr = np.cumsum(counts)
            nnz = indptr[-1]
            idx, val = np.empty(nnz + 1, np.uint16), np.empty(nnz + 1, np.float32)  # +1: see fill_rows
            _fill_rows(X, indptr, idx, val, n_chunks)
            self.rows = Rows(indptr, idx[:nnz], val[:nnz])
        else:
            self.rows = _NO_ROWS
        n_parts = _n_parts(self.shape[2])
        if self.buffers is None or sparse != self.sparse or self.buffers.parts.shape[0] != n_parts:
            self.buffers = _buffers(*self.shape, n_parts, sparse)
        self.sparse, self.source = sparse, X


def make_workspace(batch_size: int, n_features: int, hidden: int, n_classes: int) -> Workspace:
    """Allocate the buffers :func:`train_steps` needs."""
    return Workspace(batch_size, n_features, hidden, n_classes)


def train_steps(X, y, perm, start: int, stop: int, batch_size: int, lr,
                W1, b1, W2, b2, ws: Workspace, opt=None) -> tuple[float, int]:
    """Mini-batch steps over ``perm[start:stop]``; returns (loss sum, number correct).

    ``lr`` is one learning rate or one per batch; ``opt`` an
    :class:`~._optim.OptimizerState` (None: plain SGD, whose update is fused
    into the gradient).  Parameters are updated in place (other layouts than
    C-contiguous float32 through a temporary copy, as in the single kernels).
    ``ws`` keeps ``X``'s compressed rows between calls with the same array: see
    :class:`Workspace` before changing ``X`` in place between calls.
    """
    _check_shapes(Xb=X, W1=W1, b1=b1, W2=W2, b2=b2)
    if ws.shape[1:] != (X.shape[1], W1.shape[1], W2.shape[1]):
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
    if min(batch_size, stop - start) > ws.shape[0]:
        raise ValueError(f"batches of {batch_size} do not fit the workspace's {ws.shape[0]} rows")
    X = _f32(X)
    ws.prepare(X)
    with _outputs(W1, b1, W2, b2) as params, _compiled():
        if opt is None:
            rule, moments, t0 = Rule(_optim.SGD, 0.0, 0.0, 0.0, 0.0), Moments(*params, *params), 0
        else:
            # Unused buffers (SGD has none, momentum no v) are stood in for by the parameters:
            # the compiled rule never touches them, and no empty array is ever sliced.
            rule = Rule(opt.kind, opt.momentum, opt.beta2, opt.eps, opt.weight_decay)
            moments = Moments(*[mb if mb.size else p for mb, p in zip(opt.m, params)],
                              *[vb if vb.size else p for vb, p in zip(opt.v, params)])
            t0 = opt.t
        loss, correct = _train_steps(X, y, perm, start, stop, batch_size, lrs, *params, ws.buffers,
                                     ws.rows, ws.sparse, rule, moments, t0)
    if opt is not None:
        opt.t += n_steps
    return float(loss), int(correct)


@njit(cache=_CACHE, error_model="numpy", parallel=True)
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
            gemm(_N, _N, m, h, d, 1.0, X, lo * d, d, W1, 0, h, 0.0, buf, 0, h)
            for i in range(m):
                for j in range(h):
                    v = buf[i, j] + b1[j]
                    buf[i, j] = v if v > 0.0 else 0.0
            gemm(_N, _N, m, c, h, 1.0, buf, 0, h, W2, 0, c, 0.0, out, lo * c, c)
            for i in range(lo, lo + m):
                for j in range(c):
                    out[i, j] += b2[j]


def predict_logits(X, W1, b1, W2, b2, out) -> None:
    """Logits for every row of ``X`` into ``out (n, c)``."""
    _check_shapes(Xb=X, W1=W1, b1=b1, W2=W2, b2=b2, logits=out)
    n_threads = numba.get_num_threads()
    A1 = np.empty((n_threads, 256, W1.shape[1]), np.float32)
    with _outputs(out) as (out_,), blas_single_threaded():
        _predict_logits(_f32(X), _f32(W1), _f32(b1), _f32(W2), _f32(b2), A1, out_)


# --- threads -----------------------------------------------------------------

def set_threads(threads: int | None) -> None:
    """Set the kernels' thread count, at most ``NUMBA_NUM_THREADS`` (``None``: leave it)."""
    from ..errors import FastnnError

    if threads is None:
        return
    most = numba.config.NUMBA_NUM_THREADS
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= most:
        raise FastnnError(f"threads must be between 1 and {most} (NUMBA_NUM_THREADS), got {threads}")
    numba.set_num_threads(threads)


def thread_info() -> dict:
    """The threads this backend computes with, and numba's threading layer (nothing is compiled)."""
    from ._numba_setup import threading_layer

    return {"threads": numba.get_num_threads(), "threading_layer": threading_layer()}


@contextlib.contextmanager
def _compiled():
    """Around every call into the training kernels: BLAS on one thread, SLP on if they compile."""
    with blas_single_threaded(), vectorizing():
        yield
