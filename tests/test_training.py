"""The training loop (:func:`fastnn.training.train`) with each backend: agreement at one and
two hidden layers, determinism, the epoch shuffle and partial batches, learning, history
records, and refusal of bad input."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from fastnn import training
from fastnn.backends import get_backend
from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.network import Network, init_network
from fastnn.training import train

import naive

# A few hundred steps: 3000 samples, 32 per batch (94 steps an epoch, the last one 24), 3 epochs;
# one hidden ReLU layer, and two tanh layers.
RUNS = {
    "one-hidden": dict(hidden=64, epochs=3, batch_size=32, lr=0.1, seed=1, log_every=10),
    "two-hidden-tanh": dict(hidden=(64, 32), activation="tanh", epochs=3, batch_size=32, lr=0.1, seed=1, log_every=10),
}

# Measured over that run: numba and numpy weights differ by at most 2e-7 (weights up to
# ~0.7, so 3e-7 relative), step losses by 1e-6 relative, accuracies not at all.  The
# tolerances below leave ~30x room for a different BLAS while staying far below what a
# wrong step does (a skipped or repeated batch moves weights by lr * gradient ~ 1e-3).
WEIGHT_REL = 1e-5
LOSS_REL = 1e-5


def _params(net):
    return list(net.coefs) + list(net.intercepts)


@pytest.fixture(scope="module")
def prototypes(make_data):
    """3000 training and 600 held-out samples of the same ten prototypes."""
    X, y = make_data(3600)
    return X[:3000], y[:3000], X[3000:], y[3000:]


@pytest.fixture(scope="module", params=list(RUNS))
def runs(prototypes, request):
    """A RUN trained once with each backend: backend name -> (network, history)."""
    X, y, X_dev, y_dev = prototypes
    return {
        name: train(X, y, TrainConfig(**RUNS[request.param], backend=name), X_dev=X_dev, y_dev=y_dev)
        for name in ("numpy", "numba")
    }


# --- agreement, learning, determinism ---------------------------------------------


def test_backends_agree_over_a_training_run(runs):
    (a, ha), (b, hb) = runs["numba"], runs["numpy"]
    assert a.sizes == b.sizes
    for i, (p, q) in enumerate(zip(_params(a), _params(b))):
        assert p.dtype == q.dtype == np.float32
        assert np.abs(p - q).max() <= WEIGHT_REL * np.abs(q).max(), i
    assert len(ha.epochs) == len(hb.epochs) == 3
    for ra, rb in zip(ha.epochs, hb.epochs):
        # a near-tie within float32 rounding may flip one prediction, not more
        assert abs(ra["train_accuracy"] - rb["train_accuracy"]) * 3000 <= 1
        assert abs(ra["dev_accuracy"] - rb["dev_accuracy"]) * 600 <= 1
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=LOSS_REL)
    assert [s["step"] for s in ha.steps] == [s["step"] for s in hb.steps]
    np.testing.assert_allclose([s["train_loss"] for s in ha.steps], [s["train_loss"] for s in hb.steps], rtol=LOSS_REL)


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_training_learns_the_prototype_classes(runs, prototypes, name):
    net, history = runs[name]
    X, y, X_dev, y_dev = prototypes
    rows = history.epochs
    assert rows[-1]["train_accuracy"] > 0.9 and rows[-1]["train_accuracy"] > rows[0]["train_accuracy"]  # chance: 0.1
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] / 5
    assert rows[-1]["dev_accuracy"] > 0.9
    assert np.mean(net.predict(X_dev, name) == y_dev) == rows[-1]["dev_accuracy"]


def test_same_seed_and_backend_give_bit_identical_runs(backend, prototypes):
    X, y = prototypes[0][:600], prototypes[1][:600]
    config = dict(hidden=32, epochs=2, batch_size=50, lr=0.1, backend=backend.NAME)
    (a, ha), (b, hb) = (train(X, y, TrainConfig(**config, seed=4)) for _ in range(2))
    for p, q in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(p, q)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(ha.epochs) == strip(hb.epochs)
    c, _ = train(X, y, TrainConfig(**config, seed=5))
    assert all(not np.array_equal(W, V) for W, V in zip(a.coefs, c.coefs))


# --- dropout ------------------------------------------------------------------------

DROPOUT_RUN = dict(hidden=(32, 16), activation="tanh", epochs=2, batch_size=50, lr=0.1, seed=2, dropout=0.3)


def test_backends_agree_over_a_training_run_with_dropout(prototypes):
    """The same masks in both backends (the run trains, and differs from the run without)."""
    X, y, X_dev, y_dev = (a[:600] for a in prototypes)
    (a, ha), (b, hb) = (train(X, y, TrainConfig(**DROPOUT_RUN, backend=name)) for name in ("numba", "numpy"))
    for i, (p, q) in enumerate(zip(_params(a), _params(b))):
        assert np.abs(p - q).max() <= WEIGHT_REL * np.abs(q).max(), i
    for ra, rb in zip(ha.epochs, hb.epochs):
        assert abs(ra["train_accuracy"] - rb["train_accuracy"]) * len(X) <= 1
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=LOSS_REL)
    plain, _ = train(X, y, TrainConfig(**{**DROPOUT_RUN, "dropout": 0.0}, backend="numpy"))
    assert all(np.abs(p - q).max() > 100 * WEIGHT_REL * np.abs(q).max() for p, q in zip(_params(a), _params(plain)))


def test_dropout_is_off_at_evaluation_and_in_saved_models(backend, prototypes, tmp_path):
    """A network trained with dropout predicts as any network with its weights does: the
    same probabilities every call, those of a fresh network and of its model file, and
    the float64 forward pass without masks."""
    from fastnn.modelfile import load_network, save_network

    X, y, X_dev, _ = (a[:400] for a in prototypes)
    net, _ = train(X, y, TrainConfig(**{**DROPOUT_RUN, "dropout": 0.5}, backend=backend.NAME))
    proba = net.predict_proba(X_dev, backend.NAME)
    np.testing.assert_array_equal(net.predict_proba(X_dev, backend.NAME), proba)
    fresh = Network(net.coefs, net.intercepts, net.activation, net.head)
    np.testing.assert_array_equal(fresh.predict_proba(X_dev, backend.NAME), proba)
    loaded, _ = load_network(save_network(net, tmp_path / "model.npz"))
    np.testing.assert_array_equal(loaded.predict_proba(X_dev, backend.NAME), proba)
    z = naive.predict(X_dev, [np.array(W) for W in net.coefs], [np.array(b) for b in net.intercepts], net.activation)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(proba, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)


def test_a_dropout_rate_of_zero_leaves_the_run_unchanged(backend, prototypes, monkeypatch):
    """The training loop hands no dropout at all to the kernels at rate 0 (so the run is the
    one before dropout existed), and one Dropout per epoch, keyed on the seed and epoch, above."""
    from fastnn import dropout

    X, y = prototypes[0][:200], prototypes[1][:200]
    seen = []

    def train_steps(*args):
        seen.append(args[10:])
        return backend.train_steps(*args)

    spy = types.SimpleNamespace(**{k: getattr(backend, k) for k in dir(backend) if not k.startswith("__")})
    spy.train_steps = train_steps
    monkeypatch.setattr(training, "get_backend", lambda name: spy)
    config = dict(hidden=8, epochs=2, batch_size=50, seed=7, backend=backend.NAME)
    train(X, y, TrainConfig(**config))
    assert set(seen) == {(None,)}
    seen.clear()
    train(X, y, TrainConfig(**config, dropout=0.25))
    assert seen == [(dropout.for_epoch(0.25, 7, 0),)] + [(dropout.for_epoch(0.25, 7, 1),)]


# --- the epoch shuffle and partial batches ------------------------------------------


def _spy_backend(real, calls):
    """The real backend, with train_steps recording what the loop asks it to do."""

    def train_steps(net, X, targets, perm, start, stop, batch_size, *rest):
        calls.append((perm.copy(), start, stop, batch_size))
        return real.train_steps(net, X, targets, perm, start, stop, batch_size, *rest)

    spy = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    spy.train_steps = train_steps
    return spy


def test_each_epoch_visits_every_sample_exactly_once(backend, monkeypatch):
    """1003 samples, batches of 64 (the 16th has 43), 3 batches per logged chunk."""
    n, bs, epochs, seed = 1003, 64, 2, 9
    calls = []
    monkeypatch.setattr(training, "get_backend", lambda name: _spy_backend(get_backend(name), calls))
    rng = np.random.default_rng(0)
    X, y = rng.random((n, 8), dtype=np.float32), rng.integers(0, 3, n)
    train(
        X, y, TrainConfig(hidden=4, epochs=epochs, batch_size=bs, lr=0.1, seed=seed, log_every=3, backend=backend.NAME)
    )
    per_epoch = math.ceil(n / (3 * bs))
    assert len(calls) == epochs * per_epoch
    orders = []
    for e in range(epochs):
        chunks = calls[e * per_epoch : (e + 1) * per_epoch]
        perm = chunks[0][0]
        np.testing.assert_array_equal(perm, naive.permutation(n, seed, e))
        starts, stops = [c[1] for c in chunks], [c[2] for c in chunks]
        assert starts == list(range(0, n, 3 * bs)) and starts[1:] == stops[:-1] and stops[-1] == n
        assert all(c[3] == bs and np.array_equal(c[0], perm) for c in chunks)
        visited = np.concatenate([perm[start:stop] for _, start, stop, _ in chunks])
        assert naive.is_permutation(visited, n)
        orders.append(visited)
    assert not np.array_equal(orders[0], orders[1])


@pytest.mark.parametrize(
    "hidden, activation, optimizer",
    [(9, "relu", "sgd"), ((9, 7), "tanh", "nesterov"), ((9, 7, 5), "logistic", "adam")],
    ids=str,
)
def test_training_is_float64_training_over_each_epochs_shuffle(backend, hidden, activation, optimizer):
    """Two epochs of 203 samples in batches of 16 (the last has 11) against float64
    training over naive.permutation(n, seed, epoch), with a cosine schedule: a sample
    skipped, repeated or averaged with the wrong divisor moves the weights far outside
    the tolerance (see test_kernels)."""
    n, d, c, bs, lr, seed, epochs = 203, 30, 4, 16, 0.02 if optimizer == "adam" else 0.2, 6, 2
    rng = np.random.default_rng(1)
    X, y = rng.random((n, d), dtype=np.float32), rng.integers(0, c, n)
    config = TrainConfig(
        hidden=hidden,
        activation=activation,
        optimizer=optimizer,
        schedule="cosine",
        epochs=epochs,
        batch_size=bs,
        lr=lr,
        seed=seed,
        backend=backend.NAME,
    )
    net, history = train(X, y, config)
    start = init_network(d, hidden, c, seed, activation=activation)
    coefs, intercepts = [np.array(W) for W in start.coefs], [np.array(b) for b in start.intercepts]
    steps = math.ceil(n / bs)
    from fastnn.schedules import learning_rates

    lrs = learning_rates("cosine", lr, steps * epochs)
    W, b, state = coefs, intercepts, {}
    for e in range(epochs):
        W, b, loss, correct = naive.train_steps(
            X,
            y,
            None,
            np.ones(n),
            naive.permutation(n, seed, e),
            0,
            n,
            bs,
            lrs[e * steps : (e + 1) * steps],
            W,
            b,
            activation,
            "softmax",
            optimizer,
            {"momentum": 0.9, "beta2": 0.999, "eps": 1e-8},
            state=state,
            t0=e * steps,
        )
        assert history.epochs[e]["train_loss"] == pytest.approx(loss / n, rel=LOSS_REL)
        assert abs(history.epochs[e]["train_accuracy"] * n - correct) <= 1
    naive.assert_train_close(net.coefs, net.intercepts, W, b, coefs, intercepts, epochs * steps, naive.unit(np.float32))


# --- history records ----------------------------------------------------------------


@pytest.mark.parametrize(
    "log_every, steps",
    [
        (0, []),
        (3, [3, 6, 9, 10, 13, 16, 19, 20]),  # 10 steps an epoch; the last chunk of an epoch is short
        (5, [5, 10, 15, 20]),
        (50, [10, 20]),  # more than an epoch: one record per epoch
    ],
)
def test_log_every_records_the_loss_of_each_chunk(backend, log_every, steps):
    n, bs = 1000, 100
    rng = np.random.default_rng(2)
    X, y = rng.random((n, 6), dtype=np.float32), rng.integers(0, 3, n)
    _, history = train(
        X, y, TrainConfig(hidden=5, epochs=2, batch_size=bs, lr=0.1, log_every=log_every, backend=backend.NAME)
    )
    assert [s["step"] for s in history.steps] == steps
    assert [r["epoch"] for r in history.epochs] == [1, 2]
    for e in (1, 2):
        rows = [s for s in history.steps if s["epoch"] == e]
        if rows:  # chunk means weighted by chunk length give the epoch mean back
            ends = [s["step"] for s in rows]
            sizes = np.diff([(e - 1) * 10] + ends) * bs
            assert sum(s["train_loss"] * k for s, k in zip(rows, sizes)) / n == pytest.approx(
                history.epochs[e - 1]["train_loss"], rel=1e-12
            )


def test_zero_epochs_return_the_initial_network_and_an_empty_history(backend):
    rng = np.random.default_rng(3)
    X, y = rng.random((50, 7), dtype=np.float32), rng.integers(0, 3, 50)
    net, history = train(X, y, TrainConfig(hidden=6, epochs=0, seed=8, log_every=2, backend=backend.NAME))
    for p, q in zip(_params(net), _params(init_network(7, 6, 3, 8))):
        np.testing.assert_array_equal(p, q)
    assert history.epochs == [] and history.steps == []


# --- refusing bad input --------------------------------------------------------------


def test_a_diverging_run_raises_and_names_the_loss(backend):
    rng = np.random.default_rng(4)
    X, y = rng.random((200, 10), dtype=np.float32), rng.integers(0, 3, 200)
    with pytest.raises(FastnnError, match=r"diverged.*loss"):
        train(X, y, TrainConfig(hidden=8, epochs=3, batch_size=20, lr=1e30, backend=backend.NAME))


@pytest.mark.parametrize(
    "bad",
    [
        dict(hidden=0),
        dict(hidden=-3),
        dict(hidden=2.5),
        dict(hidden="8"),
        dict(lr=0.0),
        dict(lr=-0.1),
        dict(lr=math.nan),
        dict(lr=math.inf),
        dict(lr="0.1"),
        dict(batch_size=0),
        dict(batch_size=-1),
        dict(epochs=-1),
        dict(epochs=1.5),
        dict(log_every=-1),
        dict(seed=-1),
        dict(seed=0.5),
        dict(backend="torch"),
        dict(backend=None),
        dict(dropout=1.0),
        dict(dropout=-0.1),
        dict(dropout=math.nan),
    ],
    ids=repr,
)
def test_invalid_config_raises_fastnn_error(bad):
    rng = np.random.default_rng(5)
    X, y = rng.random((20, 4), dtype=np.float32), rng.integers(0, 2, 20)
    with pytest.raises(FastnnError):
        train(X, y, TrainConfig(**{**dict(hidden=4, epochs=1), **bad}))


def _bad_data():
    rng = np.random.default_rng(6)
    X, y = rng.random((20, 4), dtype=np.float32), rng.integers(0, 3, 20)
    nan, inf, neg, big = X.copy(), X.copy(), y.copy(), y.copy()
    nan[3, 1] = np.nan
    inf[0, 0] = np.inf
    neg[5] = -1
    big[5] = 3
    return {
        "NaN in X": (nan, y, {}),
        "inf in X": (inf, y, {}),
        "negative label": (X, neg, {}),
        "label >= n_classes": (X, big, dict(n_classes=3)),
        "fewer labels than rows": (X, y[:-1], {}),
        "labels as a column": (X, y[:, None], {}),
        "empty": (X[:0], y[:0], {}),
        "1-D inputs": (X[:, 0], y, {}),
        "fractional labels": (X, y + 0.5, {}),
        "text inputs": (X.astype(str), y, {}),
        "no features": (X[:, :0], y, {}),
    }


@pytest.mark.parametrize("case", _bad_data(), ids=_bad_data())
def test_bad_training_data_raises_fastnn_error(case):
    X, y, kwargs = _bad_data()[case]
    with pytest.raises(FastnnError):
        train(X, y, TrainConfig(hidden=4, epochs=1), **kwargs)


# --- a network passed in to continue training -----------------------------------------


@pytest.mark.parametrize("variant", ["float64", "fortran-order"])
def test_a_network_given_in_another_dtype_or_layout_trains_like_its_float32_copy(backend, variant):
    """train() runs fastnn's float32 recipe: a float64 network (or one built from
    Fortran-ordered arrays) must train like its float32 copy, not be misread."""
    rng = np.random.default_rng(7)
    X, y = rng.random((120, 10), dtype=np.float32), rng.integers(0, 3, 120)
    config = TrainConfig(hidden=6, epochs=1, batch_size=32, lr=0.2, backend=backend.NAME)
    start = init_network(10, 6, 3, config.seed)
    expected, _ = train(X, y, config, network=start.copy())
    convert = (lambda a: a.astype(np.float64)) if variant == "float64" else np.asfortranarray
    given = Network([convert(W.copy()) for W in start.coefs], [convert(b.copy()) for b in start.intercepts])
    net, _ = train(X, y, config, network=given)
    assert net.dtype == np.float32
    for name, p, q, p0 in zip(range(4), _params(net), _params(expected), _params(start)):
        change = np.abs(q - p0).max()
        assert change > 0 and np.abs(p.astype(np.float32) - q).max() <= WEIGHT_REL * change, name


def test_a_network_with_the_wrong_number_of_features_is_refused(backend):
    rng = np.random.default_rng(8)
    X, y = rng.random((40, 10), dtype=np.float32), rng.integers(0, 3, 40)
    with pytest.raises(FastnnError):
        train(X, y, TrainConfig(hidden=4, epochs=1, backend=backend.NAME), network=init_network(9, 4, 3, 0))


def test_fine_tuning_trains_every_output_of_the_network_even_classes_absent_from_the_labels(backend):
    """A 4-class network fine-tuned on data where class 3 happens not to occur: the labels
    index the network's 4 outputs, exactly as if n_classes=4 had been given."""
    rng = np.random.default_rng(9)
    X, y = rng.random((64, 10), dtype=np.float32), rng.integers(0, 3, 64)  # labels 0..2 only
    config = TrainConfig(hidden=4, epochs=2, batch_size=16, lr=0.2, backend=backend.NAME)
    expected, _ = train(X, y, config, n_classes=4, network=init_network(10, 4, 4, 0))
    net, _ = train(X, y, config, network=init_network(10, 4, 4, 0))
    assert net.n_classes == 4
    np.testing.assert_array_equal(net.params.flat, expected.params.flat)


def test_fine_tuning_refuses_labels_beyond_the_networks_outputs(backend):
    rng = np.random.default_rng(9)
    X, y = rng.random((64, 10), dtype=np.float32), rng.integers(0, 5, 64)
    config = TrainConfig(hidden=4, epochs=1, batch_size=16, backend=backend.NAME)
    with pytest.raises(FastnnError, match=r"labels must lie in 0\.\.3, found 0\.\.4"):
        train(X, y, config, network=init_network(10, 4, 4, 0))
