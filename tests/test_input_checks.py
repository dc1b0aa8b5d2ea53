"""Compiled kernels index without bounds checks, so the numba backend's public functions
must refuse inconsistent arrays before they reach compiled code; the reference runs the
same checks (fastnn.backends._checks), so both refuse a bad call with the same error."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.activations import make_targets
from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.network import Network, init_network
from fastnn.optimizers import make_optimizer
from fastnn.training import train

from conftest import prototype_data


def test_predict_refuses_an_output_of_the_wrong_size(backend):
    net = init_network(784, (8, 5), 10, 0)
    X = np.zeros((1000, 784), np.float32)
    with pytest.raises(ValueError, match=r"^out must have shape \(1000, 10\), got \(3, 10\)$"):
        backend.predict(net, X, np.empty((3, 10), np.float32))


def test_predict_refuses_inputs_of_the_wrong_width(backend):
    net = init_network(784, 8, 10, 0)
    with pytest.raises(ValueError, match=r"^X must have shape \(n, 784\), got \(5, 700\)$"):
        backend.predict(net, np.zeros((5, 700), np.float32), np.empty((5, 10), np.float32))


def test_permutation_refuses_a_short_output(nb):
    with pytest.raises(ValueError, match="length 100"):
        nb.permutation(100, 0, 0, np.empty(50, np.int64))


def test_train_steps_refuses_labels_beyond_the_classes(backend):
    X, y = prototype_data(n=200)
    y = y.copy()
    y[7] = 10  # the network has 10 outputs: 0..9
    net = init_network(784, 8, 10, 0)
    perm = np.arange(200, dtype=np.int64)
    with pytest.raises(ValueError, match=r"^labels must lie in \[0, 10\), found 0\.\.10$"):
        backend.train_steps(
            net,
            X,
            make_targets("softmax", y, 10),
            perm,
            0,
            200,
            50,
            np.full(4, 0.1),
            make_optimizer("sgd", net.layout),
            backend.make_workspace(net, 50),
        )


def test_train_steps_refuses_a_permutation_index_beyond_the_data(backend):
    X, y = prototype_data(n=100)
    net = init_network(784, 8, 10, 0)
    perm = np.arange(100, dtype=np.int64)
    perm[50] = 100
    with pytest.raises(IndexError, match="permutation index out of range"):
        backend.train_steps(
            net,
            X,
            make_targets("softmax", y, 10),
            perm,
            0,
            100,
            50,
            np.full(2, 0.1),
            make_optimizer("sgd", net.layout),
            backend.make_workspace(net, 50),
        )


def test_train_steps_refuses_a_learning_rate_per_step_of_the_wrong_count(backend):
    X, y = prototype_data(n=100)
    net = init_network(784, 8, 10, 0)
    with pytest.raises(ValueError, match="expected 2 learning rates, one per batch"):
        backend.train_steps(
            net,
            X,
            make_targets("softmax", y, 10),
            np.arange(100),
            0,
            100,
            50,
            np.full(3, 0.1),
            make_optimizer("sgd", net.layout),
            backend.make_workspace(net, 50),
        )


def test_network_refuses_class_labels_that_do_not_match_its_outputs():
    net = init_network(784, 8, 3, 0)
    with pytest.raises(FastnnError, match="needs 3 classes"):
        Network(net.coefs, net.intercepts, classes=["a", "b"])
    named = Network(net.coefs, net.intercepts, classes=["a", "b", "c"])
    assert named.classes.tolist() == ["a", "b", "c"] and named.class_names == ("a", "b", "c")


def test_network_refuses_layers_that_do_not_fit_together():
    with pytest.raises(FastnnError, match="do not fit together"):
        Network([np.zeros((4, 3)), np.zeros((2, 2))], [np.zeros(3), np.zeros(2)])


def test_network_refuses_an_unknown_activation_or_head():
    net = init_network(4, 3, 2, 0)
    with pytest.raises(FastnnError, match="unknown activation 'gelu'"):
        Network(net.coefs, net.intercepts, activation="gelu")
    with pytest.raises(FastnnError, match="unknown output head 'softplus'"):
        Network(net.coefs, net.intercepts, head="softplus")


def test_early_stopping_without_a_dev_set_is_refused():
    X, y = prototype_data(n=100)
    with pytest.raises(FastnnError, match="needs a dev split"):
        train(X, y, TrainConfig(hidden=4, epochs=2, patience=2))
