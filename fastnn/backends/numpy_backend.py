"""The reference backend: every training kernel as a short, readable NumPy function.

Conventions shared with every other backend (same names, same arguments):

* samples are rows; ``X`` is ``(n, d)``; the network ``net`` is a
  :class:`fastnn.network.Network` (any object with its ``params``,
  ``activation`` and ``head``): layer ``i`` has ``coefs[i] (fan_in, fan_out)``
  and ``intercepts[i]``, all views of ``net.params.flat``, updated in place;
  the dtype of the parameters (float32 or float64) is the dtype of the work;
* what a head trains against is a :class:`fastnn.activations.Targets`
  (class indices, or target values, and sample weights);
* outputs go into preallocated arrays: a :class:`Workspace` per batch size,
  whose per-layer arrays are sliced to the current batch length ``m`` (the
  last batch of an epoch may be short);
* losses and correct counts come back as sums over the batch (not means), so
  that sums over batches of different lengths stay exact;
* an optimizer is a :class:`fastnn.optimizers.Optimizer`; the learning rates
  of a chunk of steps come as an array, one per step;
* dropout, when on, is one epoch's :class:`fastnn.dropout.Dropout` given to
  ``train_steps`` (its exact definition is in :mod:`fastnn.dropout`).

This module is written to be read: one step of the math per function, one
loop over the layers, the activations and heads from the lookup tables of
:mod:`fastnn.activations`.  The numba backend is checked against it.
"""

from __future__ import annotations

import numpy as np

from .. import _keys
from .. import augment as _aug
from .. import dropout as _dropout
from ..activations import ACTIVATE, DERIVATIVE, OUTPUT, Targets, head_correct, head_losses
from ..layers import Params
from ._checks import check_network_call, check_targets

NAME = "numpy"


# --- shuffling and batching -------------------------------------------------


def permutation(n: int, seed: int, epoch: int, out: np.ndarray) -> None:
    """Write epoch ``epoch``'s shuffle of ``range(n)`` into ``out`` (int64, length n).

    A keyed Feistel bijection with cycle walking: see :mod:`fastnn._keys`.
    """
    keys = _keys.round_keys(seed, epoch)
    k = _keys.half_bits(n)
    f = _feistel_domain(keys, k)
    y = f[:n].copy()
    outside = y >= n
    while outside.any():  # values that left [0, n) go through again until they return
        y[outside] = f[y[outside]]
        outside = y >= n
    out[:] = y


def _feistel_domain(keys, k: int) -> np.ndarray:
    """:func:`fastnn._keys.feistel` of every value of its domain ``[0, 4**k)`` (fewer than 4n).

    Evaluated once per epoch, so that cycle walking is a lookup (re-running the rounds on the
    values left outside took ~10 passes of NumPy calls per epoch), and with each round's
    function tabulated: it reads only the k-bit right half, so ``2**k`` mixes per round
    replace ``4**k``.  The same values as ``_keys.feistel`` (tests/test_kernels.py compares
    both backends' permutations, the numba one computing the rounds directly).
    """
    mask = np.uint64((1 << k) - 1)
    halves = np.arange(1 << k, dtype=np.uint64)
    tables = _keys.mix(halves[None, :] ^ keys[:, None]) & mask  # one row per round
    x = np.arange(1 << (2 * k), dtype=np.uint64)
    left, right = x >> np.uint64(k), x & mask
    for table in tables:
        left, right = right, left ^ table[right]
    return (left << np.uint64(k)) | right


def gather(X: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
    """Copy the rows ``idx`` of ``X`` into the first ``len(idx)`` rows of ``out``."""
    np.take(X, idx, axis=0, out=out[: len(idx)])


# --- augmentation -------------------------------------------------------------


def augment(X, seed: int, epoch: int, spec, out, ws=None) -> None:
    """Write epoch ``epoch``'s random distortion of every image of ``X (n, 784)`` into ``out``.

    ``spec`` is an :class:`fastnn.augment.AugmentSpec`; the exact definition (flip, affine
    map, elastic field, bilinear interpolation with zeros outside, random erasing,
    per-sample keyed draws) is in :mod:`fastnn.augment`.  Computed in float64, 4096 images at a time; ``ws`` is
    the training workspace (unused here: this backend reads ``out`` afresh every step).
    """
    from scipy import ndimage

    n, side = X.shape[0], _aug.SIDE
    c = _aug.CENTRE
    if spec.elastic:
        A, _, _ = _aug.elastic_grid(spec.sigma)
        K = A.shape[1]
    yy, xx = np.meshgrid(np.arange(side, dtype=np.float64) - c, np.arange(side, dtype=np.float64) - c, indexing="ij")
    keys = _aug.sample_keys(seed, epoch, n)
    flip_draw = spec.flip_draw()
    for lo in range(0, n, 4096):
        hi = min(lo + 4096, n)
        raw = _aug.draws(keys[lo:hi], spec.n_draws())  # uniform in [0, 1)
        u = 2.0 * raw - 1.0  # uniform in [-1, 1)
        theta = np.deg2rad(spec.rotation * u[:, 0])[:, None, None]
        k = (spec.shear * u[:, 1])[:, None, None]
        zx = (1.0 + spec.scale * u[:, 2])[:, None, None]
        zy = (1.0 + spec.scale * u[:, 3])[:, None, None]
        tx = (spec.shift * u[:, 4])[:, None, None]
        ty = (spec.shift * u[:, 5])[:, None, None]
        # src = c + Rot(theta) Shear(k) diag(1/zx, 1/zy) (F(p) - c) - t, F the flip when u_f < flip
        px = xx
        if spec.flip > 0:  # F(p) - c = (c - x, y - c): the x offsets negated, exactly
            flipped = raw[:, flip_draw] < spec.flip
            px = np.where(flipped[:, None, None], -xx, xx)
        qx, qy = px / zx, yy / zy
        qx = qx + k * qy
        sx = c + np.cos(theta) * qx - np.sin(theta) * qy - tx
        sy = c + np.sin(theta) * qx + np.cos(theta) * qy - ty
        if spec.elastic:
            # D = alpha * sigma * A U A^T, U the K x K grid noise (draws 6.. row by row, x then y)
            scale = spec.alpha * spec.sigma
            Ux = u[:, 6 : 6 + K * K].reshape(-1, K, K)
            Uy = u[:, 6 + K * K : 6 + 2 * K * K].reshape(-1, K, K)
            sx = sx + scale * (A @ Ux @ A.T)
            sy = sy + scale * (A @ Uy @ A.T)
        # Bilinear interpolation, zero outside the image: scipy's order-1 spline in
        # 'grid-constant' mode, over the stack of images (the sample coordinate is exact).
        m = hi - lo
        images = X[lo:hi].reshape(m, side, side).astype(np.float64)
        ii = np.broadcast_to(np.arange(m, dtype=np.float64)[:, None, None], sx.shape)
        res = ndimage.map_coordinates(images, [ii, sy, sx], order=1, mode="grid-constant", cval=0.0)
        if spec.erase > 0:  # random erasing: each sample's rectangle [y0, y0 + h) x [x0, x0 + w) set to 0
            f = flip_draw + _aug.N_FLIP_DRAWS
            y0, x0, h, w = (b[:, None, None] for b in _aug.erase_boxes(raw[:, f : f + _aug.N_ERASE_DRAWS], spec).T)
            rows, cols = np.arange(side)[None, :, None], np.arange(side)[None, None, :]
            res[(rows >= y0) & (rows < y0 + h) & (cols >= x0) & (cols < x0 + w)] = 0.0
        out[lo:hi] = res.reshape(m, side * side)


# --- the workspace ------------------------------------------------------------------


class Workspace:
    """Preallocated arrays for batches of up to ``batch_size`` rows of one network's layout.

    ``A[i]`` holds layer ``i``'s output (the last one raw, before the head) and
    ``D[i]`` the loss's gradient with respect to layer ``i``'s pre-activation;
    ``grads`` the parameters' gradients; ``Xb`` and ``targets`` the gathered batch.
    With dropout, ``H[i]`` holds hidden layer ``i``'s activations before their mask
    (allocated on first use: :meth:`unmasked`).
    """

    def __init__(self, net, batch_size: int):
        layout, dtype = net.params.layout, net.params.dtype
        self.shape = (batch_size, layout)
        self.A = [np.empty((batch_size, size), dtype) for size in layout.sizes[1:]]
        self.D = [np.empty((batch_size, size), dtype) for size in layout.sizes[1:]]
        self.H: list | None = None
        self.grads = Params(layout)
        self.Xb = np.empty((batch_size, layout.sizes[0]), dtype)

    def activations(self, m: int) -> list:
        """Each layer's output for the first ``m`` rows (views)."""
        return [a[:m] for a in self.A]

    def deltas(self, m: int) -> list:
        """Each layer's gradient for the first ``m`` rows (views)."""
        return [d[:m] for d in self.D]

    def unmasked(self, m: int) -> list:
        """Each hidden layer's activations before dropout, for the first ``m`` rows (views)."""
        if self.H is None:
            self.H = [np.empty_like(a) for a in self.A[:-1]]
        return [h[:m] for h in self.H]


def make_workspace(net, batch_size: int) -> Workspace:
    """Allocate the arrays :func:`train_steps` and the per-step kernels need."""
    return Workspace(net, batch_size)


# --- forward, loss, backward, update ---------------------------------------------------


def forward(net, Xb, ws: Workspace) -> None:
    """A[0] = f(Xb W_0 + b_0), ..., A[-1] = A[-2] W_L + b_L (raw: the head is the loss's)."""
    check_network_call(net, Xb=Xb, ws=ws)
    _forward(net, Xb, ws.activations(len(Xb)))


def _forward(net, Xb, A, K=None, H=None) -> None:
    """With dropout, ``K[i]`` is hidden layer ``i``'s multipliers ``k / (1 - p)`` (0 where
    dropped): ``H[i]`` receives its activations and ``A[i]`` the masked ones the next layer reads."""
    inputs = Xb
    last = len(A) - 1
    for i, (W, b) in enumerate(net.params.blocks()):
        np.matmul(inputs, W, out=A[i])
        A[i] += b
        if i < last:
            ACTIVATE[net.activation](A[i])
            if K is not None:
                H[i][...] = A[i]
                A[i] *= K[i]
        inputs = A[i]


def loss(head: str, Z, targets: Targets, dZ) -> tuple[float, int]:
    """The head's loss of a batch and its gradient with respect to the raw outputs ``Z``.

    Returns ``(sum_i w_i loss_i * m / sum(w), rows right)``: with unit weights the
    plain sum of the per-sample losses.  ``dZ = w_i (output(Z) - target) / sum(w)``,
    the gradient of the weighted mean (:mod:`fastnn.activations`).
    """
    check_targets(head, Z, targets, dZ)
    return _loss(head, Z, targets, dZ)


def _loss(head, Z, targets, dZ) -> tuple[float, int]:
    m = len(Z)
    w = targets.weights
    weight_sum = float(w.sum(dtype=np.float64))
    losses = head_losses(head, Z, targets)
    dZ[...] = Z
    with np.errstate(over="ignore"):  # a logit span beyond float32 gives -inf: exp -> 0, as it should
        OUTPUT[head](dZ)
    if head == "softmax":
        dZ[np.arange(m), targets.labels] -= 1
    else:
        dZ -= targets.values
    dZ *= (w / w.dtype.type(weight_sum))[:, None]
    return float(np.dot(w.astype(np.float64), losses)) * m / weight_sum, head_correct(head, Z, targets)


def backward(net, Xb, ws: Workspace) -> None:
    """Every gradient of the batch's loss, from ``D[-1]`` (set by :func:`loss`), into ``ws.grads``.

    For layer i from the last: dW_i = A_{i-1}^T D_i,  db_i = sum_rows D_i,
    D_{i-1} = (D_i W_i^T) * f'(A_{i-1})  (A_{-1} = Xb).
    """
    check_network_call(net, Xb=Xb, ws=ws)
    m = len(Xb)
    _backward(net, Xb, ws.activations(m), ws.deltas(m), ws.grads)


def _backward(net, Xb, A, D, grads, K=None, H=None) -> None:
    """With dropout (``K``, ``H`` as :func:`_forward`'s): the gradient arriving at a hidden
    layer's masked output times ``K``, then the derivative through the unmasked ``H``."""
    inputs = [Xb] + A[:-1]
    for i in reversed(range(len(D))):
        np.matmul(inputs[i].T, D[i], out=grads.coefs[i])
        np.sum(D[i], axis=0, out=grads.intercepts[i])
        if i > 0:
            np.matmul(D[i], net.coefs[i].T, out=D[i - 1])
            if K is None:
                DERIVATIVE[net.activation](A[i - 1], D[i - 1])
            else:
                D[i - 1] *= K[i - 1]
                DERIVATIVE[net.activation](H[i - 1], D[i - 1])


def update(params: Params, grads: Params, opt, rate: float, decay: float = 0.0) -> None:
    """One optimizer step of ``opt``'s rule at step size ``rate`` (weights also decayed by ``decay``)."""
    opt.update(params, grads, rate, decay)


# --- whole steps ----------------------------------------------------------------


def train_steps(
    net, X, targets: Targets, perm, start: int, stop: int, batch_size: int, lrs, opt, ws: Workspace, dropout=None
) -> tuple[float, int]:
    """Mini-batch steps over the samples ``perm[start:stop]`` in batches of ``batch_size``.

    ``lrs`` holds one learning rate per batch; ``opt`` (an
    :class:`~fastnn.optimizers.Optimizer`) turns them into step sizes and
    applies its rule, with ``opt.decay(batch weight)`` on the weights.  The
    last batch may be shorter.  Returns the sum of the batches' losses (each
    :func:`loss` plus, with ``opt.l2``, the penalty ``l2 ||W||**2 / 2`` scaled
    as the loss) and the number of rows right, measured before each update.
    ``dropout`` (a :class:`fastnn.dropout.Dropout`, or None for none) drops hidden
    units as :mod:`fastnn.dropout` defines, keyed on the rows' indices in ``X``.
    """
    n_steps = check_network_call(
        net, X=X, ws=ws, targets=targets, perm=perm, start=start, stop=stop, batch_size=batch_size, lrs=lrs
    )
    rates = opt.rates(lrs)
    hidden = net.params.layout.sizes[1:-1]
    K = H = None
    total, correct = 0.0, 0
    # A diverging run overflows; the caller sees it as a non-finite loss and stops with a
    # clear message, so NumPy's RuntimeWarnings would only be noise before it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for k, lo in enumerate(range(start, stop, batch_size)):
            idx = perm[lo : min(lo + batch_size, stop)]
            m = len(idx)
            Xb, A, D = ws.Xb[:m], ws.activations(m), ws.deltas(m)
            batch = targets.take(idx)
            gather(X, idx, Xb)
            if dropout is not None and dropout.rate > 0:  # the masks of the batch's rows, by their index in X
                K, H = _dropout.multipliers(dropout, idx, hidden, Xb.dtype), ws.unmasked(m)
            _forward(net, Xb, A, K, H)
            batch_loss, batch_correct = _loss(net.head, A[-1], batch, D[-1])
            weight_sum = float(batch.weights.sum(dtype=np.float64))
            if opt.l2:
                batch_loss += 0.5 * opt.l2 * net.params.squared_norm() * m / weight_sum
            _backward(net, Xb, A, D, ws.grads, K, H)
            opt.update(net.params, ws.grads, rates[k], opt.decay(weight_sum))
            total += batch_loss
            correct += batch_correct
    opt.advance(n_steps)
    return total, correct


def predict(net, X, out) -> None:
    """The raw outputs (before the head) of every row of ``X`` into ``out (n, c)``.

    4096 rows at a time, so that the hidden layers' outputs stay small whatever ``n``.
    """
    check_network_call(net, X=X, out=out)
    last = net.params.layout.n_layers - 1
    for lo in range(0, len(X), 4096):
        inputs = X[lo : lo + 4096]
        for i, (W, b) in enumerate(net.params.blocks()):
            Z = np.matmul(inputs, W, out=out[lo : lo + 4096] if i == last else None)
            Z += b
            if i < last:
                ACTIVATE[net.activation](Z)
            inputs = Z


# --- threads -----------------------------------------------------------------


def set_threads(threads: int | None) -> None:
    """Cap the threads of BLAS, the reference's only parallel part (``None``: leave them)."""
    import os

    from ..errors import FastnnError

    if threads is None:
        return
    cpus = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cpus:
        raise FastnnError(f"threads must be between 1 and {cpus} (the CPU count), got {threads}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="blas")


def thread_info() -> dict:
    """The threads this backend computes with: ``{"threads": BLAS's thread count}``."""
    from threadpoolctl import threadpool_info

    blas = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return {"threads": max(blas, default=1)}


def kernels_cached() -> bool:
    """Whether the first training call will run at once (always: nothing is compiled here)."""
    return True
