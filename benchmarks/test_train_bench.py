"""Throughput of whole training steps (``train_steps``) and of a standard epoch, for both backends.

Groups:

* ``"train_step b<batch> h<hidden>"`` -- ``train_steps`` over exactly one batch
  (gather + forward + softmax_xent + backward + update, plus one call's overhead);
* ``"train_chunk b<batch> h<hidden>"`` -- ``train_steps`` over a chunk of 50 batches
  (at most 25600 samples: 12 batches at b2048), which amortises the call overhead
  the way ``fastnn.model.train`` does;
* ``"epoch 784-128-10 b128"`` -- the standard configuration (lr 0.1, full
  60000-sample epoch: ``permutation`` + ``train_steps`` over the epoch, exactly
  the body of ``train``'s epoch loop), on real MNIST when it is in fastnn's
  dataset cache, else on random data of the same shape (``extra_info["data"]``
  says which; the benchmark never downloads).

Synthetic data has random labels, so the loss only says the step ran; each
benchmark asserts it stayed finite.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _common import (BATCHES, C, CHUNK_BATCHES, CHUNK_MAX_SAMPLES, D, HIDDENS, LR, N_TRAIN,
                     make_params)


def _chunk_batches(batch: int) -> int:
    return max(1, min(CHUNK_BATCHES, CHUNK_MAX_SAMPLES // batch))


@pytest.mark.parametrize("hidden", HIDDENS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", ["train_step", "train_chunk"])
def test_train_steps(run, backend, train_set, shuffled, kind, batch, hidden):
    X, y = train_set
    W1, b1, W2, b2 = make_params(hidden)
    ws = backend.make_workspace(batch, D, hidden, C)
    n_batches = 1 if kind == "train_step" else _chunk_batches(batch)
    stop = n_batches * batch
    loss, _ = run(backend.train_steps, X, y, shuffled, 0, stop, batch, LR, W1, b1, W2, b2, ws,
                  group=f"{kind} b{batch} h{hidden}", samples=stop, steps=n_batches,
                  backend=backend.NAME, kernel=kind, batch=batch, hidden=hidden)
    assert math.isfinite(loss)


# --- the standard epoch -----------------------------------------------------------


def _cached_mnist():
    """MNIST's 60000 training rows if fastnn's cache already holds them, else None (never downloads)."""
    from fastnn.data import IDX_FILES, cache_dir, load_dataset
    from fastnn.errors import FastnnError

    try:
        folder = cache_dir() / "mnist"
        if not all((folder / f"{stem}.gz").is_file() for _, stem in IDX_FILES):
            return None, f"MNIST is not in the cache {folder}"
        ds = load_dataset("mnist", dev_size=0)
    except FastnnError as exc:
        return None, str(exc)
    return (ds.X_train, ds.y_train), "mnist"


@pytest.fixture(scope="module")
def epoch_data(request):
    data, note = _cached_mnist()
    if data is None:
        return request.getfixturevalue("train_set"), f"random data of MNIST's shape ({note})"
    return data, "mnist"


def test_epoch(run, backend, epoch_data):
    """Standard config: 784-128-10, batch 128, lr 0.1, one full 60000-sample epoch."""
    (X, y), source = epoch_data
    hidden, batch, lr = 128, 128, 0.1
    n = X.shape[0]
    W1, b1, W2, b2 = make_params(hidden)
    ws = backend.make_workspace(batch, D, hidden, C)
    perm = np.empty(n, np.int64)
    epochs = iter(range(10**9))

    def one_epoch():
        backend.permutation(n, 0, next(epochs), perm)
        return backend.train_steps(X, y, perm, 0, n, batch, lr, W1, b1, W2, b2, ws)

    loss, correct = run(one_epoch, group=f"epoch {D}-{hidden}-{C} b{batch}", samples=n,
                        steps=math.ceil(n / batch), backend=backend.NAME, kernel="epoch",
                        batch=batch, hidden=hidden, lr=lr, data=source)
    assert n == N_TRAIN and math.isfinite(loss)
    if source == "mnist":
        assert correct / n > 0.8  # the epoch really trained
