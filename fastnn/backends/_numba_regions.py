"""The numba backend's parallel regions: whole forward and backward passes, the fused training
loop, prediction, shuffling and gathering.

Each ``prange`` loop here only calls one function of
:mod:`._numba_parts` with an ``int64`` part number (numba compiles a parallel
loop's body slowly, so it is kept to one call; and the loop's own index is
unsigned inside the region, which would compile each part twice).  A step's
passes are one region in a loop over its phases (:func:`passes`), so a network
of any depth compiles one region for training: compile time does not grow with
depth, and the region is launched once per layer and step.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .. import _keys
from ._numba_blas import N, gemm
from ._numba_jitable import like  # noqa: F401  (also registers the random keys for compiled code)
from ._numba_parts import backward_part, first_layer_part, forward_rows
from ._numba_setup import kernel
from ._numba_steps import IDENTITY, SGD, STORE, Rule, apply_rule, bias_activate, column_sums


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
def passes(
    X, perm, lo, m, net, b, rows, gathered, weight_sum, head, M, V, rate, decay, rule, fused, first, stop, drop, key
):
    """Phases ``first:stop`` of a step over the batch ``perm[lo:lo + m]``, a parallel region each:

    * phase 0, the forward pass split by rows: every layer's outputs in ``b.A`` (the last
      one raw), and with a ``head`` (its code; -1 for none) each part's loss, rows right
      and output gradient;
    * phase ``k`` (``1 <= k < L``), the backward pass of hidden layer ``L - k`` split by its
      units; phase ``L``, the first layer's weights split by pixels: every gradient applied
      by ``rule`` as soon as it is made (or only stored in ``b.G``, for :data:`STORE`).

    One ``prange`` in a loop over the phases: numba compiles a parallel region (and,
    again, all the code it calls) once per ``prange`` in the source, so one region for
    every phase of every depth is the cheapest to compile.  The sparse path reads
    ``rows`` (and ``gathered`` is None); the dense path (``rows`` None) gathers the batch
    into ``gathered``.  ``drop`` and ``key`` are the dropout rate (0.0: none) and the epoch's
    dropout key (``uint64``), plain runtime arguments: one compile serves every rate.
    """
    L = net.sizes.shape[0] - 1
    for phase in range(first, stop):
        u = L - phase  # the layer whose units (phase 0: the batch's rows) the parts split
        parts = part_count(b, m if phase == 0 else net.sizes[u])
        for p in prange(parts):
            if phase == 0:
                forward_rows(X, perm, lo, m, net, b, rows, gathered, weight_sum, head, drop, key, np.int64(p), parts)
            elif u > 0:
                backward_part(net, b, M, V, rate, decay, rule, fused, m, u, drop, np.int64(p), parts)
            else:
                first_layer_part(net, b, rows, gathered, M, V, rate, decay, rule, fused, m, np.int64(p), parts)


@kernel(inline="always")
def part_count(b, n):
    """How many parts split ``n`` rows or units: one per thread, at most one per item."""
    return max(1, min(b.pen.shape[0], n))


@kernel(inline="always")
def parts_total(b, m):
    """The weighted loss sum and rows right of the forward parts over ``m`` rows, in part order
    (only those parts: with fewer rows than threads the others hold an earlier batch's)."""
    loss = 0.0
    right = 0
    for p in range(part_count(b, m)):
        loss += b.loss[p]
        right += b.right[p]
    return loss, right


@kernel(inline="always")
def output_biases(net, b, M, V, rate, rule, m):
    """The output layer's biases, last: their gradient is the column sums of ``D``'s last layer."""
    L = net.sizes.shape[0] - 1
    c = net.sizes[L]
    bo = net.table[L - 1, 1]
    column_sums(b.D, b.offs[L - 1], c, m, b.G[bo : bo + c])
    if rule.kind != STORE:
        apply_rule(net.P[bo : bo + c], b.G[bo : bo + c], M[bo : bo + c], V[bo : bo + c], rate, 0.0, rule)


@kernel(parallel=True)
def forward_all(X, perm, lo, m, net, b, rows, gathered, weight_sum, head):
    """The forward pass alone (phase 0 of :func:`passes`); returns (weighted loss sum, rows right)."""
    no_rule = Rule(STORE, 0.0, 0.0, 0.0, 0.0, 0.0)  # the forward phase reads none
    off = np.uint64(0)
    passes(
        X, perm, lo, m, net, b, rows, gathered, weight_sum, head, net.P, net.P, 0.0, 0.0, no_rule, False, 0, 1, 0.0, off
    )
    return parts_total(b, m)


@kernel(parallel=True)
def backward_all(X, perm, m, net, b, rows, gathered, M, V, rate, decay, rule, fused):
    """The backward pass alone from ``b.D``'s output gradient (the other phases of :func:`passes`),
    then the output biases; ``X[perm[:m]]`` is the batch of the forward pass it follows."""
    L = net.sizes.shape[0] - 1
    passes(X, perm, 0, m, net, b, rows, gathered, 1.0, -1, M, V, rate, decay, rule, fused, 1, L + 1, 0.0, np.uint64(0))
    output_biases(net, b, M, V, rate, rule, m)


@kernel(parallel=True)
def train_steps(X, y, Y, sw, perm, start, stop, batch_size, rates, net, b, rows, gathered, rule, M, V, drop, key):
    """Mini-batch steps over ``perm[start:stop]``; returns (loss sum, rows right).

    The sparse path passes ``X``'s compressed ``rows`` and None for ``gathered``; the dense
    path None for ``rows`` and the batch buffer to gather into.  Numba drops the branches
    of the path whose argument is None, so each path compiles only its own code (and a run
    compiles only the path its data take).

    Per step: the batch's targets and weights (serial, ``m`` rows), then every phase of
    :func:`passes` (forward by rows: every layer and the head; backward by each hidden
    layer's units, then the first layer's pixels, applying the rule as it goes), then the
    output biases.  With dropout (``drop > 0``; ``key`` the epoch's dropout key) the
    forward pass masks every hidden layer's outputs and the backward pass their gradients
    (:mod:`fastnn.dropout`).
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
        decay = rule.weight_decay + (rule.l2 / weight_sum if rule.l2 > 0.0 else 0.0)
        for p in range(b.pen.shape[0]):
            b.pen[p] = 0.0
        passes(
            X,
            perm,
            lo,
            m,
            net,
            b,
            rows,
            gathered,
            weight_sum,
            net.head,
            M,
            V,
            rates[step],
            decay,
            rule,
            fused,
            0,
            L + 1,
            drop,
            key,
        )
        loss, right = parts_total(b, m)
        output_biases(net, b, M, V, rates[step], rule, m)
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
