"""What on-the-fly augmentation costs (issue 13): the kernels alone, and a training epoch with them.

Groups:

* ``"augment epoch <kind>"`` -- one epoch's distortion of the 60000 training images
  (``augment``), each backend;
* ``"epoch 784-800-10 b128 augment"`` -- numba only: one full epoch of the recipe the
  ``max`` preset trains (Nesterov 0.9, weight decay 1e-4, batch 128, 784-800-10), i.e.
  :meth:`fastnn.training.Trainer.run_epoch` (``permutation``, ``augment`` into the
  workspace, ``train_steps``), for ``none``, ``affine`` and ``elastic``, each on the path
  the data choose (``sparse``) and with the dense path forced (``dense``).  The ratio of an
  ``affine``/``elastic`` row to the ``none`` row of the same path is the overhead of
  augmenting (kernel, compression of the distorted data, and the denser data's slower
  first layer).

On real MNIST when it is in fastnn's dataset cache, else on random data of its shape.
"""

from __future__ import annotations

import math

import pytest

from fastnn import _aligned
from fastnn.optimizers import make_optimizer
from fastnn.training import Trainer

from _common import AUGMENT_SPECS, make_net, shape, softmax_targets
from test_train_bench import epoch_data  # noqa: F401  (fixture)

HIDDEN, BATCH, LR = (800,), 128, 0.05  # the max preset's network and batch


@pytest.mark.parametrize("kind", list(AUGMENT_SPECS))
def test_augment_epoch(run, backend, epoch_data, kind):  # noqa: F811
    (X, _), source = epoch_data
    out = _aligned.empty(X.shape)
    epochs = iter(range(10**9))
    run(
        lambda: backend.augment(X, 0, next(epochs), AUGMENT_SPECS[kind], out),
        group=f"augment epoch {kind}",
        samples=len(X),
        backend=backend.NAME,
        kernel="augment",
        data=source,
    )
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("path", ["sparse", "dense"])
@pytest.mark.parametrize("kind", ["none", *AUGMENT_SPECS])
def test_epoch_with_augmentation(run, backend, epoch_data, kind, path, monkeypatch):  # noqa: F811
    if backend.NAME != "numba":
        pytest.skip("hidden-800 epochs: numba only")
    if path == "dense":  # "sparse" is the path the data choose by the backend's own threshold
        monkeypatch.setattr(backend, "SPARSE_MAX_DENSITY", -1.0)
    (X, y), source = epoch_data
    net = make_net(HIDDEN)
    opt = make_optimizer("nesterov", net.layout, momentum=0.9, weight_decay=1e-4)
    trainer = Trainer(
        net,
        X,
        softmax_targets(y),
        batch_size=BATCH,
        optimizer=opt,
        backend=backend.NAME,
        augment=AUGMENT_SPECS.get(kind),
    )
    loss, _ = run(
        trainer.run_epoch,
        LR,
        group=f"epoch {shape(HIDDEN)} b{BATCH} augment",
        samples=trainer.n,
        steps=trainer.steps_per_epoch,
        backend=backend.NAME,
        kernel=f"epoch {kind} {path}",
        batch=BATCH,
        hidden=list(HIDDEN),
        data=source,
    )
    assert math.isfinite(loss)
    assert trainer.ws.sparse == (path == "sparse" and source == "mnist")
