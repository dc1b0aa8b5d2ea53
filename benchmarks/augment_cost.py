"""Cost of augmentation against a hidden-800 training step, interleaved (not a test; wall clock, or CPU time with --cpu).

Per round, for none / affine / elastic in turn (the ranges of the max preset): a fresh
network and workspace, the epoch's distortion (``augment`` with the workspace, i.e. kernel
plus compression for the sparse path), then 100 timed ``train_steps`` batches of 128.
Prints per-batch milliseconds and the overhead against the plain step, split into the
kernel and the slower steps on the denser distorted data.  ``sparse`` / ``dense`` forces
the first-layer path.

    python benchmarks/augment_cost.py sparse          # wall clock, numba's threads
    NUMBA_NUM_THREADS=1 python benchmarks/augment_cost.py sparse --cpu
"""
import sys, time, json, numpy as np, fastnn
from fastnn.augment import AugmentSpec
from fastnn.backends import get_backend
from fastnn import _aligned
from fastnn.model import init_network
from fastnn.backends._optim import make_optimizer
nb = get_backend("numba")
path = sys.argv[1] if len(sys.argv) > 1 else "sparse"
nb.SPARSE_MAX_DENSITY = 0.4 if path == "sparse" else -1.0
d = fastnn.load_dataset("mnist", dev_size=0)
X, y = d.X_train, d.y_train
n = len(X)
specs = {"affine": AugmentSpec("affine", 10, 0.1, 0.2, 1.5), "elastic": AugmentSpec("elastic", 10, 0.1, 0.2, 1.5, 34, 4)}
NB = 100  # batches timed
res = {}
clock = time.process_time if "--cpu" in sys.argv else time.perf_counter
for r in range(3):
    for kind in ["none", "affine", "elastic"]:
        net = init_network(784, 800, 10, 0)
        params = (net.W1, net.b1, net.W2, net.b2)
        opt = make_optimizer("nesterov", params, momentum=0.9, beta2=0.999, weight_decay=1e-4)
        ws = nb.make_workspace(128, 784, 800, 10)
        perm = np.empty(n, np.int64); nb.permutation(n, 0, r, perm)
        Xe = X
        t_aug = 0.0
        if kind != "none":
            Xe = _aligned.empty(X.shape)
            t = clock(); nb.augment(X, 0, r, specs[kind], Xe, ws); t_aug = clock() - t
        nb.train_steps(Xe, y, perm, 0, 1280, 128, 0.05, *params, ws, opt)  # warm
        t = clock(); nb.train_steps(Xe, y, perm, 1280, 1280 + 128 * NB, 128, 0.05, *params, ws, opt); t_step = (clock() - t) / NB
        steps_per_epoch = n / 128
        res.setdefault(kind, []).append((t_step * 1e3, t_aug / steps_per_epoch * 1e3))
base = np.median([s for s, _ in res["none"]])
out = {"path": path, "clock": "cpu" if "--cpu" in sys.argv else "wall", "step_ms_none": round(base, 3)}
for kind in ["affine", "elastic"]:
    step = np.median([s for s, _ in res[kind]]); aug = np.median([a for _, a in res[kind]])
    out[kind] = {"step_ms": round(step, 3), "augment_ms_per_batch": round(aug, 3),
                 "overhead_vs_plain_step": round((step + aug) / base - 1, 3),
                 "of_which_kernel": round(aug / base, 3), "of_which_denser_data": round(step / base - 1, 3)}
print(json.dumps(out))
