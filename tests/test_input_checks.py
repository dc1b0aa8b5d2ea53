"""Compiled kernels index without bounds checks, so the numba backend's public functions
must refuse inconsistent arrays before they reach compiled code; the reference runs the
same checks (fastnn.backends._checks), so both refuse a bad call with the same error."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.errors import FastnnError
from fastnn.model import Network, TrainConfig, init_network, train

from conftest import prototype_data


def test_predict_logits_refuses_an_output_of_the_wrong_size(backend):
    net = init_network(784, 8, 10, 0)
    X = np.zeros((1000, 784), np.float32)
    with pytest.raises(ValueError, match=r"^logits has shape \(3, 10\), which does not match Xb "
                                         r"\(shape \(1000, 784\)\)$"):
        backend.predict_logits(X, net.W1, net.b1, net.W2, net.b2, np.empty((3, 10), np.float32))


def test_predict_logits_refuses_inputs_of_the_wrong_width(backend):
    net = init_network(784, 8, 10, 0)
    with pytest.raises(ValueError, match=r"^W1 has shape \(784, 8\), which does not match Xb"):
        backend.predict_logits(np.zeros((5, 700), np.float32), net.W1, net.b1, net.W2, net.b2,
                               np.empty((5, 10), np.float32))


def test_permutation_refuses_a_short_output(nb):
    with pytest.raises(ValueError, match="length 100"):
        nb.permutation(100, 0, 0, np.empty(50, np.int64))


def test_softmax_xent_refuses_labels_beyond_the_classes(backend):
    logits = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"^labels must lie in \[0, 3\), found 0\.\.3$"):
        backend.softmax_xent(logits, np.array([0, 1, 2, 3]), np.empty_like(logits))


def test_train_steps_refuses_labels_beyond_the_classes(backend):
    X, y = prototype_data(n=200)
    y = y.copy()
    y[7] = 10  # the network has 10 outputs: 0..9
    net = init_network(784, 8, 10, 0)
    perm = np.arange(200, dtype=np.int64)
    with pytest.raises(ValueError, match=r"^labels must lie in \[0, 10\), found 0\.\.10$"):
        backend.train_steps(X, y, perm, 0, 200, 50, 0.1, net.W1, net.b1, net.W2, net.b2,
                            backend.make_workspace(50, 784, 8, 10))


def test_network_refuses_class_labels_that_do_not_match_its_outputs():
    net = init_network(784, 8, 3, 0)
    with pytest.raises(FastnnError, match="needs 3 classes"):
        Network(net.W1, net.b1, net.W2, net.b2, classes=["a", "b"])
    named = Network(net.W1, net.b1, net.W2, net.b2, classes=["a", "b", "c"])
    assert named.classes.tolist() == ["a", "b", "c"] and named.class_names == ("a", "b", "c")


def test_early_stopping_without_a_dev_set_is_refused():
    X, y = prototype_data(n=100)
    with pytest.raises(FastnnError, match="needs a dev split"):
        train(X, y, TrainConfig(hidden=4, epochs=2, patience=2))
