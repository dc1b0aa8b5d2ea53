"""Hidden activations and output heads: the lookup tables every part of fastnn reads.

A network applies one **hidden activation** after every hidden layer and one
**output head** after the last layer.  Both are names (as scikit-learn's
``activation`` and ``out_activation_``); each backend implements the rule a
name stands for, and this module holds the NumPy definitions, written to be
read, that the reference backend runs and the compiled backend is tested
against.  A name's index in :data:`ACTIVATIONS` or :data:`HEADS` is its code
in compiled kernels.

Hidden activations, with the derivative written through the activation's
*output* ``a`` (what the backward pass has kept):

==========  =====================  ==================
name        a = f(z)               f'(z)
==========  =====================  ==================
identity    z                      1
logistic    1 / (1 + exp(-z))      a (1 - a)
tanh        tanh(z)                1 - a**2
relu        max(z, 0)              1 if a > 0 else 0
==========  =====================  ==================

Heads pair an output function with its canonical loss, so that the gradient
of the loss with respect to the last layer's raw output ``z`` is always
``output(z) - target``:

=========  =================  ===========================================================  =============
head       output(z)          per-sample loss                                              targets
=========  =================  ===========================================================  =============
softmax    softmax(z)         logsumexp(z) - z[y]  (cross-entropy)                         class indices
logistic   1 / (1 + exp(-z))  sum_j log(1 + exp(z_j)) - t_j z_j  (BCE)                     0/1 per output
identity   z                  sum_j (z_j - t_j)**2 / 2                                     real values
exp        exp(z)             sum_j exp(z_j) - t_j z_j + t_j log t_j - t_j  (half Poisson  counts >= 0
                              deviance)
=========  =================  ===========================================================  =============

With sample weights ``w`` a batch's gradient is ``w_i (output - target) /
sum(w)`` and its loss ``sum_i w_i loss_i / sum(w)`` (the mean when every
weight is 1), as scikit-learn defines them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Hidden activations; the index is the code compiled kernels receive.
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
#: Output heads (scikit-learn's ``out_activation_`` names); the index is the code.
HEADS = ("softmax", "logistic", "identity", "exp")
#: The loss each head is trained with (scikit-learn's names).
LOSSES = {"softmax": "log_loss", "logistic": "binary_log_loss", "identity": "squared_error", "exp": "poisson"}


class Targets(NamedTuple):
    """What a head is trained against, row by row.

    ``labels (n,)`` int64 class indices (the softmax head; empty otherwise),
    ``values (n, c)`` float targets (the other heads; ``(0, c)`` for softmax)
    and ``weights (n,)`` sample weights (ones when unweighted).
    """

    labels: np.ndarray
    values: np.ndarray
    weights: np.ndarray

    def take(self, idx) -> Targets:
        """The rows ``idx`` (the empty parts stay empty)."""
        labels = self.labels[idx] if len(self.labels) else self.labels
        values = self.values[idx] if len(self.values) else self.values
        return Targets(labels, values, self.weights[idx])


def make_targets(head: str, y, n_outputs: int, weights=None, dtype=np.float32) -> Targets:
    """:class:`Targets` for ``head``: ``y`` class indices for softmax, else ``(n, n_outputs)`` values."""
    if head == "softmax":
        labels = np.ascontiguousarray(y, np.int64)
        values = np.zeros((0, n_outputs), dtype)
        n = len(labels)
    else:
        values = np.ascontiguousarray(np.asarray(y, dtype).reshape(len(y), n_outputs))
        labels = np.zeros(0, np.int64)
        n = len(values)
    weights = np.ones(n, dtype) if weights is None else np.ascontiguousarray(weights, dtype)
    return Targets(labels, values, weights)


# --- hidden activations: in place on a layer's output -----------------------------------


def _identity(Z):
    pass


def _logistic(Z):
    with np.errstate(over="ignore"):  # exp(-z) overflows to inf for z < -88: 1 / inf = 0, as it should
        np.negative(Z, out=Z)
        np.exp(Z, out=Z)
        Z += 1
        np.reciprocal(Z, out=Z)


def _tanh(Z):
    np.tanh(Z, out=Z)


def _relu(Z):
    np.maximum(Z, 0, out=Z)


def _identity_grad(A, D):
    pass


def _logistic_grad(A, D):
    D *= A
    D *= 1 - A


def _tanh_grad(A, D):
    D *= 1 - A * A


def _relu_grad(A, D):
    D[A <= 0] = 0


#: name -> f, applied in place to a layer's pre-activation ``Z``.
ACTIVATE = {"identity": _identity, "logistic": _logistic, "tanh": _tanh, "relu": _relu}
#: name -> g, turning ``D = dL/dA`` into ``dL/dZ`` in place, given the activation's output ``A``.
DERIVATIVE = {"identity": _identity_grad, "logistic": _logistic_grad, "tanh": _tanh_grad, "relu": _relu_grad}


# --- output heads -----------------------------------------------------------------------


def _softmax(Z):
    Z -= Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)


def _exp(Z):
    np.exp(Z, out=Z)


#: head -> its output function, in place on the raw outputs (probabilities or predictions).
OUTPUT = {"softmax": _softmax, "logistic": _logistic, "identity": _identity, "exp": _exp}


def head_losses(head: str, Z: np.ndarray, targets: Targets) -> np.ndarray:
    """Each row's loss (float64) under ``head``, from the raw outputs ``Z (m, c)`` (see the module)."""
    z = Z.astype(np.float64)
    if head == "softmax":
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
        return lse - z[np.arange(len(z)), targets.labels]
    t = targets.values.astype(np.float64)
    if head == "logistic":
        softplus = np.logaddexp(0.0, z)
        return (softplus - t * z).sum(axis=1)
    if head == "identity":
        return 0.5 * ((z - t) ** 2).sum(axis=1)
    if head == "exp":
        t_log_t = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)  # 0 log 0 = 0
        return (np.exp(z) - t * z + t_log_t - t).sum(axis=1)
    raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")


def head_correct(head: str, Z: np.ndarray, targets: Targets) -> int:
    """Rows predicted right: the top class (softmax), every output on the right side of 0.5
    (logistic); 0 for the regression heads."""
    if head == "softmax":
        return int(np.count_nonzero(Z.argmax(axis=1) == targets.labels))
    if head == "logistic":
        return int(np.count_nonzero(((Z > 0) == (targets.values > 0.5)).all(axis=1)))
    return 0
