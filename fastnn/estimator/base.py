"""What both estimators share: ``fit``, ``partial_fit``'s core, prediction, pickling.

The flow of scikit-learn's ``BaseMultilayerPerceptron._fit``, step for step
(so its documented behaviour and its tests carry over), on fastnn's kernels:
validate the parameters and the data; on a first pass (a new ``fit``, or the
first ``partial_fit``) initialise the weights and the run's records; then
train with the solver (:mod:`.stochastic`, :mod:`.lbfgs`) on the backend
:mod:`.auto` picks; refuse weights that are no longer finite.  What differs
between classification and regression (targets, output head, validation
score) the subclasses say.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..activations import OUTPUT, head_losses
from ..network import Network
from . import auto
from .inputs import check_sample_weight, dense_rows, head_outputs
from .lbfgs import CHUNK as LBFGS_CHUNK
from .lbfgs import fit_lbfgs
from .params import FASTNN_DEFAULTS, STOCHASTIC_SOLVERS, check_fastnn_params, hidden_sizes, work_dtype
from .state import adopt, glorot_init, network_of
from .stochastic import fit_stochastic

#: Records of a stochastic run, cleared when a new model starts.
_RUN_RECORDS = (
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "validation_loss_curve_",
    "_no_improvement_count",
    "_optimizer",
    "_best_params",
    "_shuffle_seed",
    "_epochs_done",
)


class BaseMLP(BaseEstimator):
    """The shared machinery of :class:`MLPClassifier` and :class:`MLPRegressor` (not for direct use)."""

    # --- fitting ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        """Every parameter by its rule (:mod:`.params`): the first thing ``fit`` and ``partial_fit`` do."""
        self._validate_params()
        check_fastnn_params(self)

    def _fit(self, X, y, sample_weight=None, incremental: bool = False):
        """scikit-learn's ``_fit`` (see the module), after :meth:`_check_params`."""
        hidden = hidden_sizes(self.hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        self.n_outputs_ = Y.shape[1]
        layer_units = [X.shape[1], *hidden, self.n_outputs_]
        rng = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, work_dtype(self.dtype, X.dtype), rng)
        net = network_of(self)
        if net.n_outputs != self.n_outputs_:
            raise ValueError(
                f"the network has {net.n_outputs} outputs, but y has {self.n_outputs_} "
                f"columns; fit a new model (warm_start=False)"
            )
        X = dense_rows(X, net.dtype)
        n = X.shape[0]
        batch = min(200 if self.batch_size == "auto" else self.batch_size, n)
        backend = auto.training_backend(
            self.backend, n, net.sizes, self.solver, 1 if incremental else self.max_iter, batch
        )
        stochastic = self.solver in STOCHASTIC_SOLVERS
        with auto.blas_threads_for(backend, batch if stochastic else min(n, LBFGS_CHUNK), net.sizes):
            if stochastic:
                fit_stochastic(self, net, X, Y, sample_weight, incremental=incremental, rng=rng, backend=backend)
            else:
                fit_lbfgs(self, net, X, self._targets(net.head, Y, sample_weight, net.dtype), backend)
        if not np.isfinite(net.params.flat).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        return self

    def _initialize(self, layer_units, dtype, rng) -> None:
        """A new model: Glorot weights drawn from ``rng``, and empty records."""
        for name in _RUN_RECORDS:
            self.__dict__.pop(name, None)
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_head()
        coefs, intercepts = glorot_init(layer_units, self.activation, dtype, rng)
        net = Network(coefs, intercepts, self.activation, self.out_activation_, dtype=dtype)
        adopt(self, net)
        self._best_params = net.params.flat.copy()

    def _check_solver(self) -> bool:
        """``partial_fit`` exists for the stochastic solvers only (scikit-learn's message)."""
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    def _validation_score_and_loss(self, net, X_val, Y_val, sw_val, backend: str) -> tuple[float, float]:
        """The held-out score (the subclass's ``_score_outputs``) and mean loss on scikit-learn's
        scale, without the L2 term; NaN for both when the outputs are not finite."""
        raw = net.raw(X_val, backend)
        Z = raw.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            OUTPUT[net.head](Z)
        if not np.isfinite(Z).all():
            return math.nan, math.nan
        targets = self._targets(net.head, Y_val, sw_val, net.dtype, class_weighted=False)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit's huge outputs: inf, then stop
            loss = np.average(head_losses(net.head, raw, targets), weights=targets.weights)
            score = self._score_outputs(Z, Y_val, sw_val)
        if net.head == "identity":
            loss /= net.n_outputs  # scikit-learn averages the squared error over the outputs
        return score, float(loss)

    # --- predicting ----------------------------------------------------------------------------

    def _outputs(self, X) -> np.ndarray:
        """The head's outputs ``(n, n_outputs_)`` for ``X``, in the network's dtype."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        return head_outputs(network_of(self), X, auto.prediction_backend(self.backend))

    @property
    def network_(self) -> Network:
        """The fitted network as a :class:`fastnn.Network` (its parameters are ``coefs_`` and
        ``intercepts_`` themselves): for ``fastnn.save_network`` and ``fastnn.export_onnx``."""
        check_is_fitted(self)
        net = network_of(self)
        classes = getattr(self, "classes_", None)
        if classes is not None and len(classes) != (2 if net.n_outputs == 1 else net.n_outputs):
            classes = None  # a classifier fitted on a single class
        return Network.from_params(net.params, net.activation, net.head, classes=classes)

    # --- scikit-learn's conventions ---------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_net", None)  # coefs_ and intercepts_ are the model; the network is rebuilt from them
        return state

    def __setstate__(self, state):
        # An estimator pickled before one of fastnn's parameters existed (augment_flip, dropout, ...)
        # gets that parameter's default.
        state = {**FASTNN_DEFAULTS, **state}
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
