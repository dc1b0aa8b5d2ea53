"""The network: layers of weights and biases, a hidden activation, an output head, its classes.

A :class:`Network` of layer sizes ``(d, h1, ..., hk, c)`` computes

    a0 = x;   a_i = f(a_{i-1} W_i + b_i)  for each hidden layer;   output = head(a_k W_{k+1} + b_{k+1})

with ``f`` the hidden activation and ``head`` the output head
(:mod:`fastnn.activations`).  ``coefs[i]`` is ``(fan_in, fan_out)`` and
``intercepts[i]`` ``(fan_out,)``, as scikit-learn's ``coefs_`` and
``intercepts_``; all of them are views of one flat buffer
(:class:`~fastnn.layers.Params`), which training updates in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .activations import ACTIVATIONS, HEADS, OUTPUT
from .backends import DEFAULT_BACKEND, get_backend
from .errors import FastnnError
from .layers import Layout, Params

#: Rows per call of the backend's prediction (bounds the memory of predicting a large array).
PREDICT_CHUNK = 1 << 16


class Network:
    """A feed-forward network (see the module).

    ``classes`` maps outputs to labels: one per output for the softmax head,
    two for a single logistic output (binary), one per output for several
    logistic outputs (multilabel), none for the regression heads
    (``identity``, ``exp``); ``class_names`` are for display.
    """

    def __init__(
        self,
        coefs: Sequence,
        intercepts: Sequence,
        activation: str = "relu",
        head: str = "softmax",
        classes=None,
        class_names=None,
        *,
        dtype=None,
    ):
        dtype = np.dtype(dtype) if dtype is not None else _dtype_of(coefs)
        try:
            params = Params.from_arrays(coefs, intercepts, dtype)
        except ValueError as exc:
            raise FastnnError(f"the layers do not fit together: {exc}") from None
        self._init(params, activation, head, classes, class_names)

    @classmethod
    def from_params(
        cls, params: Params, activation: str = "relu", head: str = "softmax", classes=None, class_names=None
    ) -> Network:
        """A network over ``params`` itself (not a copy)."""
        net = cls.__new__(cls)
        net._init(params, activation, head, classes, class_names)
        return net

    def _init(self, params, activation, head, classes, class_names) -> None:
        if activation not in ACTIVATIONS:
            raise FastnnError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if head not in HEADS:
            raise FastnnError(f"unknown output head {head!r}; choose one of {', '.join(HEADS)}")
        self.params = params
        self.activation = activation
        self.head = head
        c = self.n_outputs
        expected = {"softmax": c, "logistic": 2 if c == 1 else c}.get(head, 0)
        if classes is None:
            classes = np.arange(expected)
        self.classes = np.asarray(classes)
        if class_names is None:
            class_names = tuple(str(k) for k in self.classes)
        self.class_names = tuple(class_names)
        if len(self.classes) != expected or len(self.class_names) != expected:
            raise FastnnError(
                f"a network with {c} {head} output{'s' * (c != 1)} needs {expected} classes "
                f"and class names, got {len(self.classes)} and {len(self.class_names)}"
            )

    # --- shape --------------------------------------------------------------------------

    @property
    def coefs(self) -> tuple:
        """Each layer's weights ``(fan_in, fan_out)`` (views: write into them, do not rebind)."""
        return self.params.coefs

    @property
    def intercepts(self) -> tuple:
        """Each layer's biases ``(fan_out,)``."""
        return self.params.intercepts

    @property
    def layout(self) -> Layout:
        return self.params.layout

    @property
    def sizes(self) -> tuple:
        """Units per layer, inputs first: ``(d, h1, ..., c)``."""
        return self.layout.sizes

    @property
    def hidden(self) -> tuple:
        """Hidden layer sizes (empty for a network without hidden layers)."""
        return self.sizes[1:-1]

    @property
    def n_features(self) -> int:
        """Inputs per sample (784 for MNIST)."""
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        """Units of the output layer."""
        return self.sizes[-1]

    @property
    def n_classes(self) -> int:
        """Classes the network tells apart (0 for regression)."""
        return len(self.classes)

    @property
    def dtype(self) -> np.dtype:
        return self.params.dtype

    def describe(self) -> str:
        """``784-256-10 relu/softmax``: the shape at a glance."""
        return f"{'-'.join(map(str, self.sizes))} {self.activation}/{self.head}"

    def copy(self) -> Network:
        """An independent copy (parameters are updated in place by training)."""
        return Network.from_params(
            self.params.copy(), self.activation, self.head, self.classes.copy(), self.class_names
        )

    def astype(self, dtype) -> Network:
        """A copy computing in ``dtype`` (float32 or float64)."""
        return Network.from_params(
            self.params.astype(dtype), self.activation, self.head, self.classes.copy(), self.class_names
        )

    # --- prediction -----------------------------------------------------------------------

    def raw(self, X, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """The last layer's outputs before the head ``(n, c)`` for inputs ``X (n, d)``."""
        X = as_features(X, self.n_features, self.dtype)
        out = np.empty((X.shape[0], self.n_outputs), self.dtype)
        kernels = get_backend(backend)
        for lo in range(0, len(X), PREDICT_CHUNK):
            kernels.predict(self, X[lo : lo + PREDICT_CHUNK], out[lo : lo + PREDICT_CHUNK])
        return out

    def logits(self, X, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """Raw scores ``(n, c)``: :meth:`raw` (the name for classifiers)."""
        return self.raw(X, backend)

    def predict_proba(self, X, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """The head's output ``(n, c)``: class probabilities (softmax rows sum to 1; logistic
        gives each output's probability), or the predicted values of a regression head."""
        z = self.raw(X, backend)
        with np.errstate(over="ignore"):
            OUTPUT[self.head](z)
        return z

    def predict(self, X, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """Predicted output indices ``(n,)`` (softmax; map through ``classes`` for labels),
        0/1 per output (logistic: ``(n,)`` for one output, ``(n, c)`` for several), or values."""
        z = self.raw(X, backend)
        if self.head == "softmax":
            return z.argmax(axis=1)
        if self.head == "logistic":
            hits = (z > 0).astype(np.int64)
            return hits[:, 0] if self.n_outputs == 1 else hits
        with np.errstate(over="ignore"):
            OUTPUT[self.head](z)
        return z


def _dtype_of(coefs) -> np.dtype:
    """float64 if the given weights are float64, else float32 (fastnn's fast path)."""
    first = np.asarray(coefs[0]) if len(coefs) else np.zeros(0, np.float32)
    return np.dtype(np.float64) if first.dtype == np.float64 else np.dtype(np.float32)


def as_features(X, n_features: int, dtype=np.float32) -> np.ndarray:
    """``X`` as a C-contiguous ``(n, n_features)`` array of ``dtype``, or a clear error."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise FastnnError(f"expected inputs of shape (n, {n_features}), got {X.shape}")
    return np.ascontiguousarray(X, dtype=dtype)


def init_network(
    n_features: int,
    hidden,
    n_outputs: int,
    seed: int = 0,
    *,
    activation: str = "relu",
    head: str = "softmax",
    dtype=np.float32,
    classes=None,
    class_names=None,
) -> Network:
    """A freshly initialised network of ``n_features``, ``hidden`` (an int or a sequence) and
    ``n_outputs`` units; biases zero.

    Weights are drawn layer by layer from ``numpy.random.default_rng(seed)``: with
    ``relu``, He's normal (std ``sqrt(2 / fan_in)``); otherwise Glorot's uniform in
    ``+-sqrt(6 / (fan_in + fan_out))`` (``2`` instead of ``6`` for ``logistic``, as
    scikit-learn does).
    """
    hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(hidden)
    params = Params(Layout((n_features, *hidden, n_outputs), dtype))
    rng = np.random.default_rng(seed)
    for W in params.coefs:
        fan_in, fan_out = W.shape
        if activation == "relu":
            W[...] = rng.standard_normal(W.shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_in))
        else:
            bound = math.sqrt((2.0 if activation == "logistic" else 6.0) / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, W.shape)
    return Network.from_params(params, activation, head, classes, class_names)
