"""The original notebook's functions, running on fastnn's kernels.

fastnn started from a NumPy teaching notebook whose users know two calls::

    W1, b1, W2, b2 = mini_batch_gradient_descent(X_train, Y_train, alpha, iterations, batch_size)
    test_prediction(index, W1, b1, W2, b2)

This module keeps those signatures; it is the one home of ``test_prediction``
(also ``fastnn.test_prediction``).  Training is :func:`fastnn.training.train`
(``alpha`` is the learning rate, ``iterations`` the number of epochs) and the
figure is :func:`fastnn.plots.show_sample`'s; only the layouts are converted.

**The notebook's layout** (column vectors, one sample per column)::

    X  (784, m)                  fastnn: X (m, 784)
    W1 (hidden, 784), b1 (hidden, 1)     fastnn: W1 (784, hidden), b1 (hidden,)
    W2 (10, hidden),  b2 (10, 1)         fastnn: W2 (hidden, 10),  b2 (10,)

so the notebook's arrays are the transposes of a :class:`~fastnn.network.Network`'s
(:func:`to_network` and :func:`from_network` convert, exactly).

**Which way round X is**: ``X`` must be 2-D with 784 rows or 784 columns.
784 rows is the notebook's ``(784, m)`` (so a square ``(784, 784)`` array is
read that way too); otherwise 784 columns is fastnn's ``(m, 784)``.  Pixels
follow :mod:`fastnn.pixels`' rule: integers are 0-255, floats up to 1 (the
notebook's ``X / 255``) are used as they are, larger floats are divided by 255.
"""

from __future__ import annotations

import sys

import numpy as np

from .config import TrainConfig
from .errors import FastnnError
from .network import Network
from .pixels import N_PIXELS, prepare_images
from .training import train

__all__ = ["from_network", "make_predictions", "mini_batch_gradient_descent", "test_prediction", "to_network"]

N_CLASSES = 10
# alpha, iterations and hidden default to the notebook's values; the rest are fastnn's defaults.
_D = TrainConfig()


def _samples_as_rows(X) -> np.ndarray:
    """``X`` in either layout (see the module) -> normalised float32 ``(m, 784)``."""
    X = np.asarray(X)
    if X.ndim != 2 or N_PIXELS not in X.shape:
        raise FastnnError(f"X must be (784, m) as in the notebook, or (m, 784); got shape {X.shape}")
    rows = X.T if X.shape[0] == N_PIXELS else X
    return prepare_images(rows)


def _labels(Y, m: int) -> np.ndarray:
    Y = np.asarray(Y)
    if Y.ndim == 2 and 1 in Y.shape:  # a (1, m) row or (m, 1) column of labels
        Y = Y.ravel()
    if Y.shape != (m,):
        raise FastnnError(f"Y must hold one label per sample ({m}), got shape {Y.shape}")
    return Y


def to_network(W1, b1, W2, b2) -> Network:
    """The notebook's ``W1 (h, d), b1 (h, 1), W2 (c, h), b2 (c, 1)`` as a fastnn :class:`Network`."""
    W1, b1, W2, b2 = (np.asarray(a) for a in (W1, b1, W2, b2))
    if W1.ndim != 2 or W2.ndim != 2:
        raise FastnnError(f"W1 and W2 must be 2-D, got shapes {W1.shape} and {W2.shape}")
    h, d = W1.shape
    c = W2.shape[0]
    expected = {"W2": (W2.shape, (c, h)), "b1": (b1.shape, (h, 1)), "b2": (b2.shape, (c, 1))}
    for name, (got, want) in expected.items():
        if got != want and got != want[:1]:
            raise FastnnError(f"{name} must have shape {want} for W1 of shape {W1.shape}, got {got}")
    return Network([W1.T, W2.T], [b1.reshape(h), b2.reshape(c)], dtype=np.float32)


def from_network(net: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A :class:`Network`'s parameters in the notebook's layout: ``W1, b1, W2, b2`` (float32 copies).

    Only the notebook's own kind of network has that layout: one hidden layer, ReLU,
    a softmax output.  Any other (deeper, another activation or head) is a
    :class:`FastnnError`, since the notebook's functions would compute something else with it.
    """
    if len(net.hidden) != 1 or net.activation != "relu" or net.head != "softmax":
        raise FastnnError(
            f"the notebook's layout is one ReLU hidden layer and a softmax output; this network is {net.describe()}"
        )
    (W1, W2), (b1, b2) = net.coefs, net.intercepts
    return (
        np.array(W1.T, np.float32, order="C"),
        np.array(b1.reshape(-1, 1), np.float32),
        np.array(W2.T, np.float32, order="C"),
        np.array(b2.reshape(-1, 1), np.float32),
    )


def mini_batch_gradient_descent(
    X,
    Y,
    alpha: float = 0.1,
    iterations: int = 10,
    batch_size: int = _D.batch_size,
    hidden: int = 10,
    backend: str = _D.backend,
    seed: int = _D.seed,
    verbose: bool = False,
):
    """Train the notebook's network with fastnn; returns ``W1, b1, W2, b2`` in the notebook's layout.

    ``X`` is ``(784, m)`` (or ``(m, 784)``; see the module for the rule), ``Y``
    the ``m`` labels 0-9, ``alpha`` the learning rate, ``iterations`` the
    number of epochs (passes over the data, each in a fresh shuffled order of
    ``batch_size`` mini-batches).  Returns float32 ``W1 (hidden, 784)``,
    ``b1 (hidden, 1)``, ``W2 (10, hidden)``, ``b2 (10, 1)``.  ``verbose``
    prints each epoch's training accuracy, as the notebook did.  The result is
    exactly ``from_network(fastnn.train(X.T, Y, TrainConfig(...))[0])``.
    """
    X = _samples_as_rows(X)
    Y = _labels(Y, X.shape[0])
    config = TrainConfig(
        hidden=(hidden,), epochs=iterations, batch_size=batch_size, lr=alpha, seed=seed, backend=backend
    )

    def progress(row):
        print(f"Iteration: {row['epoch']}\nAccuracy: {row['train_accuracy']:.4f}")

    net, _ = train(X, Y, config, n_classes=N_CLASSES, progress=progress if verbose else None)
    return from_network(net)


def make_predictions(X, W1, b1, W2, b2) -> np.ndarray:
    """The notebook's ``make_predictions``: the predicted label of every sample of ``X``."""
    return to_network(W1, b1, W2, b2).predict(_samples_as_rows(X))


def test_prediction(index: int, W1, b1, W2, b2, X=None, Y=None, path=None, show: bool = False) -> dict:
    """The notebook's ``test_prediction``: predict sample ``index`` and print it.

    Prints ``Prediction: p, Label: l`` (``Prediction: p`` without labels) and
    returns what :func:`fastnn.plots.show_sample` returns (``path``/``show``
    save or show the image, as there).  ``X`` in either layout; the notebook read the
    globals ``X_train`` and ``Y_train`` instead, so when ``X`` is None they
    are taken from the caller's globals (the notebook's namespace).
    """
    if X is None:
        caller = sys._getframe(1).f_globals
        if "X_train" not in caller:
            raise FastnnError(
                "pass X (and Y): there is no X_train in the calling namespace to "
                "read, as the notebook's test_prediction did"
            )
        X, Y = caller["X_train"], caller.get("Y_train") if Y is None else Y
    rows = np.asarray(X)
    if rows.ndim != 2 or N_PIXELS not in rows.shape:
        raise FastnnError(f"X must be (784, m) as in the notebook, or (m, 784); got shape {rows.shape}")
    rows = rows.T if rows.shape[0] == N_PIXELS else rows
    if Y is not None:
        Y = _labels(Y, rows.shape[0])
    from .plots import show_sample  # here: only a call that draws pays for matplotlib

    result = show_sample(to_network(W1, b1, W2, b2), rows, index, Y, path=path, show=show)
    label = "" if result["label"] is None else f", Label: {result['label']}"
    print(f"Prediction: {result['prediction']}{label}")
    return result


# The names come from the notebook; stop pytest collecting them as tests when imported.
test_prediction.__test__ = False  # type: ignore[attr-defined]  # functions take attributes
