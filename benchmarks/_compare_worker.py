"""Worker side of ``compare.py``: one measurement in this fresh process, reported as a dict.

``compare.py --worker KIND`` calls :func:`run_worker`, which either measures the
float32 matmul peak (``peak`` / ``peak+info``) or trains one implementation
(``numpy``, ``numba``, ``torch``, ``sklearn``) and returns its per-epoch seconds
and losses, test accuracy (per epoch too with ``cfg.evaluate``) and peak RSS.
Imported only in the worker processes.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from _common import C, D, load_average

MODULES = {
    "numpy": "fastnn.backends.numpy_backend",
    "numba": "fastnn.backends.numba_backend",
    "torch": "torch",
    "sklearn": "sklearn.neural_network",
}


def peak_worker(with_info: bool, size: int = 2048, repeats: int = 5) -> dict:
    """Best-of-``repeats`` GFLOP/s of ``np.matmul`` on ``size x size`` float32 (+ machine facts)."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    out = np.matmul(a, b)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    result = {"gflops": 2 * size**3 / best / 1e9, "load": load_average()}
    if with_info:
        import numba
        from threadpoolctl import threadpool_info

        import fastnn.backends.numba_backend  # noqa: F401  (loads SciPy's BLAS too, so both are listed)

        cpu = platform.processor() or "unknown"
        with contextlib.suppress(OSError, StopIteration):
            cpu = next(
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            )
        result["machine"] = {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "numba_threads": numba.get_num_threads(),
            "blas": [
                f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                for i in threadpool_info()
                if i.get("user_api") == "blas"
            ],
        }
    return result


def load_data(cfg):
    from fastnn import load_dataset

    ds = load_dataset(cfg.data, dev_size=0)
    X, y = ds.X_train, ds.y_train
    if cfg.limit:
        X, y = np.ascontiguousarray(X[: cfg.limit]), np.ascontiguousarray(y[: cfg.limit])
    return X, y, ds.X_test, ds.y_test


def initial_network(cfg):
    """The network every implementation starts from: ``fastnn.init_network`` of the config."""
    from fastnn import init_network

    return init_network(D, cfg.hidden, C, cfg.seed, activation=cfg.activation)


def run_fastnn(backend: str, data, cfg) -> dict:
    from fastnn import TrainConfig, train

    X, y, X_test, y_test = data
    config = TrainConfig(
        hidden=cfg.hidden,
        activation=cfg.activation,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        backend=backend,
        optimizer=cfg.optimizer,
        momentum=cfg.momentum,
        beta2=cfg.beta2,
        weight_decay=cfg.weight_decay,
        schedule=cfg.schedule,
    )
    dev = (X_test, y_test) if cfg.evaluate else (None, None)
    net, history = train(X, y, config, X_dev=dev[0], y_dev=dev[1], n_classes=C, network=initial_network(cfg))
    return {
        "epoch_seconds": [r["seconds"] for r in history.epochs],
        "train_loss": [r["train_loss"] for r in history.epochs],
        "epoch_accuracy": [r["dev_accuracy"] for r in history.epochs] if cfg.evaluate else None,
        "test_accuracy": float(np.mean(net.predict(X_test, backend) == y_test)),
        "notes": net.describe(),
    }


def run_torch(data, cfg) -> dict:
    import torch
    import torch.nn.functional as F

    from fastnn.backends import get_backend
    from fastnn.schedules import learning_rates

    from _torch_mlp import describe, optimizer, sequential

    torch.set_num_threads(os.cpu_count() or 1)
    X, y, X_test, y_test = data
    n, bs = X.shape[0], cfg.batch_size
    model = sequential(initial_network(cfg))
    opt = optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, cfg.beta2, cfg.weight_decay)
    lrs = learning_rates(cfg.schedule, cfg.lr, math.ceil(n / bs) * cfg.epochs).astype(np.float32).tolist()
    Xt, yt, Xtest, ytest = (torch.from_numpy(a) for a in (X, y, X_test, y_test))
    perms = []  # fastnn's own shuffles, drawn before any timer
    for epoch in range(cfg.epochs):
        perm = np.empty(n, np.int64)
        get_backend("numpy").permutation(n, cfg.seed, epoch, perm)
        perms.append(torch.from_numpy(perm))

    def accuracy() -> float:
        model.eval()
        with torch.inference_mode():
            return float(model(Xtest).argmax(1).eq(ytest).double().mean())

    seconds, losses, accs, step = [], [], [], 0
    for epoch in range(cfg.epochs):
        perm = perms[epoch]
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64)
        for lo in range(0, n, bs):
            if cfg.schedule != "constant":
                for group in opt.param_groups:
                    group["lr"] = lrs[step]
            idx = perm[lo : lo + bs]
            loss = F.cross_entropy(model(Xt.index_select(0, idx)), yt.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.shape[0]
            step += 1
        seconds.append(time.perf_counter() - t0)
        losses.append(float(loss_sum) / n)
        if cfg.evaluate:
            accs.append(accuracy())
    return {
        "epoch_seconds": seconds,
        "train_loss": losses,
        "epoch_accuracy": accs if cfg.evaluate else None,
        "test_accuracy": accuracy(),
        "notes": f"torch {torch.__version__}, {torch.get_num_threads()} threads, {describe(model)}",
    }


def run_sklearn(data, cfg) -> dict:
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, X_test, y_test = data
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(cfg.hidden),
        activation=cfg.activation,
        solver="sgd",
        learning_rate_init=cfg.lr,
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=cfg.batch_size,
        alpha=0.0,
        max_iter=max(cfg.epochs, 1),
        tol=0.0,
        n_iter_no_change=10**9,
        warm_start=True,
        random_state=np.random.RandomState(cfg.seed),
    )
    seconds, losses = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One mini-batch creates sklearn's weights (and optimizer); overwrite them in place with fastnn's.
        clf.partial_fit(X[: cfg.batch_size], y[: cfg.batch_size], classes=np.arange(C))
        net = initial_network(cfg)
        for mine, theirs in zip(net.coefs + net.intercepts, clf.coefs_ + clf.intercepts_):
            theirs[...] = mine
        clf.loss_curve_, clf.t_, clf.n_iter_ = [], 0, 0
        for _ in range(cfg.epochs):
            t0 = time.perf_counter()
            clf.partial_fit(X, y)  # one shuffled epoch, input validation included
            seconds.append(time.perf_counter() - t0)
            losses.append(float(clf.loss_))
    return {
        "epoch_seconds": seconds,
        "train_loss": losses,
        "epoch_accuracy": None,
        "test_accuracy": float(clf.score(X_test, y_test)),
        "notes": f"scikit-learn {sklearn.__version__}, own shuffling, {clf.coefs_[0].dtype}, "
        f"hidden_layer_sizes={clf.hidden_layer_sizes}",
    }


def _status_mb(field: str) -> float | None:
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return None


def train_worker(name: str, cfg) -> dict:
    """Import, load the data, note the RSS, then train and report times, accuracy and peak RSS."""
    import resource

    importlib.import_module(MODULES[name])
    load = load_average()
    data = load_data(cfg)
    before = _status_mb("VmRSS")
    try:  # reset the kernel's peak-RSS counter, so the peak is that of training alone
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    run = {"numpy": run_fastnn, "numba": run_fastnn}.get(name)
    result = run(name, data, cfg) if run else {"torch": run_torch, "sklearn": run_sklearn}[name](data, cfg)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = (_status_mb("VmHWM") if reset else None) or maxrss
    return {
        **result,
        "load": load,
        "n_train": int(data[0].shape[0]),
        "n_test": int(data[2].shape[0]),
        "rss_before_mb": before,
        "peak_rss_mb": maxrss,
        "extra_mb": peak - before if before else None,
    }


def run_worker(kind: str, cfg) -> dict:
    return peak_worker(kind == "peak+info") if kind.startswith("peak") else train_worker(kind, cfg)
