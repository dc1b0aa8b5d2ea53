#!/usr/bin/env python
"""Cost of augmentation against a 784-800-10 training step, interleaved (not a test; wall clock, or CPU time with --cpu).

Per round, for none / affine / elastic in turn (the ranges of the max preset): a fresh
network, optimizer (Nesterov 0.9, weight decay 1e-4) and workspace, the epoch's distortion
(``augment`` with the workspace, i.e. kernel plus compression for the sparse path), then
100 timed ``train_steps`` batches of 128.  Prints per-batch milliseconds and the overhead
against the plain step, split into the kernel and the slower steps on the denser
distorted data.  ``sparse`` takes the path the data choose, ``dense`` forces the dense one.

    python benchmarks/augment_cost.py sparse          # wall clock, numba's threads
    NUMBA_NUM_THREADS=1 python benchmarks/augment_cost.py sparse --cpu
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from fastnn import _aligned, load_dataset
from fastnn.backends import get_backend
from fastnn.optimizers import make_optimizer

from _common import AUGMENT_SPECS, make_net, softmax_targets

HIDDEN, BATCH, LR = (800,), 128, 0.05
WARM_BATCHES, TIMED_BATCHES, ROUNDS = 10, 100, 3


def main() -> None:
    nb = get_backend("numba")
    path = sys.argv[1] if len(sys.argv) > 1 else "sparse"
    if path == "dense":
        nb.SPARSE_MAX_DENSITY = -1.0
    clock = time.process_time if "--cpu" in sys.argv else time.perf_counter
    data = load_dataset("mnist", dev_size=0)
    X, targets = data.X_train, softmax_targets(data.y_train)
    n = len(X)
    steps_per_epoch = n / BATCH
    warm, timed = WARM_BATCHES * BATCH, TIMED_BATCHES * BATCH
    res = {}
    for r in range(ROUNDS):
        for kind in ["none", *AUGMENT_SPECS]:
            net = make_net(HIDDEN)
            opt = make_optimizer("nesterov", net.layout, momentum=0.9, weight_decay=1e-4)
            ws = nb.make_workspace(net, BATCH)
            perm = np.empty(n, np.int64)
            nb.permutation(n, 0, r, perm)
            Xe, t_aug = X, 0.0
            if kind != "none":
                Xe = _aligned.empty(X.shape)
                t = clock()
                nb.augment(X, 0, r, AUGMENT_SPECS[kind], Xe, ws)
                t_aug = clock() - t
            nb.train_steps(net, Xe, targets, perm, 0, warm, BATCH, np.full(WARM_BATCHES, LR), opt, ws)
            t = clock()
            nb.train_steps(net, Xe, targets, perm, warm, warm + timed, BATCH, np.full(TIMED_BATCHES, LR), opt, ws)
            t_step = (clock() - t) / TIMED_BATCHES
            res.setdefault(kind, []).append((t_step * 1e3, t_aug / steps_per_epoch * 1e3))
    base = np.median([s for s, _ in res["none"]])
    out = {"path": path, "clock": "cpu" if "--cpu" in sys.argv else "wall", "step_ms_none": round(base, 3)}
    for kind in AUGMENT_SPECS:
        step = np.median([s for s, _ in res[kind]])
        aug = np.median([a for _, a in res[kind]])
        out[kind] = {
            "step_ms": round(step, 3),
            "augment_ms_per_batch": round(aug, 3),
            "overhead_vs_plain_step": round((step + aug) / base - 1, 3),
            "of_which_kernel": round(aug / base, 3),
            "of_which_denser_data": round(step / base - 1, 3),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
