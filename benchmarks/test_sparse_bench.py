"""The numba backend's two first-layer paths, and the optimizers on the sparse one.

Groups:

* ``"path density<p> b128 h<hidden>"`` -- ``train_steps`` over a 50-batch chunk
  of synthetic data with a fraction ``p`` of nonzero pixels (MNIST: 0.19,
  Fashion-MNIST: 0.50), numba forced onto its sparse and onto its dense path,
  side by side: where the two cross is where ``SPARSE_MAX_DENSITY`` belongs;
* ``"optimizer <rule> b128 h800"`` -- the same chunk at MNIST's density with each
  optimizer (weight decay and a one-cycle schedule for all but plain SGD), for
  both backends: what each rule costs over plain SGD.

The data are random pixels zeroed at random, so the loss only says the step ran.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _common import C, D, make_params, warm_up
from fastnn.backends import _optim, get_backend
from fastnn.schedules import learning_rates

BATCH, N_BATCHES = 128, 50
N = BATCH * N_BATCHES


def _data(density: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((N, D), dtype=np.float32)
    X[rng.random((N, D)) >= density] = 0.0
    return X, rng.integers(0, C, N).astype(np.int64), rng.permutation(N).astype(np.int64)


@pytest.fixture(scope="module")
def numba_backend():
    """The numba backend, its kernels compiled (or loaded) before any timing."""
    bk = get_backend("numba")
    warm_up(bk)
    return bk


@pytest.mark.parametrize("hidden", [128, 800])
@pytest.mark.parametrize("density", [0.1, 0.19, 0.35, 0.5, 0.65, 0.8])
@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_path_by_density(run, numba_backend, monkeypatch, path, density, hidden):
    monkeypatch.setattr(numba_backend, "SPARSE_MAX_DENSITY", 1.0 if path == "sparse" else -1.0)
    X, y, perm = _data(density)
    W1, b1, W2, b2 = make_params(hidden)
    ws = numba_backend.make_workspace(BATCH, D, hidden, C)
    loss, _ = run(numba_backend.train_steps, X, y, perm, 0, N, BATCH, 0.01, W1, b1, W2, b2, ws,
                  group=f"path density{density} b{BATCH} h{hidden}", samples=N, steps=N_BATCHES,
                  backend=f"numba-{path}", kernel="train_chunk", batch=BATCH, hidden=hidden,
                  density=density)
    assert ws.sparse is (path == "sparse") and math.isfinite(loss)


@pytest.mark.parametrize("kind", _optim.OPTIMIZERS)
def test_optimizer_cost(run, backend, kind):
    X, y, perm = _data(0.19)
    hidden = 800
    params = make_params(hidden)
    opt = None if kind == "sgd" else _optim.make_optimizer(kind, params, weight_decay=1e-4)
    lrs = learning_rates("onecycle", 1e-3 if kind == "adam" else 0.05, N_BATCHES).astype(np.float32)
    ws = backend.make_workspace(BATCH, D, hidden, C)
    loss, _ = run(backend.train_steps, X, y, perm, 0, N, BATCH, lrs, *params, ws, opt,
                  group=f"optimizer {kind} b{BATCH} h{hidden}", samples=N, steps=N_BATCHES,
                  backend=backend.NAME, kernel="train_chunk", batch=BATCH, hidden=hidden)
    assert math.isfinite(loss)
    if backend.NAME == "numba":
        assert ws.sparse  # MNIST's density takes the sparse path by default
