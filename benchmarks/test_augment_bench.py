"""What on-the-fly augmentation costs (issue 13): the kernels alone, and a training epoch with them.

Groups:

* ``"augment epoch <kind>"`` -- one epoch's distortion of the 60000 training images
  (``augment``), each backend;
* ``"epoch 784-800-10 b128 augment"`` -- numba only: one full epoch of the recipe the
  ``max`` preset trains (Nesterov 0.9, weight decay 1e-4, batch 128, hidden 800), i.e.
  exactly the body of ``train``'s epoch loop (``permutation``, ``augment`` into the
  workspace, ``train_steps``), for ``none``, ``affine`` and ``elastic``, each on the path
  the data choose (``sparse``) and with the dense path forced (``dense``).  The ratio of an
  ``affine``/``elastic`` row to the ``none`` row of the same path is the overhead of
  augmenting (kernel, compression of the distorted data, and the denser data's slower
  first layer).

On real MNIST when it is in fastnn's dataset cache, else on random data of its shape.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _common import C, D, make_params
from fastnn import _aligned
from fastnn.augment import AugmentSpec
from fastnn.backends import _optim
from test_train_bench import epoch_data  # noqa: F401  (fixture)

SPECS = {
    "affine": AugmentSpec("affine", rotation=10, scale=0.1, shear=0.2, shift=1.5),
    "elastic": AugmentSpec("elastic", rotation=10, scale=0.1, shear=0.2, shift=1.5, alpha=34, sigma=4),
}


@pytest.mark.parametrize("kind", list(SPECS))
def test_augment_epoch(run, backend, epoch_data, kind):  # noqa: F811
    (X, _), source = epoch_data
    out = _aligned.empty(X.shape)
    epochs = iter(range(10**9))
    run(lambda: backend.augment(X, 0, next(epochs), SPECS[kind], out), group=f"augment epoch {kind}",
        samples=len(X), backend=backend.NAME, kernel="augment", data=source)
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("path", ["sparse", "dense"])
@pytest.mark.parametrize("kind", ["none", *SPECS])
def test_epoch_with_augmentation(run, backend, epoch_data, kind, path, monkeypatch):  # noqa: F811
    if backend.NAME != "numba":
        pytest.skip("hidden-800 epochs: numba only")
    monkeypatch.setattr(backend, "SPARSE_MAX_DENSITY", 0.4 if path == "sparse" else -1.0)
    (X, y), source = epoch_data
    hidden, batch, lr = 800, 128, 0.05
    n = X.shape[0]
    params = make_params(hidden)
    opt = _optim.make_optimizer("nesterov", params, momentum=0.9, beta2=0.999, weight_decay=1e-4)
    ws = backend.make_workspace(batch, D, hidden, C)
    perm = np.empty(n, np.int64)
    X_epoch = X if kind == "none" else _aligned.empty(X.shape)
    epochs = iter(range(10**9))

    def one_epoch():
        epoch = next(epochs)
        backend.permutation(n, 0, epoch, perm)
        if kind != "none":
            backend.augment(X, 0, epoch, SPECS[kind], X_epoch, ws)
        return backend.train_steps(X_epoch, y, perm, 0, n, batch, lr, *params, ws, opt)

    loss, _ = run(one_epoch, group=f"epoch {D}-{hidden}-{C} b{batch} augment", samples=n,
                  steps=math.ceil(n / batch), backend=backend.NAME, kernel=f"epoch {kind} {path}",
                  batch=batch, hidden=hidden, data=source)
    assert math.isfinite(loss)
    assert ws.sparse == (path == "sparse" and source == "mnist")
