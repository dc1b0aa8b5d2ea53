"""Throughput of each kernel, for both backends, on synthetic data of MNIST's shape.

Groups: ``"gather b<batch>"``, ``"softmax_xent b<batch>"`` (neither depends on
the hidden size), ``"<kernel> b<batch> h<hidden>"`` for forward, backward and
update, ``"permutation n60000"`` and ``"predict n10000 h<hidden>"``.
``extra_info`` holds ``samples_per_s`` (``images_per_s`` for predict) and
``us_per_step`` (one kernel call = one step).
"""

from __future__ import annotations

import numpy as np
import pytest

from _common import BATCHES, C, D, HIDDENS, LR, N_TEST, N_TRAIN, make_params


def _batch_arrays(m: int, hidden: int, seed: int = 2) -> dict:
    """Inputs and outputs of one mini-batch step, filled as a real step would leave them."""
    rng = np.random.default_rng(seed)
    W1, b1, W2, b2 = make_params(hidden)
    Xb = rng.random((m, D), dtype=np.float32)
    yb = rng.integers(0, C, m).astype(np.int64)
    A1 = np.maximum(Xb @ W1, np.float32(0))  # ReLU activations
    logits = A1 @ W2
    dlogits = rng.standard_normal((m, C), dtype=np.float32) / np.float32(m)
    return dict(Xb=Xb, yb=yb, W1=W1, b1=b1, W2=W2, b2=b2, A1=A1, logits=logits,
                dlogits=dlogits, dA1=np.empty_like(A1),
                dW1=np.zeros_like(W1), db1=np.zeros_like(b1),
                dW2=np.zeros_like(W2), db2=np.zeros_like(b2))


def _info(backend, kernel, batch, hidden=None) -> dict:
    info = dict(backend=backend.NAME, kernel=kernel, batch=batch)
    if hidden is not None:
        info["hidden"] = hidden
    return info


@pytest.mark.parametrize("batch", BATCHES)
def test_gather(run, backend, train_set, shuffled, batch):
    """Copy one batch of the epoch's shuffle out of the full 60000-row training set."""
    X, y = train_set
    idx = shuffled[:batch]
    Xb, yb = np.empty((batch, D), np.float32), np.empty(batch, np.int64)
    run(backend.gather, X, y, idx, Xb, yb, group=f"gather b{batch}", samples=batch,
        **_info(backend, "gather", batch))
    np.testing.assert_array_equal(Xb, X[idx])


@pytest.mark.parametrize("batch", BATCHES)
def test_softmax_xent(run, backend, batch):
    a = _batch_arrays(batch, 8)
    loss, _ = run(backend.softmax_xent, a["logits"], a["yb"], a["dlogits"],
                  group=f"softmax_xent b{batch}", samples=batch,
                  **_info(backend, "softmax_xent", batch))
    assert np.isfinite(loss)


@pytest.mark.parametrize("hidden", HIDDENS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kernel", ["forward", "backward", "update"])
def test_kernel(run, backend, kernel, batch, hidden):
    a = _batch_arrays(batch, hidden)
    if kernel == "forward":
        args = (a["Xb"], a["W1"], a["b1"], a["W2"], a["b2"], a["A1"], a["logits"])
    elif kernel == "backward":
        args = (a["Xb"], a["A1"], a["W2"], a["dlogits"],
                a["dW1"], a["db1"], a["dW2"], a["db2"], a["dA1"])
    else:  # update: tiny fixed gradients, so thousands of calls leave the weights sane
        for g in ("dW1", "db1", "dW2", "db2"):
            a[g][...] = 1e-6
        args = (a["W1"], a["b1"], a["W2"], a["b2"], a["dW1"], a["db1"], a["dW2"], a["db2"], LR)
    run(getattr(backend, kernel), *args, group=f"{kernel} b{batch} h{hidden}", samples=batch,
        **_info(backend, kernel, batch, hidden))
    assert np.isfinite(a["W1"]).all()


def test_permutation(run, backend):
    out = np.empty(N_TRAIN, np.int64)
    run(backend.permutation, N_TRAIN, 0, 0, out, group=f"permutation n{N_TRAIN}",
        samples=N_TRAIN, backend=backend.NAME, kernel="permutation", n=N_TRAIN)
    assert np.array_equal(np.sort(out), np.arange(N_TRAIN))


@pytest.mark.parametrize("hidden", HIDDENS)
def test_predict(run, backend, train_set, hidden):
    """Inference throughput (images/s) of ``predict_logits`` on 10000 images."""
    X = train_set[0][:N_TEST]
    W1, b1, W2, b2 = make_params(hidden)
    out = np.empty((N_TEST, C), np.float32)
    run(backend.predict_logits, X, W1, b1, W2, b2, out, group=f"predict n{N_TEST} h{hidden}",
        samples=N_TEST, unit="images", backend=backend.NAME, kernel="predict_logits",
        n=N_TEST, hidden=hidden)
    expected = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
