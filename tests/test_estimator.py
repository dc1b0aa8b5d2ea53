"""Tests for fastnn.estimator.MLPClassifier: scikit-learn's own estimator checks, the
conventions users rely on (labels, seeds, partial_fit, warm start, pipelines, grid
search), bad input, and the model-file round trip.

Everything runs on the NumPy backend and tiny data, except one Numba test.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnn import estimator as estimator_module
from fastnn.errors import FastnnError
from fastnn.estimator import MLPClassifier
from fastnn.model import TrainConfig, train
from fastnn.modelfile import load_network, save_network

from conftest import prototype_data


def small(**params) -> MLPClassifier:
    """A quick classifier: NumPy backend, few hidden units, fixed seed."""
    return MLPClassifier(**{"hidden": 16, "backend": "numpy", "max_iter": 5, "random_state": 0, **params})


@pytest.fixture(scope="module")
def data():
    """300 samples of 3 learnable classes with 20 features."""
    return prototype_data(n=300, d=20, c=3, noise=0.3, seed=1)


@pytest.fixture(scope="module")
def digits():
    """The first 600 of scikit-learn's bundled 8x8 digits (64 features, values 0-16)."""
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


# --- scikit-learn's estimator checks ---------------------------------------------

def expected_failed_checks(estimator) -> dict:
    """Checks MLPClassifier is known to fail, with the reason: none."""
    return {}


@parametrize_with_checks([MLPClassifier(backend="numpy")], expected_failed_checks=expected_failed_checks)
def test_passes_sklearn_estimator_check(estimator, check):
    check(estimator)


# --- labels, features, seeds ------------------------------------------------------

@pytest.mark.parametrize("names", [np.array(["cat", "dog", "emu"], dtype=object), np.array([3, 7, 11])],
                         ids=["strings", "non-contiguous-ints"])
def test_arbitrary_labels_are_learned_and_returned(data, names):
    X, y = data
    labels = names[y]
    clf = small().fit(X, labels)
    assert list(clf.classes_) == sorted(names.tolist())
    assert set(clf.predict(X).tolist()) <= set(names.tolist())
    assert clf.score(X, labels) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-10)


def test_int_random_state_trains_the_same_network_as_fastnn_train(data):
    X, y = data
    clf = small(random_state=7).fit(X, np.array(["a", "b", "c"])[y])
    net, _ = train(X, y, TrainConfig(hidden=16, epochs=5, seed=7, backend="numpy"))
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(getattr(clf.network_, name), getattr(net, name))


def test_random_state_none_draws_the_seed_from_numpys_global_rng(data):
    X, y = data
    np.random.seed(123)
    first = small(random_state=None).fit(X, y).network_.W1
    np.random.seed(123)
    again = small(random_state=None).fit(X, y).network_.W1
    other = small(random_state=None).fit(X, y).network_.W1  # global RNG has moved on
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_any_number_of_unnormalised_features(digits):
    X, y = digits  # 64 features, values 0..16: not pixels in [0, 1]
    clf = small(hidden=32, max_iter=20, batch_size=32, learning_rate_init=0.01).fit(X[::2], y[::2])
    assert clf.n_features_in_ == 64
    assert clf.score(X[::2], y[::2]) > 0.95
    assert clf.score(X[1::2], y[1::2]) > 0.7  # 300 training samples; chance is 0.1


def test_fitted_attributes_describe_the_run(data):
    X, y = data
    clf = small(max_iter=4).fit(X, y)
    assert clf.n_iter_ == 4 == len(clf.loss_curve_) == len(clf.history_.epochs)
    assert [row["epoch"] for row in clf.history_.epochs] == [1, 2, 3, 4]
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.network_.hidden == 16 and list(clf.network_.classes) == [0, 1, 2]


def test_verbose_prints_one_line_per_epoch(data, capsys):
    X, y = data
    small(max_iter=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]


# --- scikit-learn tools -----------------------------------------------------------

def test_grid_search_and_cross_val_score_over_a_pipeline_on_digits(digits):
    X, y = digits
    mlp = MLPClassifier(backend="numpy", max_iter=20, batch_size=32, random_state=0)
    pipe = Pipeline([("scale", MinMaxScaler()), ("mlp", mlp)])
    search = GridSearchCV(pipe, {"mlp__hidden": [8, 32]}, cv=3).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert len(means) == 2 and means[1] > means[0]  # 8 hidden units are too few for 10 digits
    assert search.best_params_ == {"mlp__hidden": 32} and search.best_score_ > 0.8
    assert search.best_estimator_[-1].hidden == 32 and search.best_estimator_[-1].network_.hidden == 32
    scores = cross_val_score(search.best_estimator_, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.75


# --- partial_fit and warm start -----------------------------------------------------

def test_partial_fit_needs_classes_first_then_trains_one_epoch_per_call(data):
    X, y = data
    clf = small()
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    batches = np.array_split(np.arange(300), 3)
    for i in range(3):
        for idx in batches:
            clf.partial_fit(X[idx], y[idx], classes=[0, 1, 2] if i == 0 else None)
    assert clf.n_iter_ == 9 == len(clf.loss_curve_)
    assert [row["epoch"] for row in clf.history_.epochs] == list(range(1, 10))
    assert clf.score(X, y) > 0.95
    with pytest.raises(ValueError, match="not the same as classes_"):
        clf.partial_fit(X, y, classes=[0, 1, 5])
    with pytest.raises(ValueError, match="not seen in classes_"):
        clf.partial_fit(X[:3], np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :5], y)


def test_partial_fit_with_classes_absent_from_the_first_batch(data):
    X, y = data
    clf = small().partial_fit(X[y != 2], y[y != 2], classes=np.array([0, 1, 2]))
    assert clf.predict_proba(X).shape == (300, 3)
    clf.partial_fit(X, y)
    assert set(clf.predict(X)) <= {0, 1, 2}


def test_failed_training_leaves_the_fitted_state_unchanged(data, monkeypatch):
    X, y = data
    clf = small().fit(X, y)
    before = clf.predict_proba(X)

    def diverging_train(X, y, config, *, network=None, **kwargs):
        if network is not None:
            network.W1[...] = np.nan  # what a diverging run does to the weights it is given
        raise FastnnError("training diverged")

    monkeypatch.setattr(estimator_module, "train", diverging_train)
    with pytest.raises(ValueError, match="diverged"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="diverged"):
        clf.fit(X, np.array(["a", "b", "c"])[y])
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    assert clf.n_iter_ == 5 and clf.classes_.tolist() == [0, 1, 2]


def test_warm_start_continues_from_the_previous_network(data):
    X, y = data
    cold = small(max_iter=2).fit(X, y)
    warm = small(max_iter=2, warm_start=True).fit(X, y)
    first_run_W1 = warm.network_.W1.copy()
    warm.fit(X, y)
    assert warm.n_iter_ == 4 and len(warm.loss_curve_) == 4
    assert not np.array_equal(warm.network_.W1, first_run_W1)
    # A continued run starts where the first ended: its first epoch beats a fresh first epoch.
    assert warm.loss_curve_[2] < cold.loss_curve_[0]
    with pytest.raises(ValueError, match="same classes"):
        warm.fit(X[y < 2], y[y < 2])


# --- optional trainer features ----------------------------------------------------

def test_optimizer_parameters_reach_the_train_config(data, monkeypatch):
    seen = []

    def spy(X, y, config, **kwargs):
        seen.append(config)
        return train(X, y, config, **kwargs)

    monkeypatch.setattr(estimator_module, "train", spy)
    X, y = data
    small(optimizer="adam", momentum=0.8, weight_decay=1e-4, schedule="cosine",
          learning_rate_init=0.01).fit(X, y)
    config = seen[0]
    assert (config.optimizer, config.momentum, config.weight_decay, config.schedule, config.lr) == \
        ("adam", 0.8, 1e-4, "cosine", 0.01)
    with pytest.raises(ValueError, match="optimizer"):
        small(optimizer="rmsprop").fit(X, y)


def test_early_stopping_holds_out_a_validation_split(data):
    X, y = data
    clf = small(max_iter=30, early_stopping=True, validation_fraction=0.2, n_iter_no_change=2).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ <= 30
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    assert clf.history_.best_epoch is not None
    assert clf.validation_scores_[clf.history_.best_epoch - 1] == clf.best_validation_score_


# --- bad input ------------------------------------------------------------------------

X4 = np.arange(8, dtype=float).reshape(4, 2)
Y4 = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("X, y, match", [
    (np.where(X4 == 3, np.nan, X4), Y4, "NaN"),
    (np.where(X4 == 3, np.inf, X4), Y4, "infinity"),
    (np.full((4, 2), 1e300), Y4, "too large"),          # finite in float64, infinite as float32
    (X4, Y4[:3], "inconsistent numbers of samples"),
    (X4, np.ones(4), "1 class"),
    (np.array([["a", "b"]] * 4, dtype=object), Y4, "could not convert string"),
    (np.empty((0, 2)), np.empty(0), "0 sample"),
    (X4, np.array([0.5, 1.5, 0.5, 2.5]), "Unknown label type"),
    (X4[:, 0], Y4, "Expected 2D array"),
], ids=["nan", "inf", "overflow", "lengths", "one-class", "strings", "empty", "continuous-y", "1d-X"])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_fit_rejects_bad_input_with_value_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        small().fit(X, y)


@pytest.mark.parametrize("param, value", [("max_iter", 0), ("hidden", -1), ("backend", "gpu"),
                                          ("learning_rate_init", 0.0), ("batch_size", 1.5),
                                          ("validation_fraction", 1.0), ("random_state", -1)])
def test_fit_rejects_bad_parameters_with_value_error(param, value):
    clf = small(**{param: value})  # the constructor never validates
    assert clf.get_params()[param] == value
    with pytest.raises(ValueError):
        clf.fit(X4, Y4)


def test_predict_before_fit_raises_not_fitted_error():
    for method in ("predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(NotFittedError):
            getattr(small(), method)(X4)


def test_predict_with_the_wrong_number_of_features_raises_value_error(data):
    X, y = data
    clf = small().fit(X, y)
    with pytest.raises(ValueError, match="X has 19 features, but MLPClassifier is expecting 20"):
        clf.predict(X[:, :19])
    with pytest.raises(ValueError, match="could not convert string"):
        clf.predict(np.full((2, 20), "x", dtype=object))


# --- model files ----------------------------------------------------------------------

def test_save_then_load_gives_identical_predictions_with_string_labels(data, tmp_path):
    X, y = data
    labels = np.array(["zero", "one", "two"], dtype=object)[y]
    clf = small().fit(X, labels)
    path = save_network(clf.network_, tmp_path / "model.npz")
    net, _ = load_network(path)
    loaded = MLPClassifier.from_network(net, backend="numpy")
    assert list(loaded.classes_) == list(clf.classes_) and loaded.n_features_in_ == 20
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.score(X, labels) == clf.score(X, labels)
    loaded.partial_fit(X, labels)  # a loaded model can go on learning
    assert loaded.n_iter_ == 1


# --- the fast backend -------------------------------------------------------------------

def test_numba_backend_learns_what_the_numpy_backend_learns(data):
    X, y = data
    pipe_np = Pipeline([("scale", StandardScaler()), ("mlp", small(hidden=32))]).fit(X, y)
    pipe_nb = Pipeline([("scale", StandardScaler()), ("mlp", small(hidden=32, backend="numba"))]).fit(X, y)
    a, b = pipe_np[-1].network_, pipe_nb[-1].network_
    # Same seed, same shuffles: the two backends train the same network up to float32 rounding.
    np.testing.assert_allclose(b.W2, a.W2, atol=2e-3)
    assert np.mean(pipe_nb.predict(X) == pipe_np.predict(X)) > 0.99
    assert pipe_nb.score(X, y) > 0.95
