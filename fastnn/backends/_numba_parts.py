"""A thread's part of each parallel region of the numba backend, for one mini-batch.

Each region of :mod:`._numba_regions` runs one of these per part: the forward pass
by rows (every layer and the head), the first layer's update by pixels (sparse or
dense path), and each hidden layer's backward pass by units.  They split the work
and call the steps of :mod:`._numba_steps`, the tile kernels of
:mod:`._numba_sparse` and GEMM; each part writes only what no other part reads in
the same region.
"""

from __future__ import annotations

import numpy as np

from ._numba_blas import N, T, gemm
from ._numba_jitable import like
from ._numba_setup import FASTMATH, kernel
from ._numba_sparse import TILES, batch_columns, rows_axpy
from ._numba_steps import (
    IDENTITY,
    RELU,
    STORE,
    activation_grad,
    apply_rule,
    bias_activate,
    drop_units,
    head_step,
)


@kernel()
def part_range(n, p, parts):
    """Units ``[lo, hi)`` of ``n`` owned by part ``p`` of ``parts`` (sizes differ by at most 1)."""
    return (n * p) // parts, (n * (p + 1)) // parts


@kernel(fastmath={"contract", "reassoc"})
def sum_squares(a):
    """``sum(a**2)`` in float64 (for the L2 penalty's value only: any order will do)."""
    s = 0.0
    for x in a:
        s += np.float64(x) * np.float64(x)
    return s


@kernel(fastmath=FASTMATH)
def hidden_sparse(rows, perm, lo, m, P, w, n1, A, off):
    """``A[i] = X[perm[lo + i]] @ W0`` for ``i < m``, over each image's nonzero pixels.

    A block of columns at a time, for every image: the block's part of ``W0``
    (784 x 64 floats, 200 KB) stays in the core's L2 cache while the images
    read it.  (Image by image over the whole layer re-read ``W0`` from L3 for
    every image once it outgrew L2: 4x slower at 800 hidden units.)
    """
    width = TILES[0]
    for j in range(0, n1, width):
        cols = min(width, n1 - j)
        for i in range(m):
            r = perm[lo + i]
            at = off + i * n1 + j
            rows_axpy(P, w, n1, j, cols, rows.idx, rows.val, rows.indptr[r], rows.indptr[r + 1], A[at : at + cols])


@kernel(nogil=True)
def forward_rows(X, perm, lo, m, net, b, rows, gathered, weight_sum, head, drop, key, p, n_parts):
    """Part ``p`` of the forward region: its rows of the batch ``perm[lo:lo + m]`` through every
    layer, and with a ``head`` (its code; -1 for none) their loss and output gradient (into
    ``b.loss[p]``, ``b.right[p]`` and ``b.D``); on the sparse path also its range of pixels'
    columns.  With dropout (``drop > 0``, the epoch's key ``key``) each hidden layer's outputs
    are masked (:func:`drop_units`) and the next layer's product scaled by ``1 / (1 - drop)``.

    Rows need nothing from other rows, so one region covers every layer: no partial
    sums, no wait between layers, and every part works on all of a layer's units
    whatever the thread count.  The dense path gathers its rows into ``gathered`` first.
    """
    L = net.sizes.shape[0] - 1
    d, c = net.sizes[0], net.sizes[L]
    i0, i1 = part_range(m, p, n_parts)
    rows_here = i1 - i0
    scale = 1.0 / (1.0 - drop)  # exactly 1.0 without dropout
    base = 0  # the first unit of layer u among all hidden units
    if rows is not None:
        q0, q1 = part_range(d, p, n_parts)  # the columns backward needs, a range of pixels per part
        batch_columns(rows.indptr, rows.idx, rows.val, perm, lo, m, q0, q1, b.cend, b.crow, b.cval)
    for u in range(1, L + 1):
        n_in, n_out = net.sizes[u - 1], net.sizes[u]
        w = net.table[u - 1, 0]
        off = b.offs[u - 1] + i0 * n_out
        if u > 1:
            gemm(
                N,
                N,
                rows_here,
                n_out,
                n_in,
                scale,
                b.A,
                b.offs[u - 2] + i0 * n_in,
                n_in,
                net.P,
                w,
                n_out,
                0.0,
                b.A,
                off,
                n_out,
            )
        elif rows is not None:
            hidden_sparse(rows, perm, lo + i0, rows_here, net.P, w, n_out, b.A, off)
        elif gathered is not None:
            for i in range(i0, i1):
                src = perm[lo + i]
                for j in range(d):
                    gathered[i, j] = X[src, j]
            gemm(N, N, rows_here, n_out, d, 1.0, gathered, i0 * d, d, net.P, w, n_out, 0.0, b.A, off, n_out)
        bias_activate(
            b.A, off, n_out, rows_here, net.P, net.table[u - 1, 1], np.int64(0), n_out, net.act if u < L else IDENTITY
        )
        if drop > 0.0 and u < L:
            drop_units(b.A, b.K, off, n_out, rows_here, perm, lo + i0, key, drop, base, net.act)
        base += n_out
    if head >= 0:
        off = b.offs[L - 1] + i0 * c
        loss, right = head_step(head, b.A, off, c, rows_here, b.yb[i0:i1], b.Yb[i0:i1], b.wb[i0:i1], weight_sum, b.D)
        b.loss[p] = loss
        b.right[p] = right


@kernel(fastmath=FASTMATH)
def first_layer_sparse(b, m, net, M, V, rate, decay, rule, fused, grow, r0, r1):
    """Rows ``r0:r1`` of ``W0`` (pixels) one step, each row's gradient summed over the images
    that light its pixel.

    A row at a time: its gradient goes into ``grow`` and the rule is applied to the
    row at once, so no gradient of ``W0`` is stored (except for the :data:`STORE`
    rule, whose whole point that is).  Plain SGD (``fused``) skips the pixels no image
    in the batch lit (their gradient is zero); every other rule visits every row, as
    the reference does, so momentum still decays and weight decay still applies there.
    """
    n1 = net.sizes[1]
    w0 = net.table[0, 0]
    g = grow[:n1]
    for r in range(r0, r1):
        k0, k1 = r * m, b.cend[r]
        if k0 == k1:
            if fused:
                continue
            for j in range(n1):
                g[j] = like(g, 0.0)
        else:
            # np.int64, not a literal 0: the literal's own type would compile rows_axpy a second
            # time on the first run (~3 s), for the same machine code.
            rows_axpy(b.D, b.offs[0], n1, np.int64(0), n1, b.crow, b.cval, k0, k1, g)
        at = w0 + r * n1
        if fused:
            row = net.P[at : at + n1]
            step = like(row, rate)
            for j in range(n1):
                row[j] -= step * g[j]
        elif rule.kind == STORE:
            for j in range(n1):
                b.G[at + j] = g[j]
        else:
            apply_rule(net.P[at : at + n1], g, M[at : at + n1], V[at : at + n1], rate, decay, rule)


@kernel()
def first_layer_dense(b, Xb, m, net, M, V, rate, decay, rule, fused, r0, r1):
    """Rows ``r0:r1`` of ``W0`` one step with the gradient from GEMM (fused into it for plain SGD)."""
    d, n1 = net.sizes[0], net.sizes[1]
    lo, hi = net.table[0, 0] + r0 * n1, net.table[0, 0] + r1 * n1
    if fused:  # W0[r0:r1] += -rate * Xb[:, r0:r1]^T D1, the update inside the GEMM
        gemm(T, N, r1 - r0, n1, m, -np.float64(rate), Xb, r0, d, b.D, b.offs[0], n1, 1.0, net.P, lo, n1)
        return
    gemm(T, N, r1 - r0, n1, m, 1.0, Xb, r0, d, b.D, b.offs[0], n1, 0.0, b.G, lo, n1)
    if rule.kind != STORE:
        apply_rule(net.P[lo:hi], b.G[lo:hi], M[lo:hi], V[lo:hi], rate, decay, rule)


@kernel(nogil=True)
def first_layer_part(net, b, rows, gathered, M, V, rate, decay, rule, fused, m, p, n_parts):
    """Part ``p`` of the first layer's region: its range of pixels, i.e. of ``W0``'s rows, over
    all the layer's units (full-width tiles, whatever the thread count)."""
    d, n1 = net.sizes[0], net.sizes[1]
    r0, r1 = part_range(d, p, n_parts)
    if rule.l2 > 0.0:
        w0 = net.table[0, 0]
        b.pen[p] += sum_squares(net.P[w0 + r0 * n1 : w0 + r1 * n1])
    if rows is not None:  # the sparse path (the batch's columns are in b)
        first_layer_sparse(b, m, net, M, V, rate, decay, rule, fused, b.grow[p], r0, r1)
    if gathered is not None:
        first_layer_dense(b, gathered, m, net, M, V, rate, decay, rule, fused, r0, r1)


@kernel(nogil=True)
def backward_part(net, b, M, V, rate, decay, rule, fused, m, u, drop, p, n_parts):
    """Part ``p`` of the backward region of hidden layer ``u``'s units ``q``: the gradient they
    pass back, the rows ``q`` of the next layer's weights, and their biases.  Every
    parameter it updates is read by no other part.  With dropout (``drop > 0``) the layer's
    outputs in ``b.A`` are masked and unscaled: the products reading them take the scale
    ``1 / (1 - drop)``, and the activation's derivative reads ``b.K``, where it is 0 for
    the dropped units (:func:`drop_units`)."""
    n_u, n_next = net.sizes[u], net.sizes[u + 1]
    q0, q1 = part_range(n_u, p, n_parts)
    off, nxt = b.offs[u - 1], b.offs[u]
    lo, hi = net.table[u, 0] + q0 * n_next, net.table[u, 0] + q1 * n_next
    if rule.l2 > 0.0:
        b.pen[p] += sum_squares(net.P[lo:hi])
    scale = 1.0 / (1.0 - drop)  # exactly 1.0 without dropout
    # D_u[:, q] = D_{u+1} W_u[q, :]^T, read before this part updates those rows
    gemm(N, T, m, q1 - q0, n_next, scale, b.D, nxt, n_next, net.P, lo, n_next, 0.0, b.D, off + q0, n_u)
    if fused:
        # alpha as float64, as in every other call: gemm compiles once per argument types
        alpha = -np.float64(rate) * scale
        gemm(T, N, q1 - q0, n_next, m, alpha, b.A, off + q0, n_u, b.D, nxt, n_next, 1.0, net.P, lo, n_next)
    else:
        gemm(T, N, q1 - q0, n_next, m, scale, b.A, off + q0, n_u, b.D, nxt, n_next, 0.0, b.G, lo, n_next)
        if rule.kind != STORE:
            apply_rule(net.P[lo:hi], b.G[lo:hi], M[lo:hi], V[lo:hi], rate, decay, rule)
    bo = net.table[u - 1, 1]
    # with dropout the derivative reads b.K (0 for the dropped units; identity: the mask, by relu's rule)
    src = b.K if drop > 0.0 else b.A
    act = RELU if drop > 0.0 and net.act == IDENTITY else net.act
    activation_grad(src, b.D, off, n_u, m, q0, q1, act, b.G[bo + q0 : bo + q1])
    if rule.kind != STORE:
        apply_rule(
            net.P[bo + q0 : bo + q1],
            b.G[bo + q0 : bo + q1],
            M[bo + q0 : bo + q1],
            V[bo + q0 : bo + q1],
            rate,
            0.0,
            rule,
        )
