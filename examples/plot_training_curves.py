"""
Training curves by solver and schedule
======================================

The same network (784-128-10) trained on MNIST with each of fastnn's optimizers, then
with plain SGD under each learning-rate schedule. Every run starts from the same
weights and sees the same batches (both are keyed on the seed), so the curves differ
by the rule alone.
"""

import os

import matplotlib.pyplot as plt

import fastnn

QUICK = os.environ.get("FASTNN_DOCS_QUICK", "") not in ("", "0")  # reduced data when the docs build in CI

data = fastnn.load_dataset("mnist")
n_train, n_dev = (4000, 1000) if QUICK else (len(data.y_train), len(data.y_dev))
X, y, X_dev, y_dev = data.X_train[:n_train], data.y_train[:n_train], data.X_dev[:n_dev], data.y_dev[:n_dev]
EPOCHS = 4 if QUICK else 12
BACKEND = "numpy" if QUICK else "numba"


def run(**options):
    config = fastnn.TrainConfig(hidden=128, epochs=EPOCHS, backend=BACKEND, **options)
    _, history = fastnn.train(X, y, config, X_dev=X_dev, y_dev=y_dev)
    return history.epochs


# %%
# Optimizers
# ----------
# Momentum and Nesterov keep a velocity (``v = momentum * v - lr * g``, scikit-learn's
# formulation), so their step is about ``lr / (1 - momentum)``: a tenth of SGD's rate
# gives them a comparable step. Adam scales each weight's step by its gradient's size.

optimizers = {
    "sgd, lr 0.5": dict(optimizer="sgd", lr=0.5),
    "momentum 0.9, lr 0.05": dict(optimizer="momentum", lr=0.05),
    "nesterov 0.9, lr 0.05": dict(optimizer="nesterov", lr=0.05),
    "adam, lr 0.001": dict(optimizer="adam", lr=0.001),
}
schedules = {
    "constant": dict(schedule="constant"),
    "step": dict(schedule="step"),
    "cosine": dict(schedule="cosine"),
    "onecycle": dict(schedule="onecycle"),
}
curves = {
    "optimizer": {k: run(**v) for k, v in optimizers.items()},
    "schedule (sgd, lr 0.5)": {k: run(optimizer="sgd", lr=0.5, **v) for k, v in schedules.items()},
}

fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), layout="constrained")
for column, (title, runs) in enumerate(curves.items()):
    for label, epochs in runs.items():
        n = [e["epoch"] for e in epochs]
        axes[0, column].plot(n, [e["train_loss"] for e in epochs], marker="o", ms=3, label=label)
        axes[1, column].plot(n, [e["dev_accuracy"] for e in epochs], marker="o", ms=3, label=label)
    axes[0, column].set_title(f"by {title}")
    axes[0, column].set_ylabel("training loss")
    axes[0, column].set_yscale("log")
    axes[1, column].set_ylabel("dev accuracy")
    axes[1, column].set_xlabel("epoch")
    axes[1, column].legend(fontsize=8)
plt.show()

# %%
# The final dev accuracy of each run:

for title, runs in curves.items():
    for label, epochs in runs.items():
        print(f"{title:>24}  {label:<24} {epochs[-1]['dev_accuracy']:.4f}")
