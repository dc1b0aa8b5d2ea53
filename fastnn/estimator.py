"""A scikit-learn estimator around fastnn's trainer: :class:`MLPClassifier`.

It follows scikit-learn's conventions, so it works in ``Pipeline``,
``cross_val_score`` and ``GridSearchCV`` and passes
``sklearn.utils.estimator_checks``:

* ``__init__`` stores its arguments unchanged; ``fit`` validates them and the
  data (with ``sklearn.utils.validation``'s public functions) and sets the
  fitted attributes, whose names end in ``_``;
* any numeric ``X (n_samples, n_features)``: it is only cast to float32, never
  rescaled (the ``lr=0.5`` default suits features in about [0, 1]; scale other
  data, e.g. with a ``StandardScaler`` in a ``Pipeline``);
* any class labels (strings, non-contiguous integers, ...): they are mapped to
  output indices ``0..c-1`` (``classes_`` holds them, sorted) and back;
* bad input raises ``ValueError`` (fastnn's :class:`~fastnn.errors.FastnnError`
  is one), predicting before ``fit`` raises ``NotFittedError``.

Training is :func:`fastnn.training.train`: ``max_iter`` epochs of mini-batch
training on the chosen backend.  ``random_state=None`` draws the seed from
NumPy's global RNG at fit time (so refits differ, as in scikit-learn); an int
``k >= 0`` is used as the seed itself, so ``MLPClassifier(random_state=k)``
trains exactly the network ``fastnn.train(..., TrainConfig(seed=k))`` does.

Predictions are computed with NumPy in float64 (the float32 weights and inputs
converted exactly), so a sample's probabilities do not depend on which other
rows share its batch -- float32 matrix products differ in the last bits from
one batch size to another, which scikit-learn's checks reject.  They agree
with ``network_.predict`` (float32, the backend's kernel) except at near-ties.

scikit-learn is a dependency of this module only: ``import fastnn`` works
without it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastnn.MLPClassifier needs scikit-learn >= 1.6: "
                      "pip install scikit-learn") from exc

from .errors import FastnnError
from .config import RULES, Rule, TrainConfig, int_rule, is_int, real_rule
from .network import Network
from .training import History, train

__all__ = ["MLPClassifier"]

_PREDICT_CHUNK = 4096  # rows per float64 forward pass when predicting
_D = TrainConfig()  # the defaults, from their one source (fastnn.config)
_AUGMENT_PARAMS = ("augment", "augment_rotation", "augment_scale", "augment_shear", "augment_shift",
                   "augment_alpha", "augment_sigma")  # TrainConfig's fields, under their own names

#: Each parameter's rule (scikit-learn's ``_parameter_constraints``, in fastnn's terms): the
#: TrainConfig field's own rule where a parameter is a field under another name.
_PARAMETER_RULES = {
    "hidden": RULES["hidden"],
    "backend": RULES["backend"],
    "batch_size": RULES["batch_size"],
    "max_iter": int_rule("max_iter", 1),
    "learning_rate_init": RULES["lr"],
    "optimizer": RULES["optimizer"],
    "momentum": RULES["momentum"],
    "weight_decay": RULES["weight_decay"],
    "schedule": RULES["schedule"],
    "early_stopping": Rule(lambda v: isinstance(v, (bool, np.bool_)),
                           "early_stopping must be True or False, got {value!r}"),
    "validation_fraction": real_rule("validation_fraction", 0, open_low=True, high=1, phrase="in (0, 1)"),
    "n_iter_no_change": int_rule("n_iter_no_change", 1),
    **{name: RULES[name] for name in _AUGMENT_PARAMS},
}

class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A d-H-c ReLU/softmax network trained by fastnn, as a scikit-learn classifier.

    Parameters
    ----------
    hidden : int, default 256
        Hidden units.
    backend : {"numba", "numpy"}, default "numba"
        The backend that trains: the fast compiled one or the NumPy reference
        (both train the same network; on tiny data or with many fits running in
        parallel, "numpy" is often quicker).  Predictions always use NumPy.
    batch_size : int, default 128
        Mini-batch size (the last batch of an epoch may be shorter).
    max_iter : int, default 15
        Epochs ``fit`` trains for (each ``partial_fit`` call is one epoch).
    learning_rate_init : float, default 0.5
        Learning rate (fastnn's ``lr``); the peak rate for non-constant schedules.
    optimizer : {"sgd", "momentum", "nesterov", "adam"}, default "sgd"
    momentum : float, default 0.9
        Momentum, or Adam's beta1.
    weight_decay : float, default 0.0
        L2 penalty on the weights.
    schedule : {"constant", "step", "cosine", "onecycle"}, default "constant"
        Learning-rate schedule over the ``max_iter`` epochs of one ``fit``.
    augment : {"none", "affine", "elastic"}, default "none"
        Distort every training image afresh each epoch (``X`` must be 28x28
        images, 784 features; see :mod:`fastnn.augment`).  Validation and
        prediction data are never distorted.  Each ``fit`` starts again at
        epoch 0, so refits see the same distortions.
    augment_rotation, augment_scale, augment_shear, augment_shift : float, default 10.0, 0.1, 0.2, 1.5
        The affine ranges: degrees, zoom ``1 +- scale``, shear factor, pixels.
    augment_alpha, augment_sigma : float, default 34.0, 4.0
        The elastic distortion's strength and smoothness (pixels).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), stop
        once its accuracy has not improved for ``n_iter_no_change`` epochs, and
        keep the weights of the best epoch.  Ignored by ``partial_fit``.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 3
    random_state : None, int or numpy RandomState, default None
        None: a seed drawn from NumPy's global RNG at each ``fit``; an int >= 0:
        that seed; a RandomState: a seed drawn from it.
    warm_start : bool, default False
        If True, ``fit`` continues from the previous network instead of a new one.
    verbose : bool, default False
        Print one line per epoch.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The labels, sorted; output ``i`` of the network is ``classes_[i]``.
    n_features_in_ : int
    feature_names_in_ : ndarray
        Only when ``X`` had string column names (a pandas DataFrame).
    network_ : fastnn.Network
        The trained network; ``network_.classes`` is ``classes_``, so
        ``fastnn.save_network(clf.network_, path)`` keeps the labels.
    history_ : fastnn.History
        One row per epoch trained (all ``partial_fit`` calls since the last ``fit``).
    loss_curve_ : list of float
        Mean training loss per epoch.
    n_iter_ : int
        Epochs trained.
    validation_scores_, best_validation_score_ :
        Held-out accuracy per epoch and its best value, with ``early_stopping``.
    """

    def __init__(self, hidden=_D.hidden, *, backend=_D.backend, batch_size=_D.batch_size,
                 max_iter=_D.epochs, learning_rate_init=_D.lr, optimizer=_D.optimizer,
                 momentum=_D.momentum, weight_decay=_D.weight_decay, schedule=_D.schedule,
                 augment=_D.augment, augment_rotation=_D.augment_rotation, augment_scale=_D.augment_scale,
                 augment_shear=_D.augment_shear, augment_shift=_D.augment_shift,
                 augment_alpha=_D.augment_alpha, augment_sigma=_D.augment_sigma, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=3, random_state=None, warm_start=False, verbose=False):
        self.hidden = hidden
        self.backend = backend
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.augment = augment
        self.augment_rotation = augment_rotation
        self.augment_scale = augment_scale
        self.augment_shear = augment_shear
        self.augment_shift = augment_shift
        self.augment_alpha = augment_alpha
        self.augment_sigma = augment_sigma
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # --- building blocks -------------------------------------------------------

    @classmethod
    def from_network(cls, network: Network, **params) -> "MLPClassifier":
        """A fitted classifier predicting with ``network`` (e.g. from :func:`fastnn.load_network`).

        ``classes_`` are ``network.classes``; ``params`` are passed to the
        constructor (``hidden`` is taken from the network).
        """
        if not isinstance(network, Network):
            raise TypeError(f"expected a fastnn Network, got {type(network).__name__}")
        est = cls(hidden=network.hidden, **params)
        est.network_ = network
        est.classes_ = np.asarray(network.classes)
        est.n_features_in_ = network.n_features
        est.history_ = History()
        est.loss_curve_ = []
        est.n_iter_ = 0
        return est

    def _check_params(self) -> None:
        """Validate every parameter by its rule (:data:`_PARAMETER_RULES`)."""
        for name, rule in _PARAMETER_RULES.items():
            rule.validate(getattr(self, name))

    def _seed(self) -> int:
        """The run's base seed: ``random_state`` itself if an int, else drawn from it."""
        if is_int(self.random_state):
            return int(self.random_state)  # TrainConfig refuses negative ones
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _config(self, epochs: int, seed: int, patience: int = 0) -> TrainConfig:
        return TrainConfig(
            hidden=self.hidden, epochs=epochs, batch_size=self.batch_size, lr=self.learning_rate_init,
            seed=seed, backend=self.backend, optimizer=self.optimizer, momentum=self.momentum,
            weight_decay=self.weight_decay, schedule=self.schedule, patience=patience,
            **{name: getattr(self, name) for name in _AUGMENT_PARAMS}).validate()

    def _validate_Xy(self, X, y, reset: bool):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32, order="C")
        check_classification_targets(y)
        return X, y

    def _run(self, X, y_idx, classes, config, network, X_dev=None, y_dev=None):
        start = getattr(self, "n_iter_", 0) if network is not None else 0

        def report(row):
            dev = f", validation accuracy {row['dev_accuracy']:.4f}" if "dev_accuracy" in row else ""
            print(f"epoch {start + row['epoch']}: loss {row['train_loss']:.6f}, "
                  f"train accuracy {row['train_accuracy']:.4f}{dev}")

        # Train a copy: a run that fails (divergence) leaves the fitted state untouched.
        net, history = train(X, y_idx, config, X_dev=X_dev, y_dev=y_dev,
                             n_classes=len(classes),
                             network=None if network is None else network.copy(),
                             progress=report if self.verbose else None,
                             class_names=[str(c) for c in classes])
        net.classes = classes.copy()
        return net, history

    def _record(self, history: History, continued: bool) -> None:
        """Set ``history_``, ``loss_curve_`` and ``n_iter_`` (appending when ``continued``)."""
        done = self.n_iter_ if continued else 0
        rows = list(self.history_.epochs) if continued else []
        steps = list(self.history_.steps) if continued else []
        rows += [{**row, "epoch": done + row["epoch"]} for row in history.epochs]
        steps += [{**row, "epoch": done + row["epoch"]} for row in history.steps]
        merged = dataclasses.replace(history, epochs=rows, steps=steps)
        self.history_ = merged
        self.loss_curve_ = [row["train_loss"] for row in rows]
        self.n_iter_ = len(rows)

    # --- the scikit-learn API ---------------------------------------------------

    def fit(self, X, y):
        """Train for ``max_iter`` epochs on ``X (n_samples, n_features)``, ``y (n_samples,)``."""
        self._check_params()
        warm = self.warm_start and hasattr(self, "network_")
        X, y = self._validate_Xy(X, y, reset=not warm)
        classes = np.unique(y)
        if len(classes) < 2:
            raise FastnnError(f"a classifier needs samples of at least 2 classes in y; got 1 class "
                              f"({classes.tolist()[0]!r})")
        if warm and not np.array_equal(classes, self.classes_):
            raise FastnnError("warm_start can only be used where y has the same classes as in "
                              "the previous call to fit")
        seed = self._seed()
        y_idx = _encode(classes, y)
        X_dev = y_dev = None
        patience = 0
        if self.early_stopping:
            X, X_dev, y_idx, y_dev = train_test_split(
                X, y_idx, test_size=self.validation_fraction, stratify=y_idx, random_state=seed)
            patience = self.n_iter_no_change
        if warm:
            seed = _derive_seed(seed, self.n_iter_)
        config = self._config(self.max_iter, seed, patience)
        net, history = self._run(X, y_idx, classes, config, self.network_ if warm else None, X_dev, y_dev)
        # Only a successful run changes the fitted state.
        self.classes_ = classes
        self.network_ = net
        self._base_seed = seed
        self._record(history, continued=warm)
        if X_dev is not None:
            self.validation_scores_ = [row["dev_accuracy"] for row in history.epochs]
            self.best_validation_score_ = max(self.validation_scores_)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``, continuing from the current network.

        ``classes`` (every label that will ever occur) is required on the first
        call and must match ``classes_`` afterwards.
        """
        first = not hasattr(self, "network_")
        if first:
            self._check_params()
            if classes is None:
                raise FastnnError("classes must be passed on the first call to partial_fit")
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise FastnnError(f"a classifier needs at least 2 classes; got 1 class ({classes.tolist()[0]!r})")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise FastnnError(f"classes={np.asarray(classes).tolist()} is not the same as "
                              f"classes_={self.classes_.tolist()} of the earlier calls")
        else:
            classes = self.classes_
        X, y = self._validate_Xy(X, y, reset=first)
        y_idx = _encode(classes, y)
        base = getattr(self, "_base_seed", None)
        if first or base is None:  # base is None for a classifier made by from_network
            base = self._seed()
        seed = base if first else _derive_seed(base, self.n_iter_)
        config = self._config(1, seed)
        net, history = self._run(X, y_idx, classes, config, None if first else self.network_)
        self.classes_ = classes
        self.network_ = net
        self._base_seed = base
        self._record(history, continued=not first)
        return self

    def _logits(self, X) -> np.ndarray:
        """The network's raw scores, in float64 (see the module: batch-independent)."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float32)  # the values training saw
        net = self.network_
        W1, b1, W2, b2 = (p.astype(np.float64) for p in (net.W1, net.b1, net.W2, net.b2))
        out = np.empty((X.shape[0], net.n_classes))
        for start in range(0, X.shape[0], _PREDICT_CHUNK):
            hidden = X[start:start + _PREDICT_CHUNK].astype(np.float64) @ W1
            hidden += b1
            np.maximum(hidden, 0.0, out=hidden)
            out[start:start + _PREDICT_CHUNK] = hidden @ W2 + b2
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` in the order of ``classes_``."""
        z = self._logits(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably."""
        z = self._logits(X)
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z

    def predict(self, X) -> np.ndarray:
        """Predicted labels ``(n_samples,)``, taken from ``classes_``."""
        best = self._logits(X).argmax(axis=1)
        return self.classes_[best]


def _encode(classes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Labels -> output indices into the sorted ``classes``; unknown labels raise ValueError."""
    idx = np.searchsorted(classes, y)
    idx[idx >= len(classes)] = 0
    unknown = classes[idx] != y
    if unknown.any():
        raise FastnnError(f"labels not seen in classes_: {np.unique(y[unknown])[:5].tolist()}")
    return idx.astype(np.int64)


def _derive_seed(base: int, n_iter: int) -> int:
    """A fresh seed for a continued run (epoch ``n_iter`` onwards), so each call shuffles anew."""
    hi, lo = np.random.SeedSequence([base, n_iter]).generate_state(2, np.uint32)
    return (int(hi) << 31) ^ int(lo)  # < 2**63
