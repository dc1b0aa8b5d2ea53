"""The fast backend: the reference kernels compiled with Numba and run in parallel.

Same functions, same arguments and same results (to rounding) as
:mod:`fastnn.backends.numpy_backend`; read that module for the math.  What is
different here is *how* the work is done:

* **The forward pass splits the batch's rows; the backward pass splits units.**
  Forward, each thread takes its rows of the batch through every layer and the
  output head (loss and output gradient) in one parallel region: rows need
  nothing from one another, so there is no partial sum and no wait between
  layers, and each thread multiplies whole layers (full-width tiles and GEMMs,
  whatever the thread count).  Backward, the region of hidden layer ``u`` gives
  each thread a slice ``q`` of that layer's units: it computes their gradient
  from the whole next layer's, the rows ``q`` of the next layer's weight
  gradient, and applies the optimizer to those rows, which no other thread
  reads; a last region gives each thread a range of pixels, the rows of the
  first layer's weights, over all its units.  Nothing the size of a weight
  matrix is ever reduced across threads (splitting the batch in the backward
  pass would sum a full gradient every step), and every region keeps paying
  with more threads than our two: 16 threads on a batch of 128 take 8 rows
  each forward, 8 of 128 units each backward, 49 of 784 pixels each.  (We first
  split units in the forward pass too, with the output layer's inputs split
  and its partial sums added up: with 100 units, two threads got 1.2x one
  thread's speed, the first layer's tiles running half as wide for the same
  overhead per pixel; split by rows, 1.6x.)
* **Sparse inputs skip their zeros** (:mod:`._numba_sparse`).  When the data
  are at most :data:`SPARSE_MAX_DENSITY` nonzero (MNIST: 19%), the first
  layer's forward product runs over each image's nonzero pixels, and its
  weight gradient over each pixel's nonzero images, applied by the optimizer
  in the same pass over ``W0``.  Denser data take the dense path: single-
  threaded GEMM per thread (:mod:`._numba_blas`).  The two paths compute the
  same sums, in different orders.  Every later layer is dense GEMM.
* **Whole chunks of an epoch run without returning to Python**
  (:func:`train_steps`): per mini-batch, a parallel region launched once
  forward, once per hidden layer backward and once for the first layer's weights
  (one ``prange`` in the source, in a loop over these phases, so it compiles once),
  and a short serial part (the batch's targets, the output biases).
* **One compile per dtype, whatever the depth**: a network is one flat
  parameter array and a table of offsets (:mod:`fastnn.layers`), so kernels see
  the same argument types for every shape; float32 and float64 networks each
  compile their own specialisation, on first use.

The step functions are in :mod:`._numba_steps`, each thread's part of a region
in :mod:`._numba_parts`, the parallel regions in
:mod:`._numba_regions`; the public per-step kernels below call the same
regions :func:`train_steps` does, so a fix there is a fix in both.  Kernels are
compiled with ``cache=True`` where a cache folder is writable
(:mod:`._numba_setup`).
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np

from .. import _aligned, _keys
from ..activations import ACTIVATIONS, HEADS
from ..layers import Params
from . import _numba_regions as _regions
from ._checks import check_network_call, check_targets
from ._numba_augment import augment  # noqa: F401  (a kernel of this backend)
from ._numba_augment import fill_rows as _fill_rows
from ._numba_blas import blas_threads
from ._numba_setup import cache_index_exists, vectorizing
from ._numba_sparse import compress_rows
from ._numba_steps import STORE, Buffers, Net, Rows, Rule, head_step

NAME = "numba"

#: Inputs with at most this fraction of nonzero values take the sparse first-layer path.
#: Measured crossover (``pytest benchmarks/ -k path_by_density``, README "Performance"): the
#: sparse step is faster up to a density of about 0.35-0.45 at hidden 128 and 800, slower
#: from 0.5 (Fashion-MNIST's density) on.
SPARSE_MAX_DENSITY = 0.4

#: Rows per pass through the layers when predicting (two layers' outputs of this many rows
#: are kept: 8 MB at 1000 units).
PREDICT_CHUNK = 1024

if numba.config.DISABLE_JIT:
    # Uncompiled, the BLAS binding would silently do nothing and leave garbage.
    raise ImportError("the numba backend calls BLAS from compiled code; unset NUMBA_DISABLE_JIT to use it")


def _net(net) -> Net:
    layout = net.params.layout
    return Net(
        net.params.flat, layout.sizes_array, layout.table, ACTIVATIONS.index(net.activation), HEADS.index(net.head)
    )


def _is_sparse(X, batch_size) -> bool:
    """Whether ``X`` is sparse enough for the sparse path.

    (Pixels and batch positions are stored as ``uint16``, so both must stay below 65536.)
    """
    return bool(X.shape[1] <= 65536 and batch_size <= 65536 and X.size > 0) and bool(
        np.count_nonzero(X) <= SPARSE_MAX_DENSITY * X.size
    )


# --- the workspace ------------------------------------------------------------------------


class Workspace:
    """Preallocated arrays for batches of up to ``batch_size`` rows of one network's layout,
    and the training data's compressed rows (``rows``; None on the dense path).

    The compressed rows are made on the first :func:`train_steps` call with a
    given ``X`` and kept for the next calls with the same array object (a run
    passes the same training set every chunk); the sparse or dense path is
    chosen then, from ``X``'s density.  A caller that changes ``X`` in place
    between calls must call :meth:`prepare` with ``refresh=True`` (or use a new
    workspace): the sparse path would otherwise train on the old values.
    """

    def __init__(self, net, batch_size: int):
        layout = net.params.layout
        self.shape = (batch_size, layout)
        self.dtype = layout.dtype
        self.grads = Params(layout)
        self.source: np.ndarray | None = None  # the X the rows were made from
        self.rows: Rows | None = None
        self.sparse = False
        self.buffers: Buffers | None = None  # made by prepare, for the path the data take

    def _made(self) -> Buffers:
        """The buffers :meth:`prepare` made."""
        if self.buffers is None:
            raise RuntimeError("the workspace has no buffers yet: prepare(X) makes them")
        return self.buffers

    def _allocate(self, sparse: bool) -> None:
        m, layout = self.shape
        sizes = layout.sizes
        d, c, f = sizes[0], sizes[-1], self.dtype
        threads = numba.get_num_threads()
        widths = [m * s for s in sizes[1:]]
        offs = np.concatenate([[0], np.cumsum([-(-w // 16) * 16 for w in widths])]).astype(np.int64)
        n_cols = m * d if sparse else 0
        empty = _aligned.empty
        self.buffers = Buffers(
            Xb=empty((0 if sparse else m, d), f),
            yb=empty(m, np.int64),
            Yb=empty((m, c), f),
            wb=empty(m, f),
            A=empty(int(offs[-1]), f),
            D=empty(int(offs[-1]), f),
            offs=offs[:-1].copy(),
            right=np.zeros(threads, np.int64),
            G=self.grads.flat,
            grow=empty((threads, sizes[1]), f),
            cend=empty(d, np.int64),
            crow=empty(n_cols, np.uint16),
            cval=empty(n_cols, f),
            pen=np.zeros(threads, np.float64),
            loss=np.zeros(threads, np.float64),
            K=empty(16, f),  # dropout's masks: made by masks() when a run asks for dropout
        )
        self.sparse = sparse

    def prepare(self, X, refresh: bool = False) -> None:
        """Choose the path for ``X`` and (re)make what it needs; a no-op for the same ``X`` again."""
        if refresh or X is not self.source:
            sparse = _is_sparse(X, self.shape[0])
            self.rows = Rows(*compress_rows(X)) if sparse else None
            self.source = X
            if self.buffers is None or sparse != self.sparse:
                self._allocate(sparse)
        if self._made().pen.shape[0] != numba.get_num_threads():  # thread count changed since
            self._allocate(self.sparse)

    def adopt(self, X, counts, n_chunks: int) -> None:
        """:meth:`prepare` ``(X, refresh=True)`` for data just written by :func:`augment`,
        which also counted each row's nonzeros into ``counts[1:]``: the density test and the
        compressed rows come from those counts, the rows filled in parallel."""
        sparse = bool(X.shape[1] <= 65536 and self.shape[0] <= 65536 and X.size > 0) and bool(
            counts.sum() <= SPARSE_MAX_DENSITY * X.size
        )
        if sparse:
            indptr = np.cumsum(counts)
            nnz = indptr[-1]
            idx, val = np.empty(nnz + 1, np.uint16), np.empty(nnz + 1, X.dtype)  # +1: see fill_rows
            _fill_rows(X, indptr, idx, val, n_chunks)
            self.rows = Rows(indptr, idx[:nnz], val[:nnz])
        else:
            self.rows = None
        if self.buffers is None or sparse != self.sparse or self.buffers.pen.shape[0] != numba.get_num_threads():
            self._allocate(sparse)
        self.source = X

    def masks(self) -> None:
        """Give the buffers room for dropout's keep masks (laid out as the layers' outputs)."""
        b = self._made()
        if b.K.shape[0] < b.A.shape[0]:
            self.buffers = b._replace(K=_aligned.empty(b.A.shape[0], self.dtype))

    @property
    def gathered(self):
        """The dense path's batch buffer (None on the sparse path): see ``train_steps``."""
        return None if self.sparse else self._made().Xb

    def activations(self, m: int) -> list:
        """Each layer's outputs for the first ``m`` rows (views; the last layer raw)."""
        return self._layers(self._made().A, m)

    def deltas(self, m: int) -> list:
        """Each layer's gradients for the first ``m`` rows (views)."""
        return self._layers(self._made().D, m)

    def _layers(self, flat, m):
        sizes = self.shape[1].sizes[1:]
        return [flat[o : o + m * s].reshape(m, s) for o, s in zip(self._made().offs, sizes)]


def make_workspace(net, batch_size: int) -> Workspace:
    """Allocate the arrays :func:`train_steps` and the per-step kernels need."""
    return Workspace(net, batch_size)


# --- the public per-step kernels --------------------------------------------------------


def permutation(n: int, seed: int, epoch: int, out: np.ndarray) -> None:
    """Write epoch ``epoch``'s shuffle of ``range(n)`` into ``out``; equal to the reference's."""
    if out.shape != (n,) or out.dtype != np.int64:
        raise ValueError(f"out must be an int64 array of length {n}, got {out.dtype} {out.shape}")
    _regions.permutation(n, _keys.round_keys(seed, epoch), _keys.half_bits(n), out)


def gather(X: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
    """Copy the rows ``idx`` of ``X`` into the first ``len(idx)`` rows of ``out``."""
    if idx.size and (idx.min() < 0 or idx.max() >= X.shape[0]):
        raise IndexError("gather index out of range")
    if out.shape[0] < len(idx) or out.shape[1:] != X.shape[1:] or out.dtype != X.dtype:
        raise ValueError(f"out {out.dtype} {out.shape} cannot hold {len(idx)} rows of X {X.dtype} {X.shape}")
    _regions.gather(X, np.ascontiguousarray(idx, np.int64), out)


def _batch(ws: Workspace, Xb):
    """Prepare ``ws`` for the batch ``Xb`` itself (rows in order): its path, rows and buffers."""
    Xb = np.ascontiguousarray(Xb)
    ws.prepare(Xb, refresh=True)
    if not ws.sparse:
        ws._made().Xb[: len(Xb)] = Xb
    return Xb, np.arange(len(Xb), dtype=np.int64)


def forward(net, Xb, ws: Workspace) -> None:
    """Every layer's outputs for the batch ``Xb`` into ``ws`` (the last one raw)."""
    check_network_call(net, Xb=Xb, ws=ws)
    Xb, perm = _batch(ws, Xb)
    with _compiled():
        _regions.forward_all(Xb, perm, 0, len(Xb), _net(net), ws.buffers, ws.rows, ws.gathered, 1.0, -1)


def loss(head: str, Z, targets, dZ) -> tuple[float, int]:
    """The head's loss of a batch and its gradient; see the reference."""
    check_targets(head, Z, targets, dZ)
    m, c = Z.shape
    Zf = np.ascontiguousarray(Z).ravel()
    in_place = dZ.flags.c_contiguous and dZ.dtype == Zf.dtype
    D = dZ.reshape(-1) if in_place else np.empty_like(Zf)
    labels = targets.labels if head == "softmax" else np.zeros(m, np.int64)
    values = targets.values if head != "softmax" else np.zeros((m, c), Zf.dtype)
    weights = np.ascontiguousarray(targets.weights)
    weight_sum = float(weights.sum(dtype=np.float64))
    total, correct = head_step(
        HEADS.index(head),
        Zf,
        0,
        c,
        m,
        np.ascontiguousarray(labels),
        np.ascontiguousarray(values),
        weights,
        weight_sum,
        D,
    )
    total *= m / weight_sum  # the weighted mean, times the batch's rows (see the reference)
    if not in_place:
        dZ[...] = D.reshape(m, c)
    return float(total), int(correct)


def backward(net, Xb, ws: Workspace) -> None:
    """Every gradient of the batch's loss, from the last layer's in ``ws`` (set by :func:`loss`
    into ``ws.deltas(m)[-1]``), into ``ws.grads``; as in the reference."""
    check_network_call(net, Xb=Xb, ws=ws)
    m = len(Xb)
    if ws.buffers is None or ws.source is not Xb:
        raise ValueError("backward needs the workspace of a forward pass over the same batch")
    P = net.params.flat
    with _compiled():
        _regions.backward_all(
            np.ascontiguousarray(Xb),  # read by no backward phase; typed like the forward pass's batch
            np.arange(m, dtype=np.int64),
            m,
            _net(net),
            ws.buffers,
            ws.rows,
            ws.gathered,
            P,
            P,
            P.dtype.type(0),
            0.0,
            Rule(STORE, 0.0, 0.0, 0.0, 0.0, 0.0),
            False,
        )


def update(params: Params, grads: Params, opt, rate: float, decay: float = 0.0) -> None:
    """One optimizer step of ``opt``'s rule at step size ``rate`` (weights also decayed by ``decay``)."""
    if grads.layout != params.layout:
        raise ValueError(f"gradients of a {grads.layout} for parameters of a {params.layout}")
    layout = params.layout
    net = Net(params.flat, layout.sizes_array, layout.table, 0, 0)
    M, V = _moments(opt, params)
    _regions.update(net, grads.flat, M, V, params.dtype.type(rate), float(decay), _rule(opt))


def _rule(opt) -> Rule:
    return Rule(opt.kind, opt.momentum, opt.beta2, opt.eps, opt.weight_decay, opt.l2)


def _moments(opt, params: Params):
    """The optimizer's two state buffers; the parameters stand in where a rule has none
    (the compiled rule never touches them, and no empty array is ever sliced)."""
    flats = [buf.flat for buf in opt.state.values()]
    for buf in opt.state.values():
        if buf.layout != params.layout:
            raise ValueError(f"optimizer state of a {buf.layout} for parameters of a {params.layout}")
    flats += [params.flat] * (2 - len(flats))
    return flats[0], flats[1]


def train_steps(
    net, X, targets, perm, start: int, stop: int, batch_size: int, lrs, opt, ws: Workspace, dropout=None
) -> tuple[float, int]:
    """Mini-batch steps over ``perm[start:stop]``; returns (loss sum, rows right).

    As the reference's (``dropout`` too: the same masks, :mod:`fastnn.dropout`).  ``ws`` keeps ``X``'s compressed rows between calls with
    the same array: see :class:`Workspace` before changing ``X`` in place between calls.
    """
    n_steps = check_network_call(
        net, X=X, ws=ws, targets=targets, perm=perm, start=start, stop=stop, batch_size=batch_size, lrs=lrs
    )
    X = np.ascontiguousarray(X)
    ws.prepare(X)
    drop, key = (float(dropout.rate), np.uint64(dropout.key)) if dropout is not None else (0.0, np.uint64(0))
    if drop > 0.0:
        ws.masks()
    rates = np.ascontiguousarray(opt.rates(lrs), dtype=net.params.dtype)
    M, V = _moments(opt, net.params)
    labels, values, weights = (np.ascontiguousarray(a) for a in targets)
    with _compiled():
        total, correct = _regions.train_steps(
            X,
            labels,
            values,
            weights,
            np.ascontiguousarray(perm, np.int64),
            start,
            stop,
            batch_size,
            rates,
            _net(net),
            ws.buffers,
            ws.rows,
            ws.gathered,
            _rule(opt),
            M,
            V,
            drop,
            key,
        )
    opt.advance(n_steps)
    return float(total), int(correct)


def predict(net, X, out) -> None:
    """The raw outputs (before the head) of every row of ``X`` into ``out (n, c)``."""
    check_network_call(net, X=X, out=out)
    widest = max(net.params.layout.sizes[1:])
    buf = np.empty((2, PREDICT_CHUNK * widest), net.params.dtype)
    with _outputs(out) as out_, blas_threads(numba.get_num_threads()):
        _regions.predict(np.ascontiguousarray(X), _net(net), buf, PREDICT_CHUNK, out_)


@contextlib.contextmanager
def _outputs(out):
    """A C-contiguous stand-in for ``out``, copied back if ``out`` was not one."""
    work = np.ascontiguousarray(out)
    yield work
    if work is not out:
        out[...] = work


# --- threads and compilation ------------------------------------------------------------


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


def kernels_cached() -> bool:
    """Whether numba's compile cache holds a current build of the training kernel.

    False before the first run after an install or an edit of the kernels'
    source (numba then compiles for several seconds before training starts),
    and always when no cache folder is writable.
    """
    return cache_index_exists(_regions.train_steps)


@contextlib.contextmanager
def _compiled():
    """Around every call into the training kernels: BLAS on one thread, SLP on if they compile."""
    with blas_threads(1), vectorizing():
        yield
