"""
A sweep's results
=================

:func:`fastnn.sweep` trains every point of a grid, times seeds, on a Dask cluster and
returns one row per trial (``fastnn sweep`` is the same from the command line, and
writes the table, ``sweep.png`` and the best trial's report to ``--out``). Here the
cluster is a small in-process one, and the grid is the hidden layer's size by the
learning rate.
"""

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from distributed import Client

import fastnn

QUICK = os.environ.get("FASTNN_DOCS_QUICK", "") not in ("", "0")  # reduced data when the docs build in CI

# %%
# The data: MNIST, or in a quick build its first 3,000 training images written as a
# Kaggle-style CSV (a sweep takes a dataset's name or a path, which every worker loads).

folder = Path(tempfile.mkdtemp(prefix="fastnn-sweep-"))
if QUICK:
    mnist = fastnn.load_dataset("mnist", dev_size=0)
    pixels = np.rint(mnist.X_train[:3000] * 255).astype(np.uint8)
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = np.column_stack([mnist.y_train[:3000], pixels])
    np.savetxt(folder / "train.csv", rows, fmt="%d", delimiter=",", header=header, comments="")
    data = str(folder / "train.csv")
else:
    data = "mnist"

grid = {"hidden": [32, 128], "lr": [0.05, 0.2, 0.5]}
fixed = {"epochs": 3 if QUICK else 10, "backend": "numpy" if QUICK else "numba"}
with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
    table = fastnn.sweep(grid, data, scheduler=client, seeds=2, fixed=fixed, out=folder / "sweep", plots=False)

metric = "test_accuracy" if table["test_accuracy"].notna().any() else "dev_accuracy"
print(table[["hidden", "lr", "seed", "dev_accuracy", "test_accuracy", "train_seconds"]])

# %%
# Accuracy against the learning rate, one line per network: the mean over seeds, and
# the seeds' range as error bars (what ``sweep.png`` draws).

summary = table.groupby(["hidden", "lr"])[metric].agg(["mean", "min", "max"]).reset_index()
fig, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
for hidden, rows in summary.groupby("hidden"):
    ax.errorbar(
        rows["lr"],
        rows["mean"],
        yerr=[rows["mean"] - rows["min"], rows["max"] - rows["mean"]],
        marker="o",
        capsize=3,
        label=f"784-{hidden[0]}-10",
    )
ax.set_xscale("log")
ax.set_xlabel("learning rate")
ax.set_ylabel(metric.replace("_", " "))
ax.legend()
plt.show()
best = table.loc[table.attrs["best"]]
print(f"best by dev accuracy: hidden {best['hidden']}, lr {best['lr']}, seed {best['seed']}")
