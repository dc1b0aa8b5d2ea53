"""``fastnn.MLPClassifier``: scikit-learn's ``MLPClassifier``, trained by fastnn."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..activations import make_targets
from ..network import Network
from . import _docs
from .base import BaseMLP
from .params import CLASSIFIER_CONSTRAINTS
from .params import FASTNN_DEFAULTS as F
from .params import SKLEARN_DEFAULTS as S


class MLPClassifier(ClassifierMixin, BaseMLP):
    _parameter_constraints: dict = CLASSIFIER_CONSTRAINTS

    def __init__(
        self,
        hidden_layer_sizes=S["hidden_layer_sizes"],
        activation=S["activation"],
        *,
        solver=S["solver"],
        alpha=S["alpha"],
        batch_size=S["batch_size"],
        learning_rate=S["learning_rate"],
        learning_rate_init=S["learning_rate_init"],
        power_t=S["power_t"],
        max_iter=S["max_iter"],
        shuffle=S["shuffle"],
        random_state=S["random_state"],
        tol=S["tol"],
        verbose=S["verbose"],
        warm_start=S["warm_start"],
        momentum=S["momentum"],
        nesterovs_momentum=S["nesterovs_momentum"],
        early_stopping=S["early_stopping"],
        validation_fraction=S["validation_fraction"],
        beta_1=S["beta_1"],
        beta_2=S["beta_2"],
        epsilon=S["epsilon"],
        n_iter_no_change=S["n_iter_no_change"],
        max_fun=S["max_fun"],
        class_weight=None,
        backend=F["backend"],
        dtype=F["dtype"],
        augment=F["augment"],
        augment_rotation=F["augment_rotation"],
        augment_scale=F["augment_scale"],
        augment_shear=F["augment_shear"],
        augment_shift=F["augment_shift"],
        augment_alpha=F["augment_alpha"],
        augment_sigma=F["augment_sigma"],
        augment_flip=F["augment_flip"],
        augment_erase=F["augment_erase"],
        augment_erase_area=F["augment_erase_area"],
        dropout=F["dropout"],
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.backend = backend
        self.dtype = dtype
        self.augment = augment
        self.augment_rotation = augment_rotation
        self.augment_scale = augment_scale
        self.augment_shear = augment_shear
        self.augment_shift = augment_shift
        self.augment_alpha = augment_alpha
        self.augment_sigma = augment_sigma
        self.augment_flip = augment_flip
        self.augment_erase = augment_erase
        self.augment_erase_area = augment_erase_area
        self.dropout = dropout

    # --- the scikit-learn API -------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` and the labels ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The labels: any hashable values, or a 0/1 indicator matrix (multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss (and in the validation score).

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.
        """
        self._check_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y``, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss.
        classes : array of shape (n_classes,), default=None
            Every label any call will see: required on the first call, optional after.

        Returns
        -------
        self : MLPClassifier
            The updated estimator.
        """
        self._check_params()
        if isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: compute the "
                "weights once with sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=classes, y=y) and pass them as a dict"
            )
        if _first_partial_fit(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted labels, ``(n_samples,)`` (or an indicator matrix for multilabel targets)."""
        check_is_fitted(self)
        Z = self._outputs(X)
        return self._label_binarizer.inverse_transform(Z.ravel() if self.n_outputs_ == 1 else Z)

    def predict_proba(self, X):
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        check_is_fitted(self)
        Z = self._outputs(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - Z, Z])
        return Z

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    @property
    def network_(self) -> Network:
        """The fitted network as a :class:`fastnn.Network` labelled with ``classes_`` (see the
        attribute's description); binary models as their two-output softmax equivalent."""
        net = super().network_
        if net.head != "logistic" or net.n_outputs != 1 or len(self.classes_) != 2:
            return net
        # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]: the same probabilities, one per class,
        # which is what model files, fastnn predict and ONNX export read
        W, b = net.coefs[-1], net.intercepts[-1]
        last_W = np.hstack([np.zeros_like(W), W])
        last_b = np.concatenate([np.zeros_like(b), b])
        return Network(
            list(net.coefs[:-1]) + [last_W],
            list(net.intercepts[:-1]) + [last_b],
            net.activation,
            "softmax",
            classes=self.classes_,
            dtype=net.dtype,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # --- what classification means to BaseMLP ------------------------------------------------

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        """``X`` and the 0/1 target matrix; ``classes_`` set or checked as scikit-learn does."""
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        f"warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y).astype(bool)

    def _output_head(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _stratify(self, Y):
        """Single-label targets are split stratified (binary on the 0/1 column, as scikit-learn;
        multiclass on the classes, as scikit-learn documents); multilabel ones are not."""
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return None
        return Y if Y.shape[1] == 1 else Y.argmax(axis=1)

    def _targets(self, head, Y, sample_weight, dtype, class_weighted: bool = True):
        weights = sample_weight
        if self.class_weight is not None and class_weighted:
            factors = self._class_weight_factors(Y)
            weights = factors if weights is None else weights * factors
        if head == "softmax":
            return make_targets(head, Y.argmax(axis=1), Y.shape[1], weights, dtype)
        return make_targets(head, Y, Y.shape[1], weights, dtype)

    def _class_weight_factors(self, Y) -> np.ndarray:
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight weighs the rows of single-label targets; these are multilabel")
        idx = Y[:, 0].astype(np.int64) if Y.shape[1] == 1 else Y.argmax(axis=1)
        return compute_class_weight(self.class_weight, classes=self.classes_, y=self.classes_[idx])[idx]

    def _score_outputs(self, Z, Y, sample_weight) -> float:
        """Accuracy (subset accuracy for multilabel) of the head's outputs ``Z`` against ``Y``."""
        if Y.shape[1] > 1 and not self._label_binarizer.y_type_.startswith("multilabel"):
            return accuracy_score(Y.argmax(axis=1), Z.argmax(axis=1), sample_weight=sample_weight)
        hits = Z > 0.5
        if Y.shape[1] == 1:
            Y, hits = Y.ravel(), hits.ravel()
        return accuracy_score(Y, hits, sample_weight=sample_weight)


def _first_partial_fit(est, classes) -> bool:
    """Whether this is the first ``partial_fit`` (which sets ``classes_``); scikit-learn's errors."""
    if getattr(est, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is None:
        return False
    if getattr(est, "classes_", None) is not None:
        if not np.array_equal(est.classes_, unique_labels(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {est.classes_!r}"
            )
        return False
    est.classes_ = unique_labels(classes)
    return True


MLPClassifier.__doc__ = _docs.docstring(
    """A multilayer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by fastnn.

    The same parameters, defaults, rules, attributes and behaviour as
    ``sklearn.neural_network.MLPClassifier`` (code written for it runs with only
    the import changed), trained on fastnn's compiled kernels, plus fastnn's own
    keywords after scikit-learn's.  Multiclass targets train a softmax output
    with the log loss; binary and multilabel targets a logistic output per label.""",
    [
        "hidden_layer_sizes",
        "activation",
        "solver",
        "alpha",
        "batch_size",
        "learning_rate",
        "learning_rate_init",
        "power_t",
        "max_iter",
        "shuffle",
        "random_state",
        "tol",
        "verbose",
        "warm_start",
        "momentum",
        "nesterovs_momentum",
        "early_stopping",
        "validation_fraction",
        "beta_1",
        "beta_2",
        "epsilon",
        "n_iter_no_change",
        "max_fun",
        "class_weight",
        "backend",
        "dtype",
        "augment",
        "augment_rotation",
        "augment_alpha",
        "augment_flip",
        "dropout",
    ],
    [
        "classes_",
        "loss_",
        "best_loss_",
        "loss_curve_",
        "validation_scores_",
        "best_validation_score_",
        "validation_loss_curve_",
        "t_",
        "coefs_",
        "intercepts_",
        "n_features_in_",
        "feature_names_in_",
        "n_iter_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "network_",
    ],
    """    See Also
    --------
    MLPRegressor : The regressor.

    Examples
    --------
    >>> from fastnn import MLPClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(solver="lbfgs", random_state=1).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """,
)
