"""``solver="sgd"`` and ``"adam"``: epochs of fastnn's :class:`~fastnn.training.Trainer`, driven
by scikit-learn's rules.

The rules, as scikit-learn documents (and implements) them:

* ``batch_size="auto"`` is ``min(200, n)``; a larger one is clipped with a warning;
* after every epoch: ``loss_`` (``loss_curve_``), ``t_ += n``; with
  ``early_stopping`` the held-out score (accuracy or R^2) in
  ``validation_scores_``, otherwise the training loss, counts an epoch as "no
  improvement" unless it beats the best so far by ``tol``; more than
  ``n_iter_no_change`` such epochs in a row stop training -- or, with ``sgd``'s
  ``adaptive`` schedule, divide the rate by 5 until it falls below ``1e-6``;
* ``sgd``'s ``invscaling`` rate is ``learning_rate_init / (t_ + 1) ** power_t``,
  updated at the end of every epoch;
* ``ConvergenceWarning`` when a ``fit`` reaches ``max_iter``; with
  ``early_stopping`` the best-scoring epoch's weights are kept.

fastnn's own: ``cosine`` and ``onecycle`` set every step's rate over the
``max_iter`` epochs (for ``sgd`` and ``adam``), augmentation, and
``validation_loss_curve_``.  Every epoch's shuffle is keyed on
``(seed, epoch)`` with the seed drawn from ``random_state`` once per model, so
``partial_fit`` epoch ``k`` visits the rows exactly as ``fit``'s epoch ``k`` does.
A loss that stops being finite ends training at once (it could only stay NaN).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..augment import AugmentSpec
from ..schedules import learning_rates
from ..training import Diverged, Trainer
from .params import STEP_SCHEDULES
from .state import SolverState

#: ``adaptive`` stops once the rate is at most this (scikit-learn's threshold).
ADAPTIVE_FLOOR = 1e-6

# A warning from fit_stochastic names the line that called fit or partial_fit: fit_stochastic (1)
# <- BaseMLP._fit (2) <- fit / partial_fit (3) <- the caller (4).  One more from a function it calls.
_CALLER = 4


def new_solver_state(est, layout) -> SolverState:
    """A fresh optimizer for ``est``'s solver: Adam, or SGD with (Nesterov) momentum."""
    if est.solver == "adam":
        return SolverState(
            "adam",
            layout,
            est.learning_rate_init,
            dict(momentum=est.beta_1, beta2=est.beta_2, eps=est.epsilon, l2=est.alpha),
        )
    # scikit-learn's SGD with momentum 0 is plain SGD, whatever nesterovs_momentum says
    name = "sgd" if est.momentum == 0 else ("nesterov" if est.nesterovs_momentum else "momentum")
    return SolverState(name, layout, est.learning_rate_init, dict(momentum=est.momentum, l2=est.alpha))


def batch_size_for(est, n: int) -> int:
    if est.batch_size == "auto":
        return min(200, n)
    if est.batch_size > n:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=_CALLER + 1
        )
    return int(np.clip(est.batch_size, 1, n))


def step_rates(est, state: SolverState, steps: int) -> np.ndarray:
    """The learning rate of each step of the next epoch."""
    if est.learning_rate in STEP_SCHEDULES:
        total = est.max_iter * steps
        s = np.minimum(state.epoch * steps + np.arange(steps), total - 1)
        return learning_rates(est.learning_rate, est.learning_rate_init, total)[s]
    rate = state.learning_rate if est.solver == "sgd" else est.learning_rate_init
    return np.full(steps, rate)


def end_of_epoch(est, state: SolverState) -> None:
    if est.solver == "sgd" and est.learning_rate == "invscaling":
        state.learning_rate = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t


def stop_or_slow_down(est, state: SolverState, message: str) -> bool:
    """After too many epochs without improvement: whether to stop (else the rate was cut)."""
    if est.solver != "sgd" or est.learning_rate != "adaptive":
        if est.verbose:
            print(message + " Stopping.")
        return True
    if state.learning_rate <= ADAPTIVE_FLOOR:
        if est.verbose:
            print(message + " Learning rate too small. Stopping.")
        return True
    state.learning_rate /= 5.0
    if est.verbose:
        print(f"{message} Setting learning rate to {state.learning_rate:f}")
    return False


def reported_loss(loss_sum: float, n: int, net, alpha: float, n_batches: int, weight_sum: float) -> float:
    """scikit-learn's ``loss_`` from the trainer's loss sum: the same number, except that for
    squared error with several outputs scikit-learn averages the outputs' losses where fastnn
    sums them.  The L2 part is then split off at the epoch's final weights (exact with one
    output; otherwise as close as the weights' change over one epoch)."""
    mean = loss_sum / n
    c = net.n_outputs
    if net.head != "identity" or c == 1 or not math.isfinite(mean):
        return mean
    penalty = 0.5 * alpha * net.params.squared_norm() * n_batches / weight_sum
    return (mean - penalty) / c + penalty


def split_validation(est, X, Y, sw, rng):
    """``(X, Y, sw)`` for training and for validation: ``validation_fraction`` held out,
    stratified by the estimator's rule (``est._stratify``), drawn from ``rng``."""
    parts = train_test_split(
        X,
        Y,
        *(() if sw is None else (sw,)),
        random_state=rng,
        test_size=est.validation_fraction,
        stratify=est._stratify(Y),
    )
    X_tr, X_val, Y_tr, Y_val = parts[:4]
    sw_tr, sw_val = parts[4:] if sw is not None else (None, None)
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your dataset.")
    return (X_tr, Y_tr, sw_tr), (X_val, Y_val, sw_val)


def _record_validation(est, net, validation, backend: str) -> None:
    """Score the held-out split and keep the best epoch's weights (scikit-learn's rule)."""
    X_val, Y_val, sw_val = validation
    score, loss = est._validation_score_and_loss(net, X_val, Y_val, sw_val, backend)
    est.validation_scores_.append(float(score))
    est.validation_loss_curve_.append(float(loss))
    if est.verbose:
        print(f"Validation score: {score:f}")
    if score < est.best_validation_score_ + est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if score > est.best_validation_score_:
        est.best_validation_score_ = float(score)
        est._best_params = net.params.flat.copy()


def _record_training_loss(est) -> None:
    if est.loss_curve_[-1] > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if est.loss_curve_[-1] < est.best_loss_:
        est.best_loss_ = est.loss_curve_[-1]


def start_records(est) -> None:
    """A new model's records of its epochs (scikit-learn's, and ``validation_loss_curve_``)."""
    est.loss_curve_ = []
    est._no_improvement_count = 0
    if est.early_stopping:
        est.validation_scores_, est.validation_loss_curve_ = [], []
        est.best_validation_score_, est.best_loss_ = -np.inf, None
    else:
        est.validation_scores_ = est.validation_loss_curve_ = None
        est.best_validation_score_, est.best_loss_ = None, np.inf


def fit_stochastic(est, net, X, Y, sw, *, incremental: bool, rng, backend: str) -> None:
    """Train ``net`` (in place) for up to ``max_iter`` epochs, or one with ``incremental``."""
    if not hasattr(est, "loss_curve_"):  # a new model (or one an L-BFGS fit started)
        start_records(est)
    state = getattr(est, "_optimizer", None)
    if not incremental or state is None or state.layout != net.layout:
        state = est._optimizer = new_solver_state(est, net.layout)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    validation = None
    if est.early_stopping:
        (X, Y, sw), validation = split_validation(est, X, Y, sw, rng)
        if est.validation_scores_ is None:  # warm start after a fit without early stopping
            est.validation_scores_, est.validation_loss_curve_ = [], []
            est.best_validation_score_, est.best_loss_ = -np.inf, None
    if not hasattr(est, "_shuffle_seed"):  # drawn once per model, after the weights and the split
        est._shuffle_seed = int(rng.randint(np.iinfo(np.int32).max))
    targets = est._targets(net.head, Y, sw, net.dtype)
    n = X.shape[0]
    augment = AugmentSpec(
        est.augment,
        est.augment_rotation,
        est.augment_scale,
        est.augment_shear,
        est.augment_shift,
        est.augment_alpha,
        est.augment_sigma,
        est.augment_flip,
        est.augment_erase,
        est.augment_erase_area,
    )
    trainer = Trainer(
        net,
        X,
        targets,
        batch_size=batch_size_for(est, n),
        optimizer=state.optimizer,
        backend=backend,
        seed=est._shuffle_seed,
        shuffle=est.shuffle,
        augment=augment,
        dropout=est.dropout,
    )
    trainer.epoch = getattr(est, "_epochs_done", 0)
    weight_sum = float(targets.weights.sum(dtype=np.float64))
    est.n_iter_ = 0
    try:
        for _ in range(est.max_iter):
            try:
                loss_sum, _ = trainer.run_epoch(step_rates(est, state, trainer.steps_per_epoch))
                diverged = False
            except Diverged:
                loss_sum, diverged = math.nan, True
                trainer.epoch += 1
            state.epoch += 1
            est._epochs_done = trainer.epoch
            est.n_iter_ += 1
            est.loss_ = reported_loss(loss_sum, n, net, est.alpha, trainer.steps_per_epoch, weight_sum)
            est.t_ += n
            est.loss_curve_.append(est.loss_)
            if est.verbose:
                print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
            if validation is not None:
                _record_validation(est, net, validation, backend)
            else:
                _record_training_loss(est)
            end_of_epoch(est, state)
            if diverged:
                _diverged(est, net, validation is not None)
                break
            if est._no_improvement_count > est.n_iter_no_change:
                what = "Validation score" if validation is not None else "Training loss"
                message = (
                    f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
                )
                if stop_or_slow_down(est, state, message):
                    break
                est._no_improvement_count = 0
            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and "
                    f"the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=_CALLER,
                )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=_CALLER)
    if validation is not None:
        best = getattr(est, "_best_params", None)
        if best is not None and best.shape == net.params.flat.shape:
            net.params.flat[...] = best


def _diverged(est, net, restored: bool) -> None:
    """After a non-finite loss: say what happened (non-finite weights get scikit-learn's error
    from the caller)."""
    advice = f"try a smaller learning_rate_init than {est.learning_rate_init:g}"
    if restored:
        warnings.warn(
            f"Training diverged: the loss was no longer finite in iteration {est.n_iter_}; "
            f"stopped, and kept the weights of the best validation score ({advice}).",
            ConvergenceWarning,
            stacklevel=_CALLER + 1,
        )
    elif np.isfinite(net.params.flat).all():
        raise ValueError(
            f"Training diverged: the loss was no longer finite in iteration {est.n_iter_} ({advice}, or scale the data)"
        )
