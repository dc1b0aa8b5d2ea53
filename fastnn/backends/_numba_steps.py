"""The numba backend's compiled steps: what one thread does for one layer of one mini-batch.

Used by :mod:`fastnn.backends._numba_regions` (read
:mod:`fastnn.backends.numba_backend` for the design).  Each function is the one
definition of its step, compiled once per dtype: the hidden activation and its
derivative, the output heads, the optimizer rules, and a thread's share of a
layer's forward and backward pass.  Codes (activation, head, rule) are the
indices of :data:`fastnn.activations.ACTIVATIONS`, :data:`~fastnn.activations.HEADS`
and :data:`fastnn.optimizers.OPTIMIZERS`; each function branches on its code
*outside* its loops, so that every loop stays a plain vector loop.

A network of ``L`` weight layers is a :class:`Net`: the flat parameters ``P``,
``sizes`` (``L + 1`` layer widths) and ``table`` (each layer's weight and bias
offsets in ``P``).  Layer ``u``'s outputs (``1 <= u <= L``) are the ``(m, sizes[u])``
matrix at ``A[offs[u - 1]:]`` and their gradients the same place in ``D``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..activations import ACTIVATIONS, HEADS
from ..optimizers import OPTIMIZERS
from ._numba_blas import N, T, gemm
from ._numba_jitable import like
from ._numba_setup import FASTMATH, kernel
from ._numba_sparse import TILES, batch_columns, rows_axpy

IDENTITY, LOGISTIC, TANH, RELU = (ACTIVATIONS.index(a) for a in ("identity", "logistic", "tanh", "relu"))
SOFTMAX, SIGMOID, LINEAR, EXP = (HEADS.index(h) for h in ("softmax", "logistic", "identity", "exp"))
SGD, MOMENTUM, NESTEROV, ADAM = (OPTIMIZERS.index(o) for o in ("sgd", "momentum", "nesterov", "adam"))
#: A "rule" that applies nothing: the per-step backward kernel stores gradients only.
STORE = -1


class Net(NamedTuple):
    """A network as compiled code sees it (see the module)."""

    P: np.ndarray  # flat parameters
    sizes: np.ndarray  # (L + 1,) int64 layer widths, inputs first
    table: np.ndarray  # (L, 2) int64 offsets of each layer's weights and biases in P
    act: int  # hidden activation code
    head: int  # output head code


class Rule(NamedTuple):
    """The optimizer's rule and hyperparameters (see :mod:`fastnn.optimizers`)."""

    kind: int
    mu: float  # momentum, or Adam's beta1
    beta2: float
    eps: float
    weight_decay: float
    l2: float


class Rows(NamedTuple):
    """The training inputs in compressed rows (see :func:`._numba_sparse.compress_rows`)."""

    indptr: np.ndarray
    idx: np.ndarray
    val: np.ndarray


class Buffers(NamedTuple):
    """One batch's working arrays (``m`` rows at most), plus per-thread scratch."""

    Xb: np.ndarray  # (m, d) the gathered batch (dense path only)
    yb: np.ndarray  # (m,) its labels (softmax head)
    Yb: np.ndarray  # (m, c) its targets (other heads)
    wb: np.ndarray  # (m,) its sample weights
    A: np.ndarray  # every layer's outputs, layer u at offs[u - 1]
    D: np.ndarray  # their gradients, same places
    offs: np.ndarray  # (L,) int64
    right: np.ndarray  # (threads,) int64 rows right, per thread (the forward region's rows)
    G: np.ndarray  # gradients, laid out as the parameters
    grow: np.ndarray  # (threads, h1) one first-layer gradient row per thread (sparse path)
    cend: np.ndarray  # (d,) the batch's pixel columns (sparse path): ends,
    crow: np.ndarray  # (m * d,) batch positions (uint16),
    cval: np.ndarray  # (m * d,) and values
    pen: np.ndarray  # (threads,) float64 partial sums of the squared weights (L2 penalty)
    loss: np.ndarray  # (threads,) float64 weighted loss sums, per thread


@kernel()
def part_range(n, p, parts):
    """Units ``[lo, hi)`` of ``n`` owned by part ``p`` of ``parts`` (sizes differ by at most 1)."""
    return (n * p) // parts, (n * (p + 1)) // parts


# --- activations ----------------------------------------------------------------------


@kernel(fastmath=FASTMATH)
def bias_activate(Z, off, n, m, P, bo, s0, s1, act):
    """``Z[i, s0:s1] = f(Z[i, s0:s1] + b[s0:s1])`` for the rows ``i < m`` of the ``(m, n)``
    matrix at ``Z[off:]``, ``b`` the biases at ``P[bo:]``, ``f`` the activation ``act``."""
    bias = P[bo + s0 : bo + s1]
    w = s1 - s0
    zero, one = like(Z, 0.0), like(Z, 1.0)
    for i in range(m):
        row = Z[off + i * n + s0 : off + i * n + s1]  # row views let LLVM vectorise these loops
        if act == RELU:
            for j in range(w):
                v = row[j] + bias[j]
                row[j] = v if v > zero else zero
        elif act == TANH:
            for j in range(w):
                row[j] = np.tanh(row[j] + bias[j])
        elif act == LOGISTIC:
            for j in range(w):
                row[j] = one / (one + np.exp(-(row[j] + bias[j])))
        else:
            for j in range(w):
                row[j] += bias[j]


@kernel(fastmath=FASTMATH)
def activation_grad(A, D, off, n, m, q0, q1, act, db):
    """``D[i, q] *= f'(A[i, q])`` for units ``q0 <= q < q1`` of the ``(m, n)`` layer at ``off``
    (``f'`` through the activation's output, as in :mod:`fastnn.activations`), and
    ``db[q - q0] = sum_i D[i, q]``: the bias gradient."""
    w = q1 - q0
    zero, one = like(D, 0.0), like(D, 1.0)
    for j in range(w):
        db[j] = zero
    for i in range(m):
        grad = D[off + i * n + q0 : off + i * n + q1]
        act_ = A[off + i * n + q0 : off + i * n + q1]
        if act == RELU:
            for j in range(w):
                g = grad[j] if act_[j] > zero else zero
                grad[j] = g
                db[j] += g
        elif act == TANH:
            for j in range(w):
                g = grad[j] * (one - act_[j] * act_[j])
                grad[j] = g
                db[j] += g
        elif act == LOGISTIC:
            for j in range(w):
                g = grad[j] * act_[j] * (one - act_[j])
                grad[j] = g
                db[j] += g
        else:
            for j in range(w):
                db[j] += grad[j]


@kernel()
def column_sums(D, off, n, m, out):
    """``out[j] = sum_{i < m} D[i, j]`` for the ``(m, n)`` matrix at ``D[off:]``."""
    for j in range(n):
        out[j] = like(out, 0.0)
    for i in range(m):
        row = D[off + i * n : off + (i + 1) * n]
        for j in range(n):
            out[j] += row[j]


# --- output heads -----------------------------------------------------------------------


@kernel()
def head_step(head, Z, off, c, m, yb, Yb, wb, weight_sum, D):
    """The head's loss of a batch and ``D = w_i (output(Z) - target) / sum(w)`` at ``D[off:]``.

    Returns ``(sum_i w_i loss_i, rows right)`` over the ``m`` rows given, in float64
    (logits can span more than float32's range); ``weight_sum`` is the whole batch's.
    """
    inv = like(Z, 1.0 / weight_sum)
    zero, one = like(Z, 0.0), like(Z, 1.0)
    loss = 0.0
    correct = 0
    for i in range(m):
        z = Z[off + i * c : off + (i + 1) * c]
        d = D[off + i * c : off + (i + 1) * c]
        w = wb[i]
        if head == SOFTMAX:
            zmax = z[0]
            arg = 0
            for j in range(1, c):
                if z[j] > zmax:
                    zmax = z[j]
                    arg = j
            total = zero
            for j in range(c):
                e = np.exp(z[j] - zmax)
                d[j] = e
                total += e
            label = yb[i]
            loss += w * (np.log(np.float64(total)) - (np.float64(z[label]) - np.float64(zmax)))
            scale = w * inv / total
            for j in range(c):
                d[j] = d[j] * scale
            d[label] -= w * inv
            correct += arg == label
            continue
        t = Yb[i]
        row_loss = 0.0
        right = True
        for j in range(c):
            zj = z[j]
            if head == SIGMOID:
                d[j] = (one / (one + np.exp(-zj)) - t[j]) * w * inv
                z64 = np.float64(zj)
                row_loss += max(z64, 0.0) + np.log1p(np.exp(-abs(z64))) - np.float64(t[j]) * z64
                right = right and ((zj > zero) == (t[j] > like(Z, 0.5)))
            elif head == LINEAR:
                diff = zj - t[j]
                d[j] = diff * w * inv
                row_loss += 0.5 * np.float64(diff) * np.float64(diff)
            else:
                e = np.exp(zj)
                d[j] = (e - t[j]) * w * inv
                t64 = np.float64(t[j])
                row_loss += np.float64(e) - t64 * np.float64(zj) - t64
                if t64 > 0.0:
                    row_loss += t64 * np.log(t64)
        loss += w * row_loss
        if head == SIGMOID and right:
            correct += 1
    return loss, correct


# --- optimizer rules ----------------------------------------------------------------------


@kernel(fastmath=FASTMATH)
def apply_rule(p, g, mm, vv, rate, decay, rule):
    """One step of ``rule`` on 1-D views: parameters ``p``, gradient ``g``, state ``mm, vv``
    (stand-ins where the rule has none); weights pass their ``decay``, biases 0.

    One loop per rule, so that each is a plain vector loop (a rule chosen inside
    the loop kept LLVM from vectorising it).  The arithmetic is the reference's
    (:mod:`fastnn.optimizers`), in the same order.
    """
    kind = rule.kind
    r, wd = like(p, rate), like(p, decay)
    mu, b2, eps, one = like(p, rule.mu), like(p, rule.beta2), like(p, rule.eps), like(p, 1.0)
    n = p.shape[0]
    if kind == SGD:
        for j in range(n):
            p[j] -= r * (g[j] + wd * p[j])
    elif kind == MOMENTUM:
        for j in range(n):
            v = mu * mm[j] - r * (g[j] + wd * p[j])
            mm[j] = v
            p[j] += v
    elif kind == NESTEROV:
        for j in range(n):
            gj = g[j] + wd * p[j]
            v = mu * mm[j] - r * gj
            mm[j] = v
            p[j] += mu * v - r * gj
    elif kind == ADAM:
        for j in range(n):
            gj = g[j] + wd * p[j]
            m1 = mu * mm[j] + (one - mu) * gj
            v2 = b2 * vv[j] + (one - b2) * (gj * gj)
            mm[j] = m1
            vv[j] = v2
            p[j] -= r * m1 / (np.sqrt(v2) + eps)


@kernel(fastmath={"contract", "reassoc"})
def sum_squares(a):
    """``sum(a**2)`` in float64 (for the L2 penalty's value only: any order will do)."""
    s = 0.0
    for x in a:
        s += np.float64(x) * np.float64(x)
    return s


# --- a thread's share of a layer ---------------------------------------------------------


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
def forward_rows(X, perm, lo, m, net, b, rows, gathered, weight_sum, head, p, n_parts):
    """Part ``p`` of the forward region: its rows of the batch ``perm[lo:lo + m]`` through every
    layer, and with a ``head`` (its code; -1 for none) their loss and output gradient (into
    ``b.loss[p]``, ``b.right[p]`` and ``b.D``); on the sparse path also its range of pixels'
    columns.

    Rows need nothing from other rows, so one region covers every layer: no partial
    sums, no wait between layers, and every part works on all of a layer's units
    whatever the thread count.  The dense path gathers its rows into ``gathered`` first.
    """
    L = net.sizes.shape[0] - 1
    d, c = net.sizes[0], net.sizes[L]
    i0, i1 = part_range(m, p, n_parts)
    rows_here = i1 - i0
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
                1.0,
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
        gemm(T, N, r1 - r0, n1, m, -rate, Xb, r0, d, b.D, b.offs[0], n1, 1.0, net.P, lo, n1)
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
def backward_part(net, b, M, V, rate, decay, rule, fused, m, u, p, n_parts):
    """Part ``p`` of the backward region of hidden layer ``u``'s units ``q``: the gradient they
    pass back, the rows ``q`` of the next layer's weights, and their biases.  Every
    parameter it updates is read by no other part."""
    n_u, n_next = net.sizes[u], net.sizes[u + 1]
    q0, q1 = part_range(n_u, p, n_parts)
    off, nxt = b.offs[u - 1], b.offs[u]
    lo, hi = net.table[u, 0] + q0 * n_next, net.table[u, 0] + q1 * n_next
    if rule.l2 > 0.0:
        b.pen[p] += sum_squares(net.P[lo:hi])
    # D_u[:, q] = D_{u+1} W_u[q, :]^T, read before this part updates those rows
    gemm(N, T, m, q1 - q0, n_next, 1.0, b.D, nxt, n_next, net.P, lo, n_next, 0.0, b.D, off + q0, n_u)
    if fused:
        gemm(T, N, q1 - q0, n_next, m, -rate, b.A, off + q0, n_u, b.D, nxt, n_next, 1.0, net.P, lo, n_next)
    else:
        gemm(T, N, q1 - q0, n_next, m, 1.0, b.A, off + q0, n_u, b.D, nxt, n_next, 0.0, b.G, lo, n_next)
        if rule.kind != STORE:
            apply_rule(net.P[lo:hi], b.G[lo:hi], M[lo:hi], V[lo:hi], rate, decay, rule)
    bo = net.table[u - 1, 1]
    activation_grad(b.A, b.D, off, n_u, m, q0, q1, net.act, b.G[bo + q0 : bo + q1])
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
