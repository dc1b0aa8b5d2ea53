"""The numba backend's two first-layer paths, and the optimizers on the sparse one.

Groups:

* ``"path density<p> b128 <shape>"`` -- ``train_steps`` over a 50-batch chunk
  of synthetic data with a fraction ``p`` of nonzero pixels (MNIST: 0.19,
  Fashion-MNIST: 0.50), numba forced onto its sparse and onto its dense path,
  side by side: where the two cross is where ``SPARSE_MAX_DENSITY`` belongs.
  784-128-10 and 784-800-10 at every density; the deep shapes at MNIST's and
  Fashion-MNIST's, where they train;
* ``"optimizer <rule> b128 784-800-10"`` -- the same chunk at MNIST's density with each
  optimizer (a one-cycle schedule for all, weight decay 1e-4 for all but plain SGD, which
  therefore takes its fused update), for both backends: what each rule costs over plain SGD.

The data are random pixels zeroed at random, so the loss only says the step ran.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn.backends import get_backend
from fastnn.optimizers import OPTIMIZERS, make_optimizer
from fastnn.schedules import learning_rates

from _common import DEEP, C, D, case_id, make_net, sgd, shape, softmax_targets, warm_up

BATCH, N_BATCHES = 128, 50
N = BATCH * N_BATCHES
MNIST_DENSITY = 0.19
DENSITIES = (0.1, MNIST_DENSITY, 0.35, 0.5, 0.65, 0.8)
#: (density, hidden layers): the one-hidden-layer widths at every density, the deep shapes at two.
PATH_CASES = [(p, (h,)) for p in DENSITIES for h in (128, 800)] + [
    (p, hidden) for p in (MNIST_DENSITY, 0.5) for hidden in DEEP
]
OPTIMIZER_HIDDEN = (800,)


def _data(density: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((N, D), dtype=np.float32)
    X[rng.random((N, D)) >= density] = 0.0
    return X, softmax_targets(rng.integers(0, C, N)), rng.permutation(N).astype(np.int64)


@pytest.fixture(scope="module")
def numba_backend():
    """The numba backend, its kernels compiled (or loaded) before any timing."""
    bk = get_backend("numba")
    warm_up(bk)
    return bk


@pytest.mark.parametrize("case", PATH_CASES, ids=lambda c: f"density{c[0]}-{case_id((BATCH, c[1]))}")
@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_path_by_density(run, numba_backend, monkeypatch, path, case):
    density, hidden = case
    monkeypatch.setattr(numba_backend, "SPARSE_MAX_DENSITY", 1.0 if path == "sparse" else -1.0)
    X, targets, perm = _data(density)
    net = make_net(hidden)
    ws = numba_backend.make_workspace(net, BATCH)
    loss, _ = run(
        numba_backend.train_steps,
        net,
        X,
        targets,
        perm,
        0,
        N,
        BATCH,
        np.full(N_BATCHES, 0.01),
        sgd(net),
        ws,
        group=f"path density{density} b{BATCH} {shape(hidden)}",
        samples=N,
        steps=N_BATCHES,
        backend=f"numba-{path}",
        kernel="train_chunk",
        batch=BATCH,
        hidden=list(hidden),
        density=density,
    )
    assert ws.sparse is (path == "sparse") and math.isfinite(loss)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_optimizer_cost(run, backend, kind):
    X, targets, perm = _data(MNIST_DENSITY)
    net = make_net(OPTIMIZER_HIDDEN)
    opt = make_optimizer(kind, net.layout, weight_decay=0.0 if kind == "sgd" else 1e-4)
    lrs = learning_rates("onecycle", 1e-3 if kind == "adam" else 0.05, N_BATCHES)
    ws = backend.make_workspace(net, BATCH)
    loss, _ = run(
        backend.train_steps,
        net,
        X,
        targets,
        perm,
        0,
        N,
        BATCH,
        lrs,
        opt,
        ws,
        group=f"optimizer {kind} b{BATCH} {shape(OPTIMIZER_HIDDEN)}",
        samples=N,
        steps=N_BATCHES,
        backend=backend.NAME,
        kernel="train_chunk",
        batch=BATCH,
        hidden=list(OPTIMIZER_HIDDEN),
    )
    assert math.isfinite(loss)
    if backend.NAME == "numba":
        assert ws.sparse  # MNIST's density takes the sparse path by default
