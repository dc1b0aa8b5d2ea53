"""The network's parameters, their initialisation, and the training loop.

(The options of a run, :class:`~fastnn.config.TrainConfig`, are defined in
:mod:`fastnn.config` and re-exported here.)

The loop is backend-agnostic: it asks :func:`fastnn.backends.get_backend` for
a module once and then only calls that module's kernels, so the NumPy
reference and the Numba backend run exactly the same loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from . import _aligned
from .augment import check_images, spec_from_config
from .backends import DEFAULT_BACKEND, get_backend
from .backends._optim import make_optimizer
from .config import TrainConfig
from .errors import FastnnError
from .schedules import learning_rates


@dataclass
class Network:
    """A trained (or freshly initialised) d-h-c network: ReLU hidden layer, softmax output.

    ``W1 (d, h)``, ``b1 (h,)``, ``W2 (h, c)``, ``b2 (c,)`` are float32 and
    C-contiguous.  ``classes`` maps output index -> label (``0..c-1`` unless the
    model was trained on other labels); ``class_names`` are for display.
    """

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    classes: np.ndarray = None
    class_names: tuple = None

    def __post_init__(self):
        # The kernels update parameters in place and the compiled ones need float32 C order.
        # (on cache-line boundaries too: see fastnn._aligned)
        for name in ("W1", "b1", "W2", "b2"):
            setattr(self, name, _aligned.aligned(getattr(self, name)))
        self.classes = np.arange(self.n_classes) if self.classes is None else np.asarray(self.classes)
        if self.class_names is None:
            self.class_names = tuple(str(c) for c in self.classes)
        self.class_names = tuple(self.class_names)
        if len(self.classes) != self.n_classes or len(self.class_names) != self.n_classes:
            raise FastnnError(f"a network with {self.n_classes} outputs needs {self.n_classes} classes "
                              f"and class names, got {len(self.classes)} and {len(self.class_names)}")

    @property
    def n_features(self) -> int:
        """Inputs per sample (784 for MNIST)."""
        return self.W1.shape[0]

    @property
    def hidden(self) -> int:
        """Hidden units."""
        return self.W1.shape[1]

    @property
    def n_classes(self) -> int:
        """Outputs (classes)."""
        return self.W2.shape[1]

    def copy(self) -> "Network":
        """An independent copy (parameters are updated in place by training)."""
        return Network(self.W1.copy(), self.b1.copy(), self.W2.copy(), self.b2.copy(),
                       self.classes.copy(), self.class_names)

    def logits(self, X: np.ndarray, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """Raw scores ``(n, c)`` for normalised inputs ``X (n, d)`` in [0, 1]."""
        X = _as_features(X, self.n_features)
        out = np.empty((X.shape[0], self.n_classes), np.float32)
        get_backend(backend).predict_logits(X, self.W1, self.b1, self.W2, self.b2, out)
        return out

    def predict_proba(self, X: np.ndarray, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """Class probabilities ``(n, c)``, rows summing to 1."""
        z = self.logits(X, backend)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, X: np.ndarray, backend: str = DEFAULT_BACKEND) -> np.ndarray:
        """Predicted output indices ``(n,)`` (map through ``classes`` for labels)."""
        return self.logits(X, backend).argmax(axis=1)


def _as_features(X, n_features: int) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise FastnnError(f"expected inputs of shape (n, {n_features}), got {X.shape}")
    return np.ascontiguousarray(X, dtype=np.float32)


def init_network(n_features: int, hidden: int, n_classes: int, seed: int) -> Network:
    """He-initialised weights (std sqrt(2 / fan_in), right for ReLU), zero biases."""
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((n_features, hidden), dtype=np.float32) * np.float32(math.sqrt(2.0 / n_features))
    W2 = rng.standard_normal((hidden, n_classes), dtype=np.float32) * np.float32(math.sqrt(2.0 / hidden))
    return Network(W1, np.zeros(hidden, np.float32), W2, np.zeros(n_classes, np.float32))


@dataclass
class History:
    """What happened during training: one row per epoch, optionally per N steps."""

    epochs: list = field(default_factory=list)  # dicts: epoch, train_loss, train_accuracy, dev_accuracy, seconds
    steps: list = field(default_factory=list)   # dicts: step, epoch, train_loss
    best_epoch: int | None = None  # with early stopping: the epoch whose weights were kept
    stopped_early: bool = False

    def to_dict(self) -> dict:
        """Plain JSON-serialisable form (as written to ``metrics.json``)."""
        return asdict(self)


def check_training_data(X, y, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate and convert training arrays: float32 C-contiguous X, int64 labels in [0, c)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise FastnnError(f"training inputs must be a 2-D array (n, features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise FastnnError("training data is empty")
    if X.shape[1] == 0:
        raise FastnnError("training inputs have no features (shape (n, 0))")
    if y.shape != (X.shape[0],):
        raise FastnnError(f"labels must have shape ({X.shape[0]},) to match the inputs, got {y.shape}")
    if not np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_:
        raise FastnnError(f"training inputs must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    # In chunks of rows: a whole-array mask would be an n x d temporary (45 MB for MNIST).
    for lo in range(0, X.shape[0], 4096):
        if not np.isfinite(X[lo:lo + 4096]).all():
            raise FastnnError("training inputs contain NaN or infinite values")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)
        else:
            raise FastnnError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.int64)
    c = int(y.max()) + 1 if n_classes is None else n_classes
    if y.min() < 0 or y.max() >= c:
        raise FastnnError(f"labels must lie in 0..{c - 1}, found {int(y.min())}..{int(y.max())}")
    return X, y, c


def train(X, y, config: TrainConfig, *, X_dev=None, y_dev=None, n_classes: int | None = None,
          network: Network | None = None, progress: Callable | None = None,
          class_names=None) -> tuple[Network, History]:
    """Train a network with mini-batch gradient descent; returns it and its :class:`History`.

    ``X (n, d)`` float (normalised to [0, 1] for images) and ``y (n,)`` integer
    labels in ``[0, c)``, with ``c = n_classes``, else the given ``network``'s
    outputs, else ``max(y) + 1``.  Each epoch
    visits every sample once in a fresh order drawn from ``(seed, epoch)``; the
    last batch of an epoch may be short.  The optimizer, schedule and early
    stopping come from ``config``.  ``X_dev, y_dev`` (optional) give the dev
    accuracy recorded after every epoch, which early stopping watches.
    ``network`` continues training an existing network in place (its shape,
    not ``config.hidden``, decides the hidden size).  Same seed and backend give
    identical results run to run.  With ``config.augment`` other than ``"none"``
    each epoch trains on a fresh distortion of every training image (drawn from
    ``(seed, epoch, row)``, see :mod:`fastnn.augment`; ``X`` itself is not
    changed, and ``X_dev`` never distorted); ``X`` must then hold 28x28 images
    (784 features).  ``progress``, if given, is called as
    ``progress(epoch_row)`` after every epoch.  ``class_names`` (one per
    class) name the network's outputs for display (default ``"0"``, ``"1"``, ...).  Raises :class:`FastnnError` on
    invalid options or data, or if the loss becomes NaN or infinite.
    """
    config.validate()
    if n_classes is None and network is not None:
        n_classes = network.n_classes  # fine-tuning: labels index the network's outputs
    X, y, c = check_training_data(X, y, n_classes)
    n, d = X.shape
    backend = get_backend(config.backend)
    if network is None:
        network = init_network(d, config.hidden, c, config.seed)
    elif (network.n_features, network.n_classes) != (d, c):
        raise FastnnError(f"the network expects {network.n_features} features and {network.n_classes} "
                          f"classes, but the data has {d} features and {c} classes")
    net = network
    if class_names is not None:
        if len(class_names) != c:
            raise FastnnError(f"class_names has {len(class_names)} names for {c} classes")
        net.class_names = tuple(str(name) for name in class_names)
    if X_dev is not None and len(X_dev):
        X_dev, y_dev, _ = check_training_data(X_dev, y_dev, c)
    else:
        X_dev = None

    ws = backend.make_workspace(min(config.batch_size, n), d, net.hidden, c)
    X_source = X
    if config.augment != "none":
        check_images(d)
        augment_spec = spec_from_config(config)
        X = _aligned.empty((n, d))  # each epoch's distorted copy of the training set
    params = (net.W1, net.b1, net.W2, net.b2)
    opt = make_optimizer(config.optimizer, params, momentum=config.momentum, beta2=config.beta2,
                         weight_decay=config.weight_decay)
    if opt.fused_sgd:
        opt = None  # plain SGD: the backends' own update, fused into the gradient where they can
    perm = np.empty(n, np.int64)
    history = History()
    steps_per_epoch = math.ceil(n / config.batch_size)
    lrs = learning_rates(config.schedule, config.lr, steps_per_epoch * config.epochs).astype(np.float32)
    constant_lr = config.schedule == "constant"
    # Samples per recorded chunk: a whole epoch, or log_every steps.
    chunk = n if not config.log_every else min(n, config.log_every * config.batch_size)
    early_stopping = config.patience > 0
    if early_stopping and X_dev is None:
        raise FastnnError("early stopping (patience > 0) needs a dev split to watch; give a dev set")
    best = (-1.0, None)  # (dev accuracy, copy of the parameters)
    step = 0
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        backend.permutation(n, config.seed, epoch, perm)
        if X is not X_source:
            backend.augment(X_source, config.seed, epoch, augment_spec, X, ws)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            n_steps = math.ceil((stop - start) / config.batch_size)
            lr = config.lr if constant_lr else lrs[step:step + n_steps]
            chunk_loss, chunk_correct = backend.train_steps(
                X, y, perm, start, stop, config.batch_size, lr, *params, ws, opt)
            if not math.isfinite(chunk_loss):
                raise FastnnError(
                    f"training diverged: the loss became {chunk_loss} in epoch {epoch + 1}; "
                    f"try a smaller learning rate than {config.lr}")
            loss_sum += chunk_loss
            correct += chunk_correct
            step += n_steps
            if config.log_every:
                history.steps.append({"step": step, "epoch": epoch + 1,
                                      "train_loss": chunk_loss / (stop - start)})
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
               "seconds": seconds}
        if not constant_lr:
            row["lr"] = float(lrs[step - 1])
        if X_dev is not None:
            row["dev_accuracy"] = float(np.mean(net.predict(X_dev, config.backend) == y_dev))
        history.epochs.append(row)
        if progress is not None:
            progress(row)
        if early_stopping:
            if row["dev_accuracy"] > best[0]:
                best = (row["dev_accuracy"], [p.copy() for p in params])
                history.best_epoch = epoch + 1
            elif epoch + 1 - history.best_epoch >= config.patience:
                history.stopped_early = True
                break
    if early_stopping and best[1] is not None:
        for p, kept in zip(params, best[1]):
            p[...] = kept
    assert history.stopped_early or step == config.epochs * steps_per_epoch
    return net, history
