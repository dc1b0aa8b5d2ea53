"""Throughput of whole training steps (``train_steps``) and of a standard epoch, for both backends.

Groups:

* ``"train_step b<batch> <shape>"`` -- ``train_steps`` over exactly one batch
  (gather + forward + loss + backward + update, plus one call's overhead), plain SGD;
* ``"train_chunk b<batch> <shape>"`` -- ``train_steps`` over a chunk of 50 batches
  (at most 25600 samples: 12 batches at b2048), which amortises the call overhead
  the way ``fastnn.training.Trainer`` does;

  both over every batch size by every width of one hidden layer, and for the deep
  shapes 784-100-100-10 and 784-1000-500-10 at b128;
* ``"epoch 784-128-10 b128"`` -- the standard configuration (SGD, lr 0.1, full
  60000-sample epoch: :meth:`fastnn.training.Trainer.run_epoch`, the permutation and
  ``train_steps`` over the epoch, exactly what ``fastnn.train`` times as an epoch),
  on real MNIST when it is in fastnn's dataset cache, else on random data of the
  same shape (``extra_info["data"]`` says which; the benchmark never downloads; the
  smoke run takes its first rows only).

The synthetic rows are uniform random pixels (numba's dense first-layer path;
``test_sparse_bench.py`` covers the sparse one) with random labels, so the loss
only says the step ran; each benchmark asserts it stayed finite.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn.training import Trainer

from _common import (
    CHUNK_BATCHES,
    CHUNK_MAX_SAMPLES,
    LR,
    N_TRAIN,
    STEP_CASES,
    case_id,
    make_net,
    sgd,
    shape,
    softmax_targets,
)
from conftest import SMOKE_ROWS

EPOCH_HIDDEN, EPOCH_BATCH = (128,), 128  # the standard configuration's epoch


def _chunk_batches(batch: int) -> int:
    return max(1, min(CHUNK_BATCHES, CHUNK_MAX_SAMPLES // batch))


@pytest.fixture(scope="session")
def train_targets(train_set):
    """The synthetic training set's labels as the softmax head's targets."""
    return softmax_targets(train_set[1])


@pytest.mark.parametrize("case", STEP_CASES, ids=case_id)
@pytest.mark.parametrize("kind", ["train_step", "train_chunk"])
def test_train_steps(run, backend, train_set, train_targets, shuffled, kind, case):
    batch, hidden = case
    X, _ = train_set
    net = make_net(hidden)
    ws = backend.make_workspace(net, batch)
    n_batches = 1 if kind == "train_step" else _chunk_batches(batch)
    stop = n_batches * batch
    lrs = np.full(n_batches, LR)
    loss, _ = run(
        backend.train_steps,
        net,
        X,
        train_targets,
        shuffled,
        0,
        stop,
        batch,
        lrs,
        sgd(net),
        ws,
        group=f"{kind} b{batch} {shape(hidden)}",
        samples=stop,
        steps=n_batches,
        backend=backend.NAME,
        kernel=kind,
        batch=batch,
        hidden=list(hidden),
    )
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
def epoch_data(request, smoke):
    """``((X, y), source)``: MNIST's training set if cached, else random data of its shape;
    in the smoke run only its first ``SMOKE_ROWS`` rows."""
    data, source = _cached_mnist()
    if data is None:
        data, source = request.getfixturevalue("train_set"), f"random data of MNIST's shape ({source})"
    if smoke:
        data = tuple(a[:SMOKE_ROWS] for a in data)
    return data, source


def test_epoch(run, backend, epoch_data):
    """Standard config: 784-128-10, batch 128, plain SGD at lr 0.1, one full 60000-sample epoch."""
    (X, y), source = epoch_data
    net = make_net(EPOCH_HIDDEN)
    trainer = Trainer(net, X, softmax_targets(y), batch_size=EPOCH_BATCH, optimizer=sgd(net), backend=backend.NAME)
    loss, correct = run(
        trainer.run_epoch,
        LR,
        group=f"epoch {shape(EPOCH_HIDDEN)} b{EPOCH_BATCH}",
        samples=trainer.n,
        steps=trainer.steps_per_epoch,
        backend=backend.NAME,
        kernel="epoch",
        batch=EPOCH_BATCH,
        hidden=list(EPOCH_HIDDEN),
        lr=LR,
        data=source,
    )
    assert math.isfinite(loss)
    if source == "mnist":
        assert correct / trainer.n > (0.8 if trainer.n == N_TRAIN else 0.5)  # the epoch really trained
