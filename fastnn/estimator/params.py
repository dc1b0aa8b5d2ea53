"""The estimators' parameters: every default and every rule, in one place.

scikit-learn's parameters keep scikit-learn's defaults and constraints (the
same ``InvalidParameterError`` for the same bad value, raised by
``BaseEstimator._validate_params``); fastnn's own come after them as extra
keywords.  The augmentation parameters and ``dropout`` are :class:`~fastnn.config.TrainConfig`'s
fields under their own names: their defaults and rules are the config's.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, Options, StrOptions

from ..config import RULES, TrainConfig, check_augment_combination

#: scikit-learn's learning-rate schedules, applied by the ``sgd`` solver only (as scikit-learn does).
SKLEARN_SCHEDULES = ("constant", "invscaling", "adaptive")
#: fastnn's per-step schedules over ``max_iter`` epochs (:mod:`fastnn.schedules`), for ``sgd`` and ``adam``.
STEP_SCHEDULES = ("cosine", "onecycle")
STOCHASTIC_SOLVERS = ("sgd", "adam")

#: scikit-learn's parameters, in its order, with its defaults (``MLPRegressor`` puts ``loss`` first).
SKLEARN_DEFAULTS = dict(
    hidden_layer_sizes=(100,),
    activation="relu",
    solver="adam",
    alpha=0.0001,
    batch_size="auto",
    learning_rate="constant",
    learning_rate_init=0.001,
    power_t=0.5,
    max_iter=200,
    shuffle=True,
    random_state=None,
    tol=1e-4,
    verbose=False,
    warm_start=False,
    momentum=0.9,
    nesterovs_momentum=True,
    early_stopping=False,
    validation_fraction=0.1,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    n_iter_no_change=10,
    max_fun=15000,
)

#: The augmentation parameters: TrainConfig's fields, under their own names.
AUGMENT_PARAMS = (
    "augment",
    "augment_rotation",
    "augment_scale",
    "augment_shear",
    "augment_shift",
    "augment_alpha",
    "augment_sigma",
    "augment_flip",
    "augment_erase",
    "augment_erase_area",
)
#: Every parameter that is a TrainConfig field: the augmentation's, then dropout.
CONFIG_PARAMS = (*AUGMENT_PARAMS, "dropout")
_CONFIG = TrainConfig()

#: fastnn's extra keywords and their defaults (``class_weight`` is the classifier's only).
FASTNN_DEFAULTS = dict(backend="auto", dtype=None, **{name: getattr(_CONFIG, name) for name in CONFIG_PARAMS})

#: scikit-learn's ``_parameter_constraints``, as its MLP estimators declare them, plus fastnn's.
CONSTRAINTS: dict = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions(set(SKLEARN_SCHEDULES + STEP_SCHEDULES))],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    # fastnn's
    "backend": [StrOptions({"auto", "numpy", "numba"})],
    "dtype": [None, StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
    # checked by fastnn.config's rules (check_fastnn_params), which hold their ranges
    **dict.fromkeys(CONFIG_PARAMS, "no_validation"),
}

CLASSIFIER_CONSTRAINTS = {**CONSTRAINTS, "class_weight": [dict, StrOptions({"balanced"}), None]}
REGRESSOR_CONSTRAINTS = {**CONSTRAINTS, "loss": [StrOptions({"squared_error", "poisson"})]}


def check_fastnn_params(est) -> None:
    """The checks scikit-learn's constraints cannot express: augmentation's and dropout's
    ranges (the config's rules) and which solver a fastnn option works with."""
    for name in CONFIG_PARAMS:
        RULES[name].validate(getattr(est, name))
    check_augment_combination(est.augment, est.augment_flip, est.augment_erase)
    if est.solver == "lbfgs" and est.augment != "none":
        raise ValueError(
            f"augment={est.augment!r} distorts each epoch's mini-batches: it needs a "
            f"stochastic solver ('sgd' or 'adam'), not solver='lbfgs'"
        )
    if est.solver == "lbfgs" and est.dropout > 0:
        raise ValueError(
            f"dropout={est.dropout!r} drops hidden units in each mini-batch step: it needs a "
            f"stochastic solver ('sgd' or 'adam'), not solver='lbfgs'"
        )


def hidden_sizes(value) -> list:
    """``hidden_layer_sizes`` as a list of ints; scikit-learn's error for a size below 1."""
    sizes = list(value) if hasattr(value, "__iter__") else [value]
    if np.any(np.array(sizes) <= 0):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


def work_dtype(requested, X_dtype) -> np.dtype:
    """The dtype a fit computes in: ``requested`` (the ``dtype`` parameter) or, when None,
    the input's (float32 stays float32, anything else is float64), as scikit-learn does."""
    if requested is not None:
        return np.dtype(requested)
    return np.dtype(np.float32) if X_dtype == np.float32 else np.dtype(np.float64)
