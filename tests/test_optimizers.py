"""Optimizers, schedules and early stopping: both backends against a float64 reference.

``naive_step`` below is the textbook form of each rule in float64; the backends
compute in float32, so agreement is within a few float32 roundings of the
values involved (relative 1e-5 of the parameter scale over a handful of steps),
far below the size of a wrong rule (e.g. Nesterov computed as plain momentum
moves parameters by ~lr * mu * m, 1e-2 here).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.backends import _optim
from fastnn.errors import FastnnError
from fastnn.model import TrainConfig, init_network, train
from fastnn.schedules import SCHEDULES, learning_rates

from conftest import prototype_data


def naive_step(p, g, m, v, lr, kind, mu, b2, eps, wd, t):
    """One step of each rule in float64, written as in the papers."""
    g = g + wd * p
    if kind == "sgd":
        return p - lr * g, m, v
    if kind in ("momentum", "nesterov"):
        m = mu * m + g
        return p - lr * (g + mu * m if kind == "nesterov" else m), m, v
    m = mu * m + (1 - mu) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - mu ** t), v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@pytest.mark.parametrize("kind", _optim.OPTIMIZERS)
@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_apply_update_follows_the_rule_for_several_steps(backend, kind, wd):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((7, 33)).astype(np.float32)
    m = np.zeros_like(p) if kind != "sgd" else np.zeros(0, np.float32)
    v = np.zeros_like(p) if kind == "adam" else np.zeros(0, np.float32)
    ref_p, ref_m, ref_v = p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape)
    state = _optim.OptimizerState(kind=_optim.OPTIMIZERS.index(kind), momentum=0.9)
    lr = 1e-2 if kind == "adam" else 0.1
    for t in range(1, 6):
        g = rng.standard_normal(p.shape).astype(np.float32)
        bc1, bc2 = _optim.bias_corrections(state, t)
        backend.apply_update(p, g, m, v, lr, state.kind, 0.9, 0.999, 1e-8, wd, bc1, bc2)
        ref_p, ref_m, ref_v = naive_step(ref_p, g.astype(np.float64), ref_m, ref_v, lr, kind,
                                         0.9, 0.999, 1e-8, wd, t)
    np.testing.assert_allclose(p, ref_p, rtol=1e-5, atol=1e-5)
    if kind != "sgd":
        np.testing.assert_allclose(m, ref_m, rtol=1e-5, atol=1e-5)


def test_nesterov_is_not_plain_momentum(np_backend):
    """Guards the tolerance above: the two rules differ by far more than it allows."""
    p1 = np.ones(10, np.float32)
    p2 = p1.copy()
    g = np.full(10, 0.5, np.float32)
    m1, m2 = np.zeros_like(p1), np.zeros_like(p2)
    np_backend.apply_update(p1, g, m1, m1, 0.1, _optim.MOMENTUM, 0.9, 0.999, 1e-8, 0.0, 1.0, 1.0)
    np_backend.apply_update(p2, g, m2, m2, 0.1, _optim.NESTEROV, 0.9, 0.999, 1e-8, 0.0, 1.0, 1.0)
    assert np.abs(p1 - p2).min() > 1e-2


@pytest.mark.parametrize("kind", _optim.OPTIMIZERS)
def test_backends_agree_over_training_chunks_with_each_optimizer_and_a_schedule(nb, np_backend, kind):
    X, y = prototype_data(n=600, d=784, c=10)
    perm = np.empty(len(y), np.int64)
    np_backend.permutation(len(y), 0, 0, perm)
    lrs = learning_rates("onecycle", 2e-3 if kind == "adam" else 0.1, 2 * 6).astype(np.float32)
    results = []
    for be in (np_backend, nb):
        net = init_network(784, 40, 10, 0)
        params = (net.W1, net.b1, net.W2, net.b2)
        opt = _optim.make_optimizer(kind, params, weight_decay=1e-4)
        ws = be.make_workspace(100, 784, 40, 10)
        out = [be.train_steps(X, y, perm, 0, 600, 100, lrs[6 * k:6 * k + 6], *params, ws, opt) for k in range(2)]
        results.append((out, params, opt.t))
    (out_a, params_a, t_a), (out_b, params_b, t_b) = results
    assert t_a == t_b == 12
    for (loss_a, correct_a), (loss_b, correct_b) in zip(out_a, out_b):
        assert loss_b == pytest.approx(loss_a, rel=1e-5)
        assert abs(correct_a - correct_b) <= 1
    for a, b in zip(params_a, params_b):
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
