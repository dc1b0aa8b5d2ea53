"""The reference backend: every training kernel as a short, readable NumPy function.

Conventions shared with every other backend (same names, same arguments):

* samples are rows; ``X`` is ``(n, d)`` float32 in [0, 1], ``y`` is ``(n,)`` int64
  class indices in ``[0, c)``;
* parameters are ``W1 (d, h)``, ``b1 (h,)``, ``W2 (h, c)``, ``b2 (c,)``, float32,
  and are updated in place;
* outputs go into preallocated arrays passed as ``out``-style arguments, sliced
  to the current batch length ``m`` (the last batch of an epoch may be short);
* loss and accuracy come back as sums over the batch (not means), so that sums
  over batches of different lengths stay exact.

This module is written to be read: one step of the math per function, the
formula in the comment above it.  The Numba backend is checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import augment as _aug
from . import _optim, _permute
from ._checks import check_labels, check_shapes

NAME = "numpy"


# --- shuffling and batching -------------------------------------------------


def _feistel(x: np.ndarray, keys: list[int], k: int) -> np.ndarray:
    """One pass of the keyed Feistel bijection on ``[0, 4**k)`` (uint64 array)."""
    mask = np.uint64((1 << k) - 1)
    left, right = x >> np.uint64(k), x & mask
    for key in keys:
        z = right ^ np.uint64(key)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        left, right = right, left ^ (z & mask)
    return (left << np.uint64(k)) | right


def permutation(n: int, seed: int, epoch: int, out: np.ndarray) -> None:
    """Write epoch ``epoch``'s shuffle of ``range(n)`` into ``out`` (int64, length n).

    See :mod:`fastnn.backends._permute` for why this is a Feistel bijection.
    """
    keys = _permute.round_keys(seed, epoch)
    k = _permute.half_bits(n)
    y = _feistel(np.arange(n, dtype=np.uint64), keys, k)
    # Cycle walking: values that left [0, n) are pushed through again until they return.
    outside = y >= n
    while outside.any():
        y[outside] = _feistel(y[outside], keys, k)
        outside = y >= n
    out[:] = y


def gather(X: np.ndarray, y: np.ndarray, idx: np.ndarray, Xb: np.ndarray, yb: np.ndarray) -> None:
    """Copy the rows ``idx`` of ``X, y`` into the batch buffers ``Xb, yb`` (length ``len(idx)``)."""
    np.take(X, idx, axis=0, out=Xb)
    np.take(y, idx, out=yb)


# --- augmentation -------------------------------------------------------------


def augment(X, seed: int, epoch: int, spec, out, ws=None) -> None:
    """Write epoch ``epoch``'s random distortion of every image of ``X (n, 784)`` into ``out``.

    ``spec`` is an :class:`fastnn.augment.AugmentSpec`; the exact definition (affine map,
    elastic field, bilinear interpolation with zeros outside, per-sample keyed draws) is
    in :mod:`fastnn.augment`.  Computed in float64, 4096 images at a time; ``ws`` is
    the training workspace (unused here: this backend reads ``out`` afresh every step).
    """
    from scipy import ndimage

    n, side = X.shape[0], _aug.SIDE
    c = _aug.CENTRE
    if spec.elastic:
        A, _, _ = _aug.elastic_grid(spec.sigma)
        K = A.shape[1]
    yy, xx = np.meshgrid(np.arange(side, dtype=np.float64) - c, np.arange(side, dtype=np.float64) - c,
                         indexing="ij")
    keys = _aug.sample_keys(seed, epoch, n)
    for lo in range(0, n, 4096):
        hi = min(lo + 4096, n)
        u = 2.0 * _aug.draws(keys[lo:hi], spec.n_draws()) - 1.0  # uniform in [-1, 1)
        theta = np.deg2rad(spec.rotation * u[:, 0])[:, None, None]
        k = (spec.shear * u[:, 1])[:, None, None]
        zx = (1.0 + spec.scale * u[:, 2])[:, None, None]
        zy = (1.0 + spec.scale * u[:, 3])[:, None, None]
        tx = (spec.shift * u[:, 4])[:, None, None]
        ty = (spec.shift * u[:, 5])[:, None, None]
        # src = c + Rot(theta) Shear(k) diag(1/zx, 1/zy) (p - c) - t
        qx, qy = xx / zx, yy / zy
        qx = qx + k * qy
        sx = c + np.cos(theta) * qx - np.sin(theta) * qy - tx
        sy = c + np.sin(theta) * qx + np.cos(theta) * qy - ty
        if spec.elastic:
            # D = alpha * sigma * A U A^T, U the K x K grid noise (draws 6.. row by row, x then y)
            scale = spec.alpha * spec.sigma
            Ux = u[:, 6:6 + K * K].reshape(-1, K, K)
            Uy = u[:, 6 + K * K:6 + 2 * K * K].reshape(-1, K, K)
            sx = sx + scale * (A @ Ux @ A.T)
            sy = sy + scale * (A @ Uy @ A.T)
        # Bilinear interpolation, zero outside the image: scipy's order-1 spline in
        # 'grid-constant' mode, over the stack of images (the sample coordinate is exact).
        m = hi - lo
        images = X[lo:hi].reshape(m, side, side).astype(np.float64)
        ii = np.broadcast_to(np.arange(m, dtype=np.float64)[:, None, None], sx.shape)
        res = ndimage.map_coordinates(images, [ii, sy, sx], order=1, mode="grid-constant", cval=0.0)
        out[lo:hi] = res.reshape(m, side * side)


# --- forward ------------------------------------------------------------------


def forward(Xb, W1, b1, W2, b2, A1, logits) -> None:
    """A1 = relu(Xb @ W1 + b1);  logits = A1 @ W2 + b2."""
    check_shapes(Xb=Xb, W1=W1, b1=b1, W2=W2, b2=b2, A1=A1, logits=logits)
    _forward(Xb, W1, b1, W2, b2, A1, logits)


def _forward(Xb, W1, b1, W2, b2, A1, logits) -> None:
    np.matmul(Xb, W1, out=A1)
    A1 += b1
    np.maximum(A1, 0, out=A1)
    np.matmul(A1, W2, out=logits)
    logits += b2


def softmax_xent(logits, yb, dlogits) -> tuple[float, int]:
    """Softmax cross-entropy of a batch, and its gradient with respect to the logits.

    loss_i = logsumexp(z_i) - z_i[y_i], computed after subtracting the row max so
    that exp never overflows;  dlogits = (softmax(z) - onehot(y)) / m, the
    gradient of the *mean* loss.  Returns (sum of losses, number correct).
    """
    check_shapes(logits=logits, dlogits=dlogits)
    check_labels(yb, logits.shape[1], logits.shape[0])
    return _softmax_xent(logits, yb, dlogits)


def _softmax_xent(logits, yb, dlogits) -> tuple[float, int]:
    m = logits.shape[0]
    rows = np.arange(m)
    with np.errstate(over="ignore"):  # a logit span beyond float32 gives -inf: exp -> 0, as it should
        shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    # The label's logit minus the max, in float64: logits can span more than float32's range.
    z_y = logits[rows, yb].astype(np.float64) - logits.max(axis=1).astype(np.float64)
    losses = np.log(total[:, 0], dtype=np.float64) - z_y
    np.divide(exp, total, out=dlogits)
    dlogits[rows, yb] -= 1.0
    dlogits /= m
    correct = int(np.count_nonzero(logits.argmax(axis=1) == yb))
    return float(losses.sum(dtype=np.float64)), correct


# --- backward and update ------------------------------------------------------


def backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1) -> None:
    """Gradients of the mean loss, given dlogits from :func:`softmax_xent`.

    dW2 = A1^T dlogits,  db2 = sum_rows dlogits,
    dZ1 = (dlogits W2^T) * [A1 > 0]   (ReLU passes gradient where it was active),
    dW1 = Xb^T dZ1,      db1 = sum_rows dZ1.   ``dA1`` holds dZ1 afterwards.
    """
    check_shapes(Xb=Xb, A1=A1, W2=W2, logits=dlogits, W1=dW1, b1=db1, dW2=dW2, b2=db2, dA1=dA1)
    _backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1)


def _backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1) -> None:
    np.matmul(A1.T, dlogits, out=dW2)
    np.sum(dlogits, axis=0, out=db2)
    np.matmul(dlogits, W2.T, out=dA1)
    dA1 *= A1 > 0
    np.matmul(Xb.T, dA1, out=dW1)
    np.sum(dA1, axis=0, out=db1)


def update(W1, b1, W2, b2, dW1, db1, dW2, db2, lr: float) -> None:
    """Plain SGD: p -= lr * dp for every parameter."""
    lr = np.float32(lr)
    for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
        p -= lr * g


def apply_update(p, g, m, v, lr: float, kind: int, momentum: float, beta2: float, eps: float,
                 weight_decay: float, bc1: float, bc2: float) -> None:
    """One optimizer step on one parameter array, in place; rules in :mod:`._optim`.

    ``m`` and ``v`` are the rule's buffers (empty when unused); ``bc1``, ``bc2``
    are Adam's bias corrections for this step (see ``_optim.bias_corrections``).
    """
    f32 = np.float32
    lr, mu, b2 = f32(lr), f32(momentum), f32(beta2)
    if weight_decay:
        g = g + f32(weight_decay) * p
    if kind == _optim.SGD:
        p -= lr * g
    elif kind in (_optim.MOMENTUM, _optim.NESTEROV):
        m *= mu
        m += g
        p -= lr * (g + mu * m if kind == _optim.NESTEROV else m)
    elif kind == _optim.ADAM:
        m *= mu
        m += (f32(1) - mu) * g
        v *= b2
        v += (f32(1) - b2) * g * g
        p -= lr * (m / f32(bc1)) / (np.sqrt(v / f32(bc2)) + f32(eps))
    else:
        raise ValueError(f"unknown optimizer code {kind}")


def _optimizer_step(opt, params, grads, lr) -> None:
    """Advance ``opt`` one step over all four parameters (weight decay on weights only)."""
    opt.t += 1
    bc1, bc2 = _optim.bias_corrections(opt, opt.t)
    for i, (p, g) in enumerate(zip(params, grads)):
        decay = opt.weight_decay if p.ndim == 2 else 0.0
        apply_update(p, g, opt.m[i], opt.v[i], lr, opt.kind, opt.momentum, opt.beta2, opt.eps,
                     decay, bc1, bc2)


# --- whole steps ----------------------------------------------------------------


@dataclass
class Workspace:
    """Preallocated buffers for one batch size and network shape."""

    Xb: np.ndarray
    yb: np.ndarray
    A1: np.ndarray
    logits: np.ndarray
    dlogits: np.ndarray
    dA1: np.ndarray
    dW1: np.ndarray
    db1: np.ndarray
    dW2: np.ndarray
    db2: np.ndarray


def make_workspace(batch_size: int, n_features: int, hidden: int, n_classes: int) -> Workspace:
    """Allocate the buffers :func:`train_steps` needs."""
    f32 = np.float32
    return Workspace(
        Xb=np.empty((batch_size, n_features), f32),
        yb=np.empty(batch_size, np.int64),
        A1=np.empty((batch_size, hidden), f32),
        logits=np.empty((batch_size, n_classes), f32),
        dlogits=np.empty((batch_size, n_classes), f32),
        dA1=np.empty((batch_size, hidden), f32),
        dW1=np.empty((n_features, hidden), f32),
        db1=np.empty(hidden, f32),
        dW2=np.empty((hidden, n_classes), f32),
        db2=np.empty(n_classes, f32),
    )


def train_steps(X, y, perm, start: int, stop: int, batch_size: int, lr,
                W1, b1, W2, b2, ws: Workspace, opt=None) -> tuple[float, int]:
    """Mini-batch steps over the samples ``perm[start:stop]`` in batches of ``batch_size``.

    ``lr`` is one learning rate, or an array with one per batch (a schedule).
    ``opt`` is an :class:`~._optim.OptimizerState`; None means plain SGD.
    The last batch may be shorter.  Returns (sum of per-sample losses, number
    of correct predictions), both measured on each batch before its update.
    """
    check_shapes(Xb=X, W1=W1, b1=b1, W2=W2, b2=b2)
    check_labels(y, W2.shape[1], len(y))
    # The per-batch steps below skip the public kernels' checks: the batches are
    # made here from arrays just checked.
    loss_sum, correct = 0.0, 0
    # A diverging run overflows; the caller sees it as a non-finite loss and stops with a
    # clear message, so NumPy's RuntimeWarnings would only be noise before it.
    with np.errstate(over="ignore", invalid="ignore"):
        for k, lo in enumerate(range(start, stop, batch_size)):
            hi = min(lo + batch_size, stop)
            m = hi - lo
            step_lr = lr[k] if np.ndim(lr) else lr
            Xb, yb, A1, logits, dlogits, dA1 = (
                ws.Xb[:m], ws.yb[:m], ws.A1[:m], ws.logits[:m], ws.dlogits[:m], ws.dA1[:m])
            gather(X, y, perm[lo:hi], Xb, yb)
            _forward(Xb, W1, b1, W2, b2, A1, logits)
            batch_loss, batch_correct = _softmax_xent(logits, yb, dlogits)
            _backward(Xb, A1, W2, dlogits, ws.dW1, ws.db1, ws.dW2, ws.db2, dA1)
            if opt is None:
                update(W1, b1, W2, b2, ws.dW1, ws.db1, ws.dW2, ws.db2, step_lr)
            else:
                _optimizer_step(opt, (W1, b1, W2, b2), (ws.dW1, ws.db1, ws.dW2, ws.db2), step_lr)
            loss_sum += batch_loss
            correct += batch_correct
    return loss_sum, correct


def predict_logits(X, W1, b1, W2, b2, out) -> None:
    """Logits for every row of ``X`` into ``out (n, c)``; no activations are kept."""
    check_shapes(Xb=X, W1=W1, b1=b1, W2=W2, b2=b2, logits=out)
    chunk = 4096
    for lo in range(0, X.shape[0], chunk):
        hi = min(lo + chunk, X.shape[0])
        A1 = X[lo:hi] @ W1
        A1 += b1
        np.maximum(A1, 0, out=A1)
        np.matmul(A1, W2, out=out[lo:hi])
        out[lo:hi] += b2


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
