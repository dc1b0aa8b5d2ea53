"""The numba backend's compiled steps: the types compiled code sees, and the arithmetic of one step.

Used by :mod:`._numba_parts` and :mod:`._numba_regions` (read
:mod:`fastnn.backends.numba_backend` for the design).  Each function is the one
definition of its step, compiled once per dtype: the hidden activation and its
derivative, the output heads, the optimizer rules.  Codes (activation, head, rule) are the
indices of :data:`fastnn.activations.ACTIVATIONS`, :data:`~fastnn.activations.HEADS`
and :data:`fastnn.optimizers.OPTIMIZERS`; each function branches on its code
*outside* its loops, so that every loop stays a plain vector loop.

A network of ``L`` weight layers is a :class:`Net`: the flat parameters ``P``,
``sizes`` (``L + 1`` layer widths) and ``table`` (each layer's weight and bias
offsets in ``P``).  Layer ``u``'s outputs (``1 <= u <= L``) are the ``(m, sizes[u])``
matrix at ``A[offs[u - 1]:]`` and their gradients the same place in ``D``; with
dropout, what a hidden layer's derivative reads (:func:`drop_units`) is at the same place in ``K``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _keys
from ..activations import ACTIVATIONS, HEADS
from ..optimizers import OPTIMIZERS
from ._numba_jitable import like  # (also registers the random keys for compiled code)
from ._numba_setup import FASTMATH, kernel

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
    K: np.ndarray  # dropout: what the derivatives read, laid out as A (a stand-in of 16 until used)


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


# --- dropout (the definition is fastnn.dropout's) ---------------------------------------------


@kernel()
def drop_units(A, K, off, n, m, perm, lo, key, drop, base, act):
    """Dropout on the rows ``i < m`` of the hidden layer's ``(m, n)`` outputs ``a`` at ``A[off:]``
    (activation ``act``): unit ``j`` of training row ``perm[lo + i]`` is kept when its draw
    ``base + j`` is ``>= drop`` (``base``: the layer's first unit among all hidden units),
    else ``A[i, j] = 0``.  The scale ``1 / (1 - drop)`` is left to the products that read
    ``A`` (see :mod:`fastnn.dropout`).

    ``K`` receives what the backward pass's :func:`activation_grad` then reads in place of
    ``A``, so that masking the gradient costs no pass of its own: a kept unit's unmasked
    ``a``, and for a dropped unit a value where the derivative is 0 (0 for relu and
    logistic, 1 for tanh: ``1 - 1**2``).  The identity's derivative is never 0, so for it
    ``K`` is the mask itself, 1 or 0, read with relu's rule.
    """
    zero, one = like(A, 0.0), like(A, 1.0)
    dead = one if act == TANH else zero
    for i in range(m):
        row_key = _keys.sample_key(key, np.uint64(perm[lo + i]))
        at = off + i * n
        for j in range(n):
            if _keys.uniform(row_key, np.uint64(base + j)) >= drop:
                K[at + j] = one if act == IDENTITY else A[at + j]
            else:
                K[at + j] = dead
                A[at + j] = zero


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
