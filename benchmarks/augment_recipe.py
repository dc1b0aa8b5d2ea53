"""One training run of the augmented recipe, printed as one JSON line (issue 13's numbers; not a test).

The ``max`` preset's recipe (784-800-10, Nesterov 0.9, one-cycle to lr 0.2, weight decay
1e-4, batch 128, numba) with any TrainConfig field overridden from a JSON argument, plus
``data`` (``mnist`` / ``fashion-mnist``) and ``dev_size`` (default 0):

    python benchmarks/augment_recipe.py '{"augment": "affine", "epochs": 12, "dev_size": 1000, "seed": 1}'
    python benchmarks/augment_recipe.py '{"augment": "affine", "epochs": 12, "hidden": [1000, 500]}'

``train_s`` is the wall time of ``fastnn.train`` (with the per-epoch dev evaluation),
``test_acc`` the accuracy on the 10000 test images.
"""

import json
import sys
import time

import numpy as np

import fastnn
from fastnn import TrainConfig, train

over = json.loads(sys.argv[1])
dataset = over.pop("data", "mnist")
dev = over.pop("dev_size", 0)
d = fastnn.load_dataset(dataset, dev_size=dev)
base = dict(
    hidden=800,
    epochs=30,
    batch_size=128,
    lr=0.2,
    optimizer="nesterov",
    momentum=0.9,
    weight_decay=1e-4,
    schedule="onecycle",
    backend="numba",
)
base.update(over)
cfg = TrainConfig(**base)
t = time.perf_counter()
net, h = train(d.X_train, d.y_train, cfg, X_dev=d.X_dev if dev else None, y_dev=d.y_dev if dev else None)
tt = time.perf_counter() - t
acc = float((net.predict(d.X_test, "numba") == d.y_test).mean())
print(
    json.dumps(
        {
            "data": dataset,
            **over,
            "test_acc": acc,
            "train_s": round(tt, 1),
            "epoch_s_median": round(float(np.median([r["seconds"] for r in h.epochs])), 3),
            "final_train_acc": round(h.epochs[-1]["train_accuracy"], 4),
        }
    ),
    flush=True,
)
