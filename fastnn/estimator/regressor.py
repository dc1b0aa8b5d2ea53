"""``fastnn.MLPRegressor``: scikit-learn's ``MLPRegressor``, trained by fastnn."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..activations import make_targets
from . import _docs
from .base import BaseMLP
from .params import FASTNN_DEFAULTS as F
from .params import REGRESSOR_CONSTRAINTS
from .params import SKLEARN_DEFAULTS as S


class MLPRegressor(RegressorMixin, BaseMLP):
    _parameter_constraints: dict = REGRESSOR_CONSTRAINTS

    def __init__(
        self,
        loss="squared_error",
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
        self.loss = loss
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
        """Fit the model to ``X`` and the targets ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets (``>= 0`` for ``loss="poisson"``).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss (and in the validation score).

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.
        """
        self._check_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss.

        Returns
        -------
        self : MLPRegressor
            The updated estimator.
        """
        self._check_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, ``(n_samples,)`` or ``(n_samples, n_outputs)``, in the model's dtype."""
        check_is_fitted(self)
        Z = self._outputs(X)
        return Z.ravel() if Z.shape[1] == 1 else Z

    # --- what regression means to BaseMLP ------------------------------------------------------

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        """``X`` and the targets as a 2-D array."""
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("loss='poisson' needs targets y >= 0; y has negative values")
        return X, y.reshape(len(y), -1)

    def _output_head(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _stratify(self, Y):
        return None

    def _targets(self, head, Y, sample_weight, dtype, class_weighted: bool = True):
        return make_targets(head, Y, Y.shape[1], sample_weight, dtype)

    def _score_outputs(self, Z, Y, sample_weight) -> float:
        """R^2 of the predictions ``Z`` against ``Y``."""
        if Y.shape[1] == 1:
            Y, Z = Y.ravel(), Z.ravel()
        return r2_score(Y, Z, sample_weight=sample_weight)


MLPRegressor.__doc__ = _docs.docstring(
    """A multilayer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by fastnn.

    The same parameters, defaults, rules, attributes and behaviour as
    ``sklearn.neural_network.MLPRegressor`` (code written for it runs with only
    the import changed), trained on fastnn's compiled kernels, plus fastnn's own
    keywords after scikit-learn's.  Predictions are in the dtype the model
    computes in (the training data's, by default).""",
    [
        "loss",
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
        "backend",
        "dtype",
        "augment",
        "augment_rotation",
        "augment_alpha",
        "augment_flip",
        "dropout",
    ],
    [
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
    MLPClassifier : The classifier.

    Examples
    --------
    >>> from fastnn import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    >>> reg = MLPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    """,
)
