"""Optimizers, schedules and early stopping.

The rules themselves are checked step by step against float64 in
``test_kernels.py`` (``test_update_follows_the_rule_for_several_steps``); this file
covers the optimizer objects (their rates, decay and state), the backends'
agreement over whole training chunks with a schedule, the schedules, and early
stopping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn.activations import make_targets
from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.layers import Layout
from fastnn.network import init_network
from fastnn.optimizers import OPTIMIZERS, make_optimizer
from fastnn.schedules import SCHEDULES, learning_rates
from fastnn.training import train

from conftest import prototype_data


def test_adam_folds_its_bias_correction_into_each_steps_rate():
    opt = make_optimizer("adam", Layout((3, 2)), momentum=0.9, beta2=0.999)
    rates = opt.rates(np.full(3, 0.01))
    t = np.arange(1, 4)
    np.testing.assert_allclose(rates, 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t), rtol=1e-15)
    opt.advance(3)
    assert opt.rates([0.01])[0] == pytest.approx(0.01 * math.sqrt(1 - 0.999**4) / (1 - 0.9**4))


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov"])
def test_the_other_rules_step_at_the_learning_rate_itself(kind):
    opt = make_optimizer(kind, Layout((3, 2)))
    opt.advance(7)
    np.testing.assert_array_equal(opt.rates([0.5, 0.25]), [0.5, 0.25])


def test_decay_is_weight_decay_plus_l2_over_the_batch_weight():
    opt = make_optimizer("sgd", Layout((3, 2)), weight_decay=1e-3, l2=0.5)
    assert opt.decay(200.0) == pytest.approx(1e-3 + 0.5 / 200)
    assert not opt.fused() and make_optimizer("sgd", Layout((3, 2))).fused()
    assert not make_optimizer("momentum", Layout((3, 2))).fused()


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_optimizer_state_round_trips_through_its_arrays(kind):
    layout = Layout((5, 4, 3))
    opt = make_optimizer(kind, layout)
    for buf in opt.state.values():
        buf.flat[...] = np.arange(layout.size)
    opt.advance(9)
    copy = make_optimizer(kind, layout)
    copy.load_state(opt.state_arrays())
    assert copy.t == 9
    for name in opt.state:
        np.testing.assert_array_equal(copy.state[name].flat, opt.state[name].flat)


def test_nesterov_is_not_plain_momentum(np_backend):
    """The two rules differ by far more than the kernel tests' tolerances allow."""
    results = []
    for kind in ("momentum", "nesterov"):
        net = init_network(4, 3, 2, 0)
        opt = make_optimizer(kind, net.layout)
        grads = net.params.like()
        grads.flat[...] = 0.5
        for _ in range(2):
            np_backend.update(net.params, grads, opt, 0.1)
        results.append(net.params.flat.copy())
    assert np.abs(results[0] - results[1]).max() > 1e-2


def test_unknown_optimizer_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="sgd, momentum, nesterov, adam"):
        make_optimizer("rmsprop", Layout((3, 2)))


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_backends_agree_over_training_chunks_with_each_optimizer_and_a_schedule(nb, np_backend, kind):
    X, y = prototype_data(n=600, d=784, c=10)
    perm = np.empty(len(y), np.int64)
    np_backend.permutation(len(y), 0, 0, perm)
    lrs = learning_rates("onecycle", 2e-3 if kind == "adam" else 0.1, 2 * 6)
    targets = make_targets("softmax", y, 10)
    results = []
    for be in (np_backend, nb):
        net = init_network(784, (40, 24), 10, 0)
        opt = make_optimizer(kind, net.layout, weight_decay=1e-4)
        ws = be.make_workspace(net, 100)
        out = [be.train_steps(net, X, targets, perm, 0, 600, 100, lrs[6 * k : 6 * k + 6], opt, ws) for k in range(2)]
        results.append((out, net, opt.t))
    (out_a, net_a, t_a), (out_b, net_b, t_b) = results
    assert t_a == t_b == 12
    for (loss_a, correct_a), (loss_b, correct_b) in zip(out_a, out_b):
        assert loss_b == pytest.approx(loss_a, rel=1e-5)
        assert abs(correct_a - correct_b) <= 1
    a, b = net_a.params.flat, net_b.params.flat
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * max(1.0, float(np.abs(a).max())))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_start_end_and_peak_where_documented(schedule):
    lr = learning_rates(schedule, 0.5, 1000)
    assert lr.shape == (1000,) and np.all(lr >= 0) and np.all(lr <= 0.5 + 1e-12)
    if schedule == "constant":
        assert np.all(lr == 0.5)
    elif schedule == "step":
        assert (lr[499], lr[500], lr[749], lr[750]) == pytest.approx((0.5, 0.05, 0.05, 0.005))
    elif schedule == "cosine":
        assert lr[0] == 0.5 and lr[-1] < 1e-5 and np.all(np.diff(lr) <= 0)
    else:
        assert lr[0] == pytest.approx(0.5 / 25) and lr.argmax() == 300 and lr[-1] < 1e-4


def test_unknown_optimizer_or_schedule_is_refused():
    X, y = prototype_data(n=100)
    for bad in (dict(optimizer="rmsprop"), dict(schedule="linear"), dict(momentum=1.0), dict(patience=-1)):
        with pytest.raises(FastnnError):
            train(X, y, TrainConfig(hidden=4, epochs=1, **bad))


def test_early_stopping_restores_the_best_dev_epoch_of_a_deep_network(np_backend):
    X, y = prototype_data(n=800, noise=2.0)
    config = TrainConfig(hidden=(16, 12), epochs=25, batch_size=50, lr=1.0, backend="numpy", patience=2)
    net, history = train(X[:600], y[:600], config, X_dev=X[600:], y_dev=y[600:])
    dev = [row["dev_accuracy"] for row in history.epochs]
    assert dev[history.best_epoch - 1] == max(dev)
    assert np.mean(net.predict(X[600:], "numpy") == y[600:]) == pytest.approx(max(dev))


def test_early_stopping_restores_the_best_dev_epoch(backend):
    X, y = prototype_data(n=800, noise=2.0)
    name = backend.NAME
    config = TrainConfig(hidden=16, epochs=25, batch_size=50, lr=2.0, backend=name, patience=2)
    net, history = train(X[:600], y[:600], config, X_dev=X[600:], y_dev=y[600:])
    dev = [row["dev_accuracy"] for row in history.epochs]
    assert dev[history.best_epoch - 1] == max(dev)
    if history.stopped_early:
        assert len(dev) - history.best_epoch == 2
    assert np.mean(net.predict(X[600:], name) == y[600:]) == pytest.approx(max(dev))
