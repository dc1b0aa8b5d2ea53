"""The numba backend's parallel regions: whole forward and backward passes, the fused training
loop, prediction, shuffling and gathering.

Each ``prange`` loop here only calls one function of
:mod:`._numba_parts` with an ``int64`` part number (numba compiles a parallel
loop's body slowly, so it is kept to one call; and the loop's own index is
unsigned inside the region, which would compile each part twice).  The
regions sit in loops over the layers, so a network of any depth compiles to
the same few regions: compile time does not grow with depth, and each region
is launched once per layer and step.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .. import _keys
from ._numba_blas import N, gemm
from ._numba_jitable import like  # noqa: F401  (also registers the random keys for compiled code)
from ._numba_parts import backward_part, first_layer_part, forward_rows
from ._numba_setup import kernel
from ._numba_steps import IDENTITY, SGD, STORE, apply_rule, bias_activate, column_sums


@kernel(parallel=True)
def permutation(n, keys, k, out):
    """Epoch shuffle: ``out[i]`` = the Feistel bijection of ``i``, cycle-walked into ``[0, n)``."""
    for i in prange(n):
        x = _keys.feistel(np.uint64(i), keys, k)
        while x >= n:  # cycle walking, as in the reference
            x = _keys.feistel(x, keys, k)
        out[i] = x


@kernel(parallel=True)
def gather(X, idx, out):
    """``out[i] = X[idx[i]]``."""
    for i in prange(idx.shape[0]):
        src = idx[i]
        for j in range(X.shape[1]):
            out[i, j] = X[src, j]


@kernel(parallel=True, inline="always")
def forward_all(X, perm, lo, m, net, b, rows, gathered, weight_sum, head):
    """The forward pass of the batch ``perm[lo:lo + m]`` in one region split by rows: every
    layer's outputs in ``b.A`` (the last one raw), and with a ``head`` (its code; -1 for
    none) the loss and output gradient; returns (weighted loss sum, rows right).

    The sparse path reads ``rows`` (and ``gathered`` is None); the dense path (``rows``
    None) gathers the batch into ``gathered``.
    """
    parts = max(1, min(b.loss.shape[0], m))
    for p in prange(parts):
        forward_rows(X, perm, lo, m, net, b, rows, gathered, weight_sum, head, np.int64(p), parts)
    loss = 0.0
    right = 0
    for p in range(parts):
        loss += b.loss[p]
        right += b.right[p]
    return loss, right


@kernel(parallel=True, inline="always")
def backward_all(net, b, rows, gathered, M, V, rate, decay, rule, fused, m):
    """The backward pass from ``b.D``'s output gradient: a region per hidden layer split by
    its units, then one for the first layer's weights split by pixels; every gradient
    applied by ``rule`` as soon as it is made (or only stored in ``b.G``, for
    :data:`STORE`); the output biases last."""
    L = net.sizes.shape[0] - 1
    threads = b.pen.shape[0]
    for u in range(L - 1, -1, -1):
        parts = max(1, min(threads, net.sizes[u]))
        for p in prange(parts):
            if u > 0:
                backward_part(net, b, M, V, rate, decay, rule, fused, m, u, np.int64(p), parts)
            else:
                first_layer_part(net, b, rows, gathered, M, V, rate, decay, rule, fused, m, np.int64(p), parts)
    c = net.sizes[L]
    bo = net.table[L - 1, 1]
    column_sums(b.D, b.offs[L - 1], c, m, b.G[bo : bo + c])
    if rule.kind != STORE:
        apply_rule(net.P[bo : bo + c], b.G[bo : bo + c], M[bo : bo + c], V[bo : bo + c], rate, 0.0, rule)


@kernel(parallel=True)
def train_steps(X, y, Y, sw, perm, start, stop, batch_size, rates, net, b, rows, gathered, rule, M, V):
    """Mini-batch steps over ``perm[start:stop]``; returns (loss sum, rows right).

    The sparse path passes ``X``'s compressed ``rows`` and None for ``gathered``; the dense
    path None for ``rows`` and the batch buffer to gather into.  Numba drops the branches
    of the path whose argument is None, so each path compiles only its own code (and a run
    compiles only the path its data take).

    Per step: the batch's targets and weights (serial, ``m`` rows), the forward region
    (rows: every layer and the head), a backward region per hidden layer (units) and one
    for the first layer (pixels), applying the rule as it goes.
    """
    L = net.sizes.shape[0] - 1
    c = net.sizes[L]
    fused = rule.kind == SGD and rule.weight_decay == 0.0 and rule.l2 == 0.0
    total = 0.0
    correct = 0
    for step, lo in enumerate(range(start, stop, batch_size)):
        m = min(batch_size, stop - lo)
        weight_sum = 0.0
        for i in range(m):
            r = perm[lo + i]
            if y.shape[0]:
                b.yb[i] = y[r]
            else:
                for j in range(c):
                    b.Yb[i, j] = Y[r, j]
            b.wb[i] = sw[r]
            weight_sum += sw[r]
        loss, right = forward_all(X, perm, lo, m, net, b, rows, gathered, weight_sum, net.head)
        decay = rule.weight_decay + (rule.l2 / weight_sum if rule.l2 > 0.0 else 0.0)
        for p in range(b.pen.shape[0]):
            b.pen[p] = 0.0
        backward_all(net, b, rows, gathered, M, V, rates[step], decay, rule, fused, m)
        if rule.l2 > 0.0:
            loss += 0.5 * rule.l2 * b.pen.sum()
        total += loss * m / weight_sum
        correct += right
    return total, correct


@kernel(nogil=True)
def _predict_chunk(X, lo, m, net, buf, out):
    """Rows ``[lo, lo + m)`` of ``X`` through every layer: hidden layers in ``buf``'s two halves
    in turn, the last straight into ``out`` (raw, before the head)."""
    L = net.sizes.shape[0] - 1
    src = X.ravel()
    src_off = lo * net.sizes[0]
    for u in range(1, L + 1):
        n_in, n_out = net.sizes[u - 1], net.sizes[u]
        dst = out.ravel() if u == L else buf[(u - 1) % 2]
        dst_off = lo * n_out if u == L else 0
        gemm(N, N, m, n_out, n_in, 1.0, src, src_off, n_in, net.P, net.table[u - 1, 0], n_out, 0.0, dst, dst_off, n_out)
        bias_activate(
            dst, dst_off, n_out, m, net.P, net.table[u - 1, 1], np.int64(0), n_out, net.act if u < L else IDENTITY
        )
        src, src_off = dst, dst_off


@kernel()
def predict(X, net, buf, chunk, out):
    """Raw outputs of every row of ``X`` into ``out``, ``chunk`` rows at a time through every
    layer (``buf (2, chunk * widest)``).  Serial: each layer is one large product, which BLAS
    spreads over the threads itself (no parallel region to compile)."""
    n = X.shape[0]
    for lo in range(0, n, chunk):
        _predict_chunk(X, lo, min(chunk, n - lo), net, buf, out)


@kernel()
def update(net, G, M, V, rate, decay, rule):
    """One step of ``rule`` on every parameter: weights with ``decay``, biases without."""
    L = net.sizes.shape[0] - 1
    for u in range(L):
        w, bo = net.table[u, 0], net.table[u, 1]
        n_w = net.sizes[u] * net.sizes[u + 1]
        apply_rule(net.P[w : w + n_w], G[w : w + n_w], M[w : w + n_w], V[w : w + n_w], rate, decay, rule)
        c = net.sizes[u + 1]
        apply_rule(net.P[bo : bo + c], G[bo : bo + c], M[bo : bo + c], V[bo : bo + c], rate, 0.0, rule)
