"""Tests for fastnn.compat: the notebook's ``mini_batch_gradient_descent`` and
``test_prediction`` give what the Network path gives, in the notebook's layout."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import compat
from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.network import init_network
from fastnn.plots import show_sample
from fastnn.training import train

from conftest import prototype_data

N = 200


@pytest.fixture(scope="module")
def rows():
    """``(X (200, 784), y)``: fastnn's layout, samples as rows."""
    return prototype_data(n=N, d=784, c=10, noise=0.5, seed=3)


@pytest.fixture(scope="module")
def trained(rows):
    """The notebook call on the notebook's layout, and the network fastnn.train makes from the same data."""
    X, y = rows
    params = compat.mini_batch_gradient_descent(
        X.T, y, alpha=0.1, iterations=3, batch_size=32, hidden=10, backend="numpy", seed=5
    )
    net, _ = train(X, y, TrainConfig(hidden=10, epochs=3, batch_size=32, lr=0.1, seed=5, backend="numpy"), n_classes=10)
    return params, net


def test_layout_round_trip_is_exact():
    net = init_network(784, 12, 10, seed=1)
    net.intercepts[0][:] = np.arange(12)
    net.intercepts[1][:] = -np.arange(10)
    W1, b1, W2, b2 = compat.from_network(net)
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((12, 784), (12, 1), (10, 12), (10, 1))
    np.testing.assert_array_equal(W1, net.coefs[0].T)
    np.testing.assert_array_equal(b1[:, 0], net.intercepts[0])
    back = compat.to_network(W1, b1, W2, b2)
    assert back.describe() == "784-12-10 relu/softmax"
    np.testing.assert_array_equal(back.params.flat, net.params.flat)
    W1[0, 0] = 99.0  # copies, not views of the network
    assert net.coefs[0][0, 0] != 99.0


def test_a_float64_network_comes_out_as_the_float32_the_notebook_layout_documents():
    net = init_network(784, 5, 10, seed=2, dtype=np.float64)
    params = compat.from_network(net)
    assert [p.dtype for p in params] == [np.float32] * 4
    np.testing.assert_array_equal(params[0], net.coefs[0].T.astype(np.float32))


@pytest.mark.parametrize(
    "hidden, activation, head, n_outputs",
    [
        ((16, 8), "relu", "softmax", 10),
        ((), "relu", "softmax", 10),
        ((12,), "tanh", "softmax", 10),
        ((12,), "relu", "logistic", 1),
    ],
)
def test_only_the_notebooks_kind_of_network_has_its_layout(hidden, activation, head, n_outputs):
    net = init_network(784, hidden, n_outputs, seed=0, activation=activation, head=head)
    with pytest.raises(
        FastnnError, match=f"one ReLU hidden layer and a softmax output; this network is {net.describe()}"
    ):
        compat.from_network(net)


def test_mini_batch_gradient_descent_trains_exactly_what_fastnn_train_does(trained):
    params, net = trained
    for got, want in zip(params, compat.from_network(net)):
        np.testing.assert_array_equal(got, want)


def test_samples_as_rows_give_the_same_result_as_the_notebook_layout(rows, trained):
    X, y = rows
    params, _ = trained
    again = compat.mini_batch_gradient_descent(X, y, alpha=0.1, iterations=3, batch_size=32, seed=5, backend="numpy")
    for a, b in zip(params, again):
        np.testing.assert_array_equal(a, b)


def test_compat_predictions_equal_the_network_path(rows, trained, capsys):
    X, y = rows
    params, net = trained
    np.testing.assert_array_equal(compat.make_predictions(X.T, *params), net.predict(X))
    assert np.mean(compat.make_predictions(X.T, *params) == y) > 0.7  # it learned (chance: 0.1)
    for index in (0, 17, N - 1):
        got = compat.test_prediction(index, *params, X=X.T, Y=y)
        printed = capsys.readouterr().out
        assert printed == f"Prediction: {got['prediction']}, Label: {y[index]}\n"
        assert got == show_sample(net, X, index, y)


def test_test_prediction_reads_the_notebooks_globals(rows, trained, monkeypatch, capsys):
    X, y = rows
    params, net = trained
    monkeypatch.setitem(globals(), "X_train", X.T)
    monkeypatch.setitem(globals(), "Y_train", y)
    got = compat.test_prediction(4, *params)
    assert got["label"] == y[4] and got["prediction"] == net.predict(X[4:5])[0]
    assert capsys.readouterr().out.startswith("Prediction: ")
    monkeypatch.delitem(globals(), "X_train")
    with pytest.raises(ValueError, match="pass X"):
        compat.test_prediction(4, *params)


def test_test_prediction_without_labels_prints_the_prediction_only(rows, trained, capsys):
    X, _ = rows
    params, net = trained
    got = compat.test_prediction(3, *params, X=X)
    assert capsys.readouterr().out == f"Prediction: {net.predict(X[3:4])[0]}\n"
    assert got["label"] is None


def test_the_package_test_prediction_is_the_notebooks():
    import fastnn

    assert fastnn.test_prediction is compat.test_prediction


def test_integer_pixels_train_like_their_normalised_floats(rows):
    X, y = rows
    raw = np.round(X * 255).astype(np.uint8)
    a = compat.mini_batch_gradient_descent(raw.T, y, iterations=1, seed=2)
    b = compat.mini_batch_gradient_descent(raw.T.astype(np.float32) / 255, y, iterations=1, seed=2)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


def test_square_input_is_read_as_the_notebook_layout():
    X, y = prototype_data(n=784, d=784, c=10, noise=0.5, seed=4)
    params = compat.mini_batch_gradient_descent(X.T, y, iterations=1, seed=0)
    net, _ = train(X, y, TrainConfig(hidden=10, epochs=1, lr=0.1, seed=0), n_classes=10)
    np.testing.assert_array_equal(params[0], net.coefs[0].T)


def test_verbose_prints_the_notebooks_progress(rows, capsys):
    X, y = rows
    compat.mini_batch_gradient_descent(X.T, y, iterations=2, verbose=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0::2] == ["Iteration: 1", "Iteration: 2"] and out[1].startswith("Accuracy: ")


@pytest.mark.parametrize(
    "X, Y, match",
    [
        (np.zeros((100, 50)), np.zeros(50, int), "784"),
        (np.zeros((784, 30)), np.zeros(29, int), "one label per sample"),
        (np.zeros((784, 30)), np.full(30, 10), "labels must lie in 0..9"),
        (np.full((784, 30), 300.0), np.zeros(30, int), "at most 255"),
    ],
)
def test_bad_inputs_raise_value_error(X, Y, match):
    with pytest.raises(ValueError, match=match):
        compat.mini_batch_gradient_descent(X, Y, iterations=1)


def test_to_network_rejects_mismatched_shapes():
    W1, b1, W2, b2 = compat.from_network(init_network(784, 6, 10, seed=0))
    with pytest.raises(ValueError, match="b1 must have shape"):
        compat.to_network(W1, b1[:3], W2, b2)
    with pytest.raises(ValueError, match="W2 must have shape"):
        compat.to_network(W1, b1, W2.T, b2)
