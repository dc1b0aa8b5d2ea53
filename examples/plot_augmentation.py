"""
Augmentation: distorted digits, fresh every epoch
=================================================

``fastnn train --augment affine`` gives every training image a new random affine
distortion each epoch (rotation, zoom, shear, shift); ``--augment elastic`` adds a
smoothed random displacement field (Simard et al. 2003). The draws are keyed on
(seed, epoch, image), so both backends distort identically and an epoch's images can be
drawn again here with :func:`fastnn.augment.distort`.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import fastnn
from fastnn.augment import distort, spec_from_config

QUICK = os.environ.get("FASTNN_DOCS_QUICK", "") not in ("", "0")  # reduced data when the docs build in CI

data = fastnn.load_dataset("mnist")
digits = data.X_test[:8]
specs = {kind: spec_from_config(fastnn.TrainConfig(augment=kind)) for kind in ("affine", "elastic")}
rows = {"original": digits}
for kind, spec in specs.items():
    for epoch in (0, 1):
        rows[f"{kind}, epoch {epoch}"] = distort(digits, spec, seed=0, epoch=epoch)

fig, axes = plt.subplots(len(rows), len(digits), figsize=(len(digits) * 0.9, len(rows) * 0.95))
for axes_row, (label, images) in zip(axes, rows.items()):
    for ax, image in zip(axes_row, images):
        ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
fig.subplots_adjust(left=0.2, wspace=0.05, hspace=0.05)
plt.show()

# %%
# Training with and without it
# ----------------------------
# The same network and recipe, with and without ``augment="affine"``. Distortions make
# each epoch harder, so the training loss stays higher; what they buy shows on held-out
# digits over longer runs (``fastnn train --preset max``: 99.1% on MNIST's test set
# against 98.5% for the same recipe undistorted, in the user guide).

n, n_dev = (3000, 1000) if QUICK else (len(data.y_train), len(data.y_dev))
histories = {}
for kind in ("none", "affine"):
    config = fastnn.TrainConfig(
        hidden=256, epochs=3 if QUICK else 15, lr=0.5, augment=kind, backend="numpy" if QUICK else "numba"
    )
    _, history = fastnn.train(
        data.X_train[:n], data.y_train[:n], config, X_dev=data.X_dev[:n_dev], y_dev=data.y_dev[:n_dev]
    )
    histories[kind] = history.epochs

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
for kind, epochs in histories.items():
    x = [e["epoch"] for e in epochs]
    left.plot(x, [e["train_loss"] for e in epochs], marker="o", ms=3, label=f"augment={kind}")
    right.plot(x, [e["dev_accuracy"] for e in epochs], marker="o", ms=3, label=f"augment={kind}")
left.set_ylabel("training loss")
right.set_ylabel("dev accuracy")
for ax in (left, right):
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
plt.show()
print({kind: round(epochs[-1]["dev_accuracy"], 4) for kind, epochs in histories.items()})
print("pixels changed by the affine distortion:", float(np.abs(rows["affine, epoch 0"] - digits).mean()))
