"""Throughput of each kernel, for both backends, on synthetic data of MNIST's shape.

Groups: ``"gather b<batch>"``, ``"loss b<batch>"`` (neither depends on the
network), ``"<kernel> b<batch> <shape>"`` for forward, backward and update
(every batch size by every width of one hidden layer, and the deep shapes
784-100-100-10 and 784-1000-500-10 at b128, with plain SGD),
``"permutation n60000"`` and ``"predict n10000 <shape>"``.  ``extra_info``
holds ``samples_per_s`` (``images_per_s`` for predict) and ``us_per_step`` (one
kernel call = one step).

The batches are uniform random pixels, which the numba backend computes on its
dense first-layer path.  Its public ``forward`` prepares the workspace for the
batch it is given on every call (density test and buffers), so its time here
is that plus the pass; ``train_steps`` (``test_train_bench.py``) prepares once
per training set, as training does.
"""

from __future__ import annotations

import numpy as np
import pytest

from _common import (
    BATCHES,
    DEEP,
    LR,
    N_TEST,
    N_TRAIN,
    STEP_CASES,
    WIDTHS,
    C,
    D,
    case_id,
    make_net,
    sgd,
    shape,
    softmax_targets,
)


def _stepped(backend, batch: int, hidden, seed: int = 2):
    """A network, one random batch, and a workspace left as a real step's forward pass and loss
    leave it (what backward needs)."""
    rng = np.random.default_rng(seed)
    net = make_net(hidden)
    Xb = rng.random((batch, D), dtype=np.float32)
    ws = backend.make_workspace(net, batch)
    backend.forward(net, Xb, ws)
    targets = softmax_targets(rng.integers(0, C, batch))
    backend.loss(net.head, ws.activations(batch)[-1], targets, ws.deltas(batch)[-1])
    return net, Xb, ws


def _info(backend, kernel, batch, hidden=None) -> dict:
    info = dict(backend=backend.NAME, kernel=kernel, batch=batch)
    if hidden is not None:
        info["hidden"] = list(hidden)
    return info


@pytest.mark.parametrize("batch", BATCHES)
def test_gather(run, backend, train_set, shuffled, batch):
    """Copy one batch of the epoch's shuffle out of the full 60000-row training set."""
    X, _ = train_set
    idx = shuffled[:batch]
    Xb = np.empty((batch, D), np.float32)
    run(backend.gather, X, idx, Xb, group=f"gather b{batch}", samples=batch, **_info(backend, "gather", batch))
    np.testing.assert_array_equal(Xb, X[idx])


@pytest.mark.parametrize("batch", BATCHES)
def test_loss(run, backend, batch):
    """The softmax head's loss and its gradient (the same for every network: only c = 10 wide)."""
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((batch, C), dtype=np.float32)
    dZ = np.empty_like(Z)
    targets = softmax_targets(rng.integers(0, C, batch))
    loss, _ = run(
        backend.loss, "softmax", Z, targets, dZ, group=f"loss b{batch}", samples=batch, **_info(backend, "loss", batch)
    )
    assert np.isfinite(loss)


@pytest.mark.parametrize("case", STEP_CASES, ids=case_id)
@pytest.mark.parametrize("kernel", ["forward", "backward", "update"])
def test_kernel(run, backend, kernel, case):
    batch, hidden = case
    net, Xb, ws = _stepped(backend, batch, hidden)
    args = (net, Xb, ws)  # forward, and backward from the loss's gradient _stepped left
    if kernel == "update":  # tiny fixed gradients, so thousands of calls leave the weights sane
        ws.grads.flat[...] = 1e-6
        args = (net.params, ws.grads, sgd(net), LR)
    run(
        getattr(backend, kernel),
        *args,
        group=f"{kernel} b{batch} {shape(hidden)}",
        samples=batch,
        **_info(backend, kernel, batch, hidden),
    )
    assert np.isfinite(net.params.flat).all() and np.isfinite(ws.grads.flat).all()


def test_permutation(run, backend):
    out = np.empty(N_TRAIN, np.int64)
    run(
        backend.permutation,
        N_TRAIN,
        0,
        0,
        out,
        group=f"permutation n{N_TRAIN}",
        samples=N_TRAIN,
        backend=backend.NAME,
        kernel="permutation",
        n=N_TRAIN,
    )
    assert np.array_equal(np.sort(out), np.arange(N_TRAIN))


CHECKED = 500  # rows of predict's output checked against float64 NumPy (all 10000 took seconds)


def _raw(net, X) -> np.ndarray:
    """The network's raw outputs in plain float64 NumPy (ReLU between layers)."""
    a = X.astype(np.float64)
    for i, (W, b) in enumerate(net.params.blocks()):
        a = a @ W + b
        if i < len(net.coefs) - 1:
            a = np.maximum(a, 0)
    return a


@pytest.mark.parametrize("hidden", [(w,) for w in WIDTHS] + list(DEEP), ids=shape)
def test_predict(run, backend, train_set, hidden):
    """Inference throughput (images/s) of ``predict`` on 10000 images."""
    X = train_set[0][:N_TEST]
    net = make_net(hidden)
    out = np.empty((N_TEST, C), np.float32)
    run(
        backend.predict,
        net,
        X,
        out,
        group=f"predict n{N_TEST} {shape(hidden)}",
        samples=N_TEST,
        unit="images",
        backend=backend.NAME,
        kernel="predict",
        n=N_TEST,
        hidden=list(hidden),
    )
    np.testing.assert_allclose(out[:CHECKED], _raw(net, X[:CHECKED]), rtol=1e-3, atol=1e-3)
