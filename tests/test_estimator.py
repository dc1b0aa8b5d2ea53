"""fastnn's MLPClassifier and MLPRegressor: scikit-learn's behaviour, step for step, and fastnn's own.

scikit-learn's own tests (tests/test_sklearn_mlp_suite.py) and estimator checks
(tests/test_sklearn_checks.py) run elsewhere; here:

* fits that must equal scikit-learn's to rounding (same initial weights, same
  steps: ``shuffle=False`` visits the rows in scikit-learn's order);
* what fastnn's own rules promise: keyed shuffles (``partial_fit`` epoch k is
  ``fit``'s epoch k), dtypes, the backend rule, the numba backend agreeing with
  NumPy, pickling mid-training, sparse input, the L-BFGS gradient;
* fastnn's extras: ``class_weight``, ``validation_loss_curve_``, the
  ``cosine``/``onecycle`` schedules, ``network_`` and model files, bad input.

Small data, so everything but the numba tests runs on NumPy (``backend="auto"``).
"""

from __future__ import annotations

import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import neural_network as sk
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.preprocessing import MinMaxScaler

import fastnn
from fastnn import MLPClassifier, MLPRegressor
from fastnn.estimator import auto
from fastnn.estimator.lbfgs import FullBatch
from fastnn.estimator.stochastic import step_rates
from fastnn.modelfile import load_network, save_network
from fastnn.schedules import learning_rates


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def digits():
    """300 of scikit-learn's 8x8 digits of classes 0-2, scaled to [0, 1] (float64)."""
    X, y = load_digits(n_class=3, return_X_y=True)
    return MinMaxScaler().fit_transform(X)[:300], y[:300]


def max_difference(a, b) -> float:
    return max(float(np.abs(p - q).max()) for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


# --- the same fit as scikit-learn's -----------------------------------------------------------

SAME_AS_SKLEARN = {
    "nesterov": ("clf", dict(solver="sgd", learning_rate_init=0.1)),
    "momentum+invscaling": (
        "clf",
        dict(solver="sgd", nesterovs_momentum=False, learning_rate="invscaling", learning_rate_init=0.5),
    ),
    "plain-sgd+adaptive": (
        "clf",
        dict(
            solver="sgd",
            momentum=0,
            learning_rate="adaptive",
            tol=0.05,
            n_iter_no_change=2,
            max_iter=40,
            learning_rate_init=0.1,
        ),
    ),
    "adam+2-layers+tanh+alpha": ("clf", dict(hidden_layer_sizes=(20, 10), activation="tanh", alpha=0.01)),
    "binary+early-stopping": (
        "binary",
        dict(early_stopping=True, activation="logistic", tol=1e-3, n_iter_no_change=3, max_iter=60),
    ),
    "sample-weights": ("weighted", dict(solver="sgd", learning_rate_init=0.1)),
    "multilabel": ("multilabel", dict(solver="sgd", activation="logistic", learning_rate_init=0.1)),
    "squared-error+early-stopping": ("reg", dict(learning_rate_init=0.01, early_stopping=True, max_iter=40)),
    "poisson": ("poisson", dict(loss="poisson", learning_rate_init=0.01)),
}


@pytest.mark.parametrize("case", SAME_AS_SKLEARN)
def test_shuffle_false_fits_equal_scikit_learns_to_rounding(case, digits):
    kind, params = SAME_AS_SKLEARN[case]
    X, y = digits
    sample_weight, name = None, "MLPClassifier"
    if kind == "binary":
        y = y == 1
    elif kind == "weighted":
        sample_weight = np.random.default_rng(0).uniform(0, 2, len(y))
    elif kind == "multilabel":
        X, y = make_multilabel_classification(n_samples=100, random_state=0)
    elif kind in ("reg", "poisson"):
        y = X[:, 20] * 3 + X[:, 30] if kind == "reg" else np.round(np.exp(X[:, 20] + X[:, 30]))
        name = "MLPRegressor"
    params = {"batch_size": 32, "max_iter": 15, "shuffle": False, "random_state": 3, **params}
    ours = getattr(fastnn, name)(**params).fit(X, y, sample_weight=sample_weight)
    theirs = getattr(sk, name)(**params).fit(X, y, sample_weight=sample_weight)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    assert max_difference(ours, theirs) < 1e-12
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    if theirs.validation_scores_ is None:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-12)
    else:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-12)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)


def test_a_random_state_draws_scikit_learns_initial_weights(digits):
    X, y = digits
    for activation in ("relu", "logistic"):
        ours = MLPClassifier((7, 5), activation, max_iter=1, random_state=11, solver="sgd", learning_rate_init=1e-12)
        theirs = sk.MLPClassifier(
            (7, 5), activation, max_iter=1, random_state=11, solver="sgd", learning_rate_init=1e-12
        )
        assert max_difference(ours.fit(X, y), theirs.fit(X, y)) < 1e-12


def test_lbfgs_takes_scikit_learns_first_steps(digits):
    """The same objective and gradient, packed in scikit-learn's order: L-BFGS-B's iterates agree
    until rounding differences grow (a nonconvex problem amplifies them after ~20 steps)."""
    X, y = digits
    ours = MLPClassifier(solver="lbfgs", max_iter=10, random_state=1).fit(X, y)
    theirs = sk.MLPClassifier(solver="lbfgs", max_iter=10, random_state=1).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 10
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert max_difference(ours, theirs) < 1e-9


def test_lbfgs_gradient_matches_central_differences():
    """What scikit-learn's test_gradient checks through its private method, on fastnn's objective:
    every activation, softmax and logistic heads, L2, and sample weights."""
    rng = np.random.RandomState(42)
    X = rng.rand(5, 10)
    for n_labels in (2, 3):
        y = 1 + np.mod(np.arange(5) + 1, n_labels)
        for activation in ("identity", "logistic", "tanh", "relu"):
            clf = MLPClassifier(10, activation, solver="lbfgs", alpha=1e-5, max_iter=1, random_state=1).fit(X, y)
            net = clf._net
            Y = clf._label_binarizer.transform(y).astype(bool)
            objective = FullBatch(
                net, X, clf._targets(net.head, Y, rng.uniform(0.5, 2, 5), np.float64), clf.alpha, "numpy"
            )
            theta = objective.pack()
            _, grad = objective(theta)
            eps, numeric = 1e-5, np.empty_like(theta)
            for i in range(theta.size):
                step = np.zeros_like(theta)
                step[i] = eps
                numeric[i] = (objective(theta + step)[0] - objective(theta - step)[0]) / (2 * eps)
            np.testing.assert_allclose(grad, numeric, atol=1e-7)


# --- fastnn's rules ----------------------------------------------------------------------------


def test_partial_fit_call_k_trains_exactly_fits_epoch_k(digits):
    X, y = digits
    params = dict(solver="adam", random_state=0, batch_size=64, tol=0)
    fitted = MLPRegressor(max_iter=5, **params).fit(X, y.astype(float))
    stepped = MLPRegressor(**params)
    for _ in range(5):
        stepped.partial_fit(X, y.astype(float))
    assert max_difference(fitted, stepped) == 0.0
    assert stepped.t_ == fitted.t_ == 5 * len(X) and stepped.n_iter_ == 1


def test_pickled_mid_training_continues_exactly(digits):
    X, y = digits
    clf = MLPClassifier(random_state=0, batch_size=64).partial_fit(X, y, classes=[0, 1, 2])
    copy = pickle.loads(pickle.dumps(clf))
    for model in (clf, copy):
        model.partial_fit(X, y)
    assert max_difference(clf, copy) == 0.0  # Adam's moments and step count came along
    np.testing.assert_array_equal(clf.predict_proba(X), copy.predict_proba(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_and_predictions_follow_the_inputs_dtype(digits, dtype):
    X, y = digits
    reg = MLPRegressor(max_iter=3, random_state=0).fit(X.astype(dtype), y)
    assert {c.dtype for c in reg.coefs_ + reg.intercepts_} == {np.dtype(dtype)}
    assert reg.predict(X).dtype == dtype  # whatever the dtype of the rows predicted


def test_dtype_float32_trains_float64_data_in_float32(digits):
    X, y = digits
    forced = MLPClassifier(max_iter=5, random_state=0, dtype="float32").fit(X, y)
    given = MLPClassifier(max_iter=5, random_state=0).fit(X.astype(np.float32), y)
    assert forced.coefs_[0].dtype == np.float32
    assert max_difference(forced, given) == 0.0


def test_sparse_X_fits_and_predicts_as_its_dense_rows(digits):
    X, y = digits
    dense = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    for matrix in (sp.csr_matrix, sp.csc_array):
        sparse = MLPClassifier(max_iter=5, random_state=0).fit(matrix(X), y)
        assert max_difference(dense, sparse) == 0.0
        np.testing.assert_array_equal(sparse.predict_proba(matrix(X)), dense.predict_proba(X))


def test_auto_backend_is_numpy_for_small_fits_and_numba_for_mnist_sized_ones():
    pick = auto.training_backend
    assert pick("auto", 150, [4, 100, 3], "adam", 200, 150) == "numpy"  # iris
    assert pick("auto", 1797, [64, 100, 10], "adam", 200, 200) == "numpy"  # digits
    assert pick("auto", 1797, [64, 100, 10], "lbfgs", 200, 200) == "numpy"
    assert pick("auto", 60000, [784, 100, 100, 10], "sgd", 200, 200) == "numba"  # bench_mnist
    assert pick("auto", 60000, [784, 100, 100, 10], "sgd", 10, 200) == "numba"
    assert pick("auto", 20000, [20, 10, 1], "sgd", 200, 1) == "numba"  # one row per step
    assert pick("numpy", 60000, [784, 100, 100, 10], "sgd", 200, 200) == "numpy"  # asked for
    assert auto.prediction_backend("auto") == "numpy" and auto.prediction_backend("numba") == "numba"


def test_small_numpy_fits_run_blas_on_one_thread():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = blas_threads()
    with auto.blas_threads_for("numpy", 200, [64, 100, 10]):  # digits
        assert blas_threads() == {1}
    with auto.blas_threads_for("numpy", 200, [784, 100, 100, 10]):  # MNIST's products keep every thread
        assert blas_threads() == before
    with auto.blas_threads_for("numba", 200, [64, 100, 10]):
        assert blas_threads() == before
    assert blas_threads() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_numba_backend_fits_what_the_numpy_backend_fits(digits, solver, dtype):
    X, y = digits
    fits = {
        backend: MLPClassifier(
            (16, 8), solver=solver, backend=backend, max_iter=5, random_state=0, learning_rate_init=0.01
        ).fit(X.astype(dtype), y)
        for backend in ("numpy", "numba")
    }
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    assert max_difference(fits["numpy"], fits["numba"]) < tolerance
    assert fits["numpy"].loss_ == pytest.approx(fits["numba"].loss_, rel=tolerance)


# --- fastnn's extras ---------------------------------------------------------------------------


def test_balanced_class_weight_is_the_same_as_its_sample_weights(digits):
    X, y = digits
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:20]]  # class 2 is rare
    X, y = X[keep], y[keep]
    weights = len(y) / (3 * np.bincount(y))[y]
    balanced = MLPClassifier(max_iter=5, random_state=0, class_weight="balanced").fit(X, y)
    weighted = MLPClassifier(max_iter=5, random_state=0).fit(X, y, sample_weight=weights)
    assert max_difference(balanced, weighted) < 1e-14
    by_dict = MLPClassifier(max_iter=5, random_state=0, class_weight={2: 3.0}).fit(X, y, sample_weight=weights)
    twice = MLPClassifier(max_iter=5, random_state=0).fit(X, y, sample_weight=weights * np.where(y == 2, 3.0, 1.0))
    assert max_difference(by_dict, twice) < 1e-14
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_validation_loss_curve_is_the_held_out_loss_of_each_epoch(digits, monkeypatch):
    from fastnn.estimator import stochastic

    X, y = digits
    splits = []
    split = stochastic.split_validation
    monkeypatch.setattr(stochastic, "split_validation", lambda *a: splits.append(split(*a)) or splits[-1])
    clf = MLPClassifier(early_stopping=True, max_iter=8, tol=0, random_state=0).fit(X, y)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_ == 8
    (_, Y_train, _), (X_val, Y_val, _) = splits[0]
    # the fit ends on the best epoch's weights: its held-out loss is the log loss they give
    best = int(np.argmax(clf.validation_scores_))
    assert clf.validation_loss_curve_[best] == pytest.approx(log_loss(Y_val, clf.predict_proba(X_val)), rel=1e-9)
    # multiclass splits are stratified (as scikit-learn documents): each class keeps its share
    np.testing.assert_allclose(Y_val.mean(axis=0), Y_train.mean(axis=0), atol=0.02)
    assert MLPClassifier(max_iter=2).fit(X, y).validation_loss_curve_ is None


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_step_schedules_run_over_max_iter_epochs(schedule):
    clf = MLPClassifier(solver="sgd", learning_rate=schedule, learning_rate_init=0.2, max_iter=4)
    state = type("State", (), {"epoch": 0, "learning_rate": 0.2})()
    rates = []
    for epoch in range(6):  # two epochs past max_iter (partial_fit) keep the final rate
        state.epoch = epoch
        rates.append(step_rates(clf, state, 3))
    expected = learning_rates(schedule, 0.2, 12)
    np.testing.assert_array_equal(np.concatenate(rates[:4]), expected)
    assert (np.concatenate(rates[4:]) == expected[-1]).all()


def test_step_schedules_train_and_differ_from_a_constant_rate(digits):
    X, y = digits
    fits = {
        s: MLPClassifier(solver="sgd", learning_rate=s, learning_rate_init=0.1, max_iter=10, tol=0, random_state=0).fit(
            X, y
        )
        for s in ("constant", "cosine", "onecycle")
    }
    assert fits["cosine"].score(X, y) > 0.95 and fits["onecycle"].score(X, y) > 0.95
    assert max_difference(fits["constant"], fits["cosine"]) > 1e-3


@pytest.mark.parametrize("names", [["zero", "one", "two"], ["no", "yes", "yes"]], ids=["3-classes", "binary"])
def test_network_saves_to_a_model_file_that_predicts_the_same(digits, tmp_path, names):
    X, y = digits
    labels = np.array(names)[y]
    clf = MLPClassifier((16, 8), max_iter=5, random_state=0).fit(X, labels)
    net, _ = load_network(save_network(clf.network_, tmp_path / "model.npz"))
    assert list(net.classes) == list(clf.classes_)
    np.testing.assert_allclose(net.predict_proba(X, "numpy"), clf.predict_proba(X), rtol=1e-6, atol=1e-12)
    assert (clf.classes_[net.predict(X, "numpy")] == clf.predict(X)).all()


def test_augmentation_trains_on_distorted_images_only():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="28x28"):
        MLPClassifier(4, max_iter=1, augment="affine").fit(rng.random((40, 10)), np.arange(40) % 2)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    plain = MLPClassifier(4, max_iter=2, random_state=0).fit(X, y)
    seen = MLPClassifier(4, max_iter=2, random_state=0, augment="affine").fit(X, y)
    assert max_difference(plain, seen) > 1e-4  # it trained on other images


def test_augmentation_needs_a_stochastic_solver_and_the_configs_ranges():
    X, y = np.zeros((10, 784), np.float32), np.arange(10) % 2
    with pytest.raises(ValueError, match="needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", augment="affine").fit(X, y)
    with pytest.raises(ValueError, match=r"augment_rotation must be in \[0, 180\] degrees, got 200"):
        MLPClassifier(augment="affine", augment_rotation=200).fit(X, y)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_flips_and_erasing_are_parameters_with_the_configs_defaults_and_rules(Estimator):
    from fastnn.config import TrainConfig

    params = Estimator().get_params()
    for name in ("augment_flip", "augment_erase", "augment_erase_area"):
        assert params[name] == getattr(TrainConfig(), name)
    X, y = np.zeros((10, 784), np.float32), np.arange(10) % 2
    with pytest.raises(ValueError, match=r"augment_flip=0\.5 needs augment=affine or augment=elastic"):
        Estimator(augment_flip=0.5).fit(X, y)
    with pytest.raises(ValueError, match=r"augment_erase must be a probability in \[0, 1\], got nan"):
        Estimator(augment="affine", augment_erase=float("nan")).fit(X, y)


def test_flips_and_erasing_change_training_and_an_older_pickle_loads_without_them():
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    affine = dict(max_iter=2, random_state=0, augment="affine", augment_rotation=0, augment_scale=0, augment_shear=0)
    plain = MLPClassifier(4, **affine).fit(X, y)
    flipped = MLPClassifier(4, **affine, augment_shift=0, augment_flip=1.0).fit(X, y)
    erased = MLPClassifier(4, **affine, augment_erase=1.0).fit(X, y)
    assert max_difference(plain, flipped) > 1e-4 and max_difference(plain, erased) > 1e-4
    state = plain.__getstate__()
    for name in ("augment_flip", "augment_erase", "augment_erase_area"):  # as pickled before they existed
        del state[name]
    old = MLPClassifier.__new__(MLPClassifier)
    old.__setstate__(state)
    assert (old.augment_flip, old.augment_erase, old.augment_erase_area) == (0.0, 0.0, 0.25)
    np.testing.assert_array_equal(old.predict(X), plain.predict(X))
    assert pickle.loads(pickle.dumps(flipped)).get_params() == flipped.get_params()


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_dropout_is_a_parameter_with_the_configs_default_and_rule(Estimator):
    from fastnn.config import TrainConfig

    assert Estimator().get_params()["dropout"] == TrainConfig().dropout == 0.0
    X, y = np.zeros((10, 4), np.float32), np.arange(10) % 2
    for bad in (1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got "):
            Estimator(dropout=bad).fit(X, y)
    with pytest.raises(ValueError, match=r"dropout=0\.5 drops hidden units in each mini-batch step: it needs a"):
        Estimator(solver="lbfgs", dropout=0.5).fit(X, y)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dropout_changes_training_but_not_prediction_and_an_older_pickle_loads_without_it(digits, backend):
    X, y = digits
    common = dict(max_iter=3, random_state=0, solver="sgd", learning_rate_init=0.1, backend=backend)
    plain = MLPClassifier((16, 8), **common).fit(X, y)
    dropped = MLPClassifier((16, 8), **common, dropout=0.4).fit(X, y)
    assert max_difference(plain, dropped) > 1e-3
    again = MLPClassifier((16, 8), **common, dropout=0.4).fit(X, y)
    assert max_difference(dropped, again) == 0.0  # the masks are keyed, not drawn from a state
    # off when predicting: a network built from the fitted weights gives the same probabilities
    net = fastnn.Network(dropped.coefs_, dropped.intercepts_, "relu", "softmax")
    np.testing.assert_allclose(dropped.predict_proba(X), net.predict_proba(X, backend), rtol=1e-12)
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))
    state = plain.__getstate__()
    del state["dropout"]  # as pickled before dropout existed
    old = MLPClassifier.__new__(MLPClassifier)
    old.__setstate__(state)
    assert old.dropout == 0.0
    np.testing.assert_array_equal(old.predict(X), plain.predict(X))
    assert pickle.loads(pickle.dumps(dropped)).get_params() == dropped.get_params()


def test_bad_parameters_raise_the_same_errors_as_scikit_learn(digits):
    X, y = digits
    for bad in (
        dict(alpha=-1),
        dict(solver="newton"),
        dict(batch_size=0),
        dict(momentum=2),
        dict(n_iter_no_change=0),
        dict(hidden_layer_sizes=(10, 0)),
        dict(learning_rate="warm"),
    ):
        errors = []
        for cls in (MLPClassifier, sk.MLPClassifier):
            with pytest.raises(ValueError) as info:
                cls(**bad).fit(X, y)
            # the allowed strings are listed from a set: compare them as a set
            errors.append(
                (type(info.value), re.sub(r"\{.*?\}", lambda m: str(sorted(m[0][1:-1].split(", "))), str(info.value)))
            )
        if bad != dict(learning_rate="warm"):  # fastnn lists its own two schedules among the options
            assert errors[0] == errors[1], bad


def test_poisson_loss_refuses_negative_targets(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="y >= 0"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(len(X)))


def test_diverging_fit_keeps_the_best_weights_or_says_so(digits):
    X, _ = digits
    y = X[:, 20] * 1e3
    params = dict(solver="sgd", learning_rate_init=10.0, activation="identity", random_state=0, max_iter=50)
    with pytest.warns(ConvergenceWarning, match="Training diverged"):
        reg = MLPRegressor(early_stopping=True, **params).fit(X, y)
    assert np.isnan(reg.validation_scores_[-1]) and reg.n_iter_ < 50
    assert all(np.isfinite(c).all() for c in reg.coefs_)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor(**params).fit(X, y)


def test_warnings_name_the_line_that_called_fit(digits):
    X, y = digits
    diverging = dict(
        solver="sgd", learning_rate_init=10.0, activation="identity", early_stopping=True, random_state=0, max_iter=50
    )
    cases = [
        (MLPClassifier(solver="lbfgs", max_iter=2), "lbfgs failed to converge"),
        (MLPClassifier(max_iter=2), "Maximum iterations"),
        (MLPClassifier(max_iter=2, batch_size=10_000), "batch_size"),
        (MLPRegressor(**diverging), "Training diverged"),
    ]
    for est, message in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, X[:, 20] * 1e3 if isinstance(est, MLPRegressor) else y)
        ours = [w for w in caught if message in str(w.message)]
        assert ours and all(w.filename == __file__ for w in ours), [(w.filename, w.message) for w in caught]


def test_verbose_prints_scikit_learns_lines(digits, capsys):
    X, y = digits
    MLPClassifier(max_iter=2, verbose=True).fit(X, y)
    MLPClassifier(solver="lbfgs", max_iter=2, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2"] * 2
    assert all(line.split(", loss = ")[1].replace(".", "").isdigit() for line in lines)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_docstrings_state_the_real_defaults(cls):
    signature = inspect.signature(cls.__init__).parameters
    stated = dict(re.findall(r"^    (\w+) : .*, default=(.+)$", cls.__doc__, re.M))
    assert len(stated) >= 25
    for name, text in stated.items():
        assert text == repr(signature[name].default).replace("'", '"'), name


def test_predict_before_fit_raises_not_fitted_error(digits):
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(digits[0])
    assert not hasattr(MLPClassifier(), "network_")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


def test_the_estimators_are_importable_from_fastnn():
    from fastnn.estimator import MLPClassifier as C
    from fastnn.estimator import MLPRegressor as R

    assert (fastnn.MLPClassifier, fastnn.MLPRegressor) == (C, R)
    assert {"MLPClassifier", "MLPRegressor"} <= set(fastnn.__all__)
