#!/usr/bin/env python
"""Train the same network with fastnn (numpy, numba), PyTorch CPU and scikit-learn, side by side.

    python benchmarks/compare.py [--epochs 5] [--hidden 128] [--batch-size 128] [--lr 0.1]
                                 [--out .benchmarks/compare] [--only numpy,numba,torch,sklearn]
                                 [--no-memory]

One process, one copy of the data (real MNIST: 60000 training and 10000 test
images, float32 in [0, 1]), one configuration (784-h-10 ReLU/softmax, plain
mini-batch SGD, mean cross-entropy, no momentum or weight decay):

* **fastnn-numpy / fastnn-numba** -- ``fastnn.model.train`` from the weights of
  ``fastnn.model.init_network(784, h, 10, seed)``; the time of an epoch is
  ``History.epochs[i]["seconds"]`` (the epoch's ``permutation`` + ``train_steps``).
* **torch** -- a hand-written loop with ``torch.nn.functional`` over the *same*
  epoch permutations (fastnn's ``permutation(n, seed, epoch, out)``) from the
  same initial weights; ``z = addmm(b, x, W)``, ``relu``, mean ``cross_entropy``,
  autograd, ``p -= lr * grad``.  So its losses and accuracy should match
  fastnn's up to float32 rounding.  ``torch.set_num_threads(cores)``.  The
  permutations are computed before the timer starts (fastnn's epoch time
  includes its own permutation, ~1 ms with numba).
* **sklearn** -- ``MLPClassifier(solver="sgd", momentum=0, alpha=0, ...)``, one
  ``partial_fit`` call per epoch (each call is one shuffled epoch, and includes
  sklearn's input validation).  Its weights are overwritten in place with the
  same initial weights after a one-batch ``partial_fit`` that creates them, but
  it shuffles with its own RNG, so its accuracy is comparable, not identical.

Reported per implementation: the first epoch's seconds (numba's includes
loading or compiling its kernels), the median seconds of the later epochs,
samples/s, achieved GFLOP/s for the training FLOPs (formula in
:func:`training_flops`), that as a % of this machine's peak float32 matmul
(best of several ``np.matmul`` of 2048x2048 float32), test accuracy, and time
relative to fastnn-numba.  Peak memory of a one-epoch training run is measured
in a fresh child process per implementation (see :func:`memory_child`).

Writes ``compare.json`` and ``compare.png`` into ``--out`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

IMPLEMENTATIONS = ("numpy", "numba", "torch", "sklearn")
LABELS = {"numpy": "fastnn-numpy", "numba": "fastnn-numba", "torch": "PyTorch CPU",
          "sklearn": "scikit-learn MLP"}
D, C = 784, 10
REPO = Path(__file__).resolve().parent.parent


# --- FLOPs and the machine ----------------------------------------------------------


def training_flops(n: int, d: int, h: int, c: int) -> int:
    """Floating-point operations of one training epoch over ``n`` samples (multiply-add = 2).

    forward:  Z1 = X W1 (2ndh), logits = A1 W2 (2nhc)
    backward: dW2 = A1^T dlogits (2nhc), dA1 = dlogits W2^T (2nhc), dW1 = X^T dZ1 (2ndh)
    total:    4ndh + 6nhc   (elementwise work -- bias, ReLU, softmax, update -- is left out)
    """
    return 4 * n * d * h + 6 * n * h * c


def peak_matmul_gflops(size: int = 2048, repeats: int = 7) -> float:
    """Best-of-``repeats`` GFLOP/s of ``np.matmul`` on ``size x size`` float32 (all BLAS threads)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def machine_info() -> dict:
    import numba
    from threadpoolctl import threadpool_info

    import fastnn.backends.numba_backend  # noqa: F401  (loads SciPy's BLAS too, so both are listed)
    from fastnn.backends._numba_setup import threading_layer

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
            f"{i.get('num_threads')} threads, {Path(i.get('filepath', '')).name})"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": usable, "blas": blas,
            "numba_threads": numba.get_num_threads(), "numba_threading_layer": threading_layer(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform()}


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# --- data ---------------------------------------------------------------------------


def load_mnist():
    """Real MNIST: X_train (60000, 784), y_train, X_test (10000, 784), y_test."""
    from fastnn.data import load_dataset

    ds = load_dataset("mnist", dev_size=0)
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def initial_network(hidden: int, seed: int):
    from fastnn.model import init_network

    return init_network(D, hidden, C, seed)


# --- the implementations ------------------------------------------------------------
# Each trains `epochs` epochs and returns {"epoch_seconds": [...], "train_loss": [...],
# "test_accuracy": float, "notes": str}.


def run_fastnn(backend: str, data, cfg) -> dict:
    from fastnn.model import TrainConfig, train

    X, y, X_test, y_test = data
    net, history = train(X, y, TrainConfig(hidden=cfg.hidden, epochs=cfg.epochs,
                                           batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                                           backend=backend),
                         n_classes=C, network=initial_network(cfg.hidden, cfg.seed))
    acc = float(np.mean(net.predict(X_test, backend) == y_test)) if X_test is not None else None
    return {"epoch_seconds": [r["seconds"] for r in history.epochs],
            "train_loss": [r["train_loss"] for r in history.epochs],
            "test_accuracy": acc,
            "notes": "fastnn.model.train; epoch time = permutation + train_steps"}


def epoch_permutations(n: int, seed: int, epochs: int) -> list[np.ndarray]:
    """fastnn's shuffles of ``range(n)`` for epochs 0..epochs-1 (the reference backend's, = numba's)."""
    from fastnn.backends import numpy_backend

    perms = []
    for epoch in range(epochs):
        perm = np.empty(n, np.int64)
        numpy_backend.permutation(n, seed, epoch, perm)
        perms.append(perm)
    return perms


def run_torch(data, cfg) -> dict:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count() or 1)
    X, y, X_test, y_test = data
    n, bs, lr = X.shape[0], cfg.batch_size, cfg.lr
    net = initial_network(cfg.hidden, cfg.seed)
    W1, b1, W2, b2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (net.W1, net.b1, net.W2, net.b2))
    params = (W1, b1, W2, b2)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    perms = [torch.from_numpy(p) for p in epoch_permutations(n, cfg.seed, cfg.epochs)]
    seconds, losses = [], []
    for epoch in range(cfg.epochs):
        perm = perms[epoch]
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64)
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs]
            xb, yb = Xt.index_select(0, idx), yt.index_select(0, idx)
            a1 = torch.relu(torch.addmm(b1, xb, W1))
            logits = torch.addmm(b2, a1, W2)
            loss = F.cross_entropy(logits, yb)  # mean over the batch, as fastnn's gradient
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(g, alpha=lr)
                loss_sum += loss.detach() * idx.shape[0]
        seconds.append(time.perf_counter() - t0)
        losses.append(float(loss_sum) / n)
    acc = None
    if X_test is not None:
        with torch.inference_mode():
            logits = torch.relu(torch.from_numpy(X_test) @ W1 + b1) @ W2 + b2
            acc = float((logits.argmax(1) == torch.from_numpy(y_test)).double().mean())
    return {"epoch_seconds": seconds, "train_loss": losses, "test_accuracy": acc,
            "notes": f"torch {torch.__version__}, {torch.get_num_threads()} threads, autograd; "
                     f"same init and shuffles as fastnn (permutation not timed)"}


def run_sklearn(data, cfg) -> dict:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, X_test, y_test = data
    clf = MLPClassifier(hidden_layer_sizes=(cfg.hidden,), activation="relu", solver="sgd",
                        learning_rate="constant", learning_rate_init=cfg.lr, momentum=0.0,
                        nesterovs_momentum=False, batch_size=cfg.batch_size, alpha=0.0,
                        max_iter=max(cfg.epochs, 1), shuffle=True, tol=0.0,
                        n_iter_no_change=10**9, early_stopping=False, warm_start=True,
                        random_state=np.random.RandomState(cfg.seed))
    # Let sklearn create its weights (and its optimizer, which holds references to
    # them) with one mini-batch, then overwrite them in place with fastnn's initial ones.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(X[:cfg.batch_size], y[:cfg.batch_size], classes=np.arange(C))
    net = initial_network(cfg.hidden, cfg.seed)
    for mine, theirs in zip((net.W1, net.W2, net.b1, net.b2), clf.coefs_ + clf.intercepts_):
        assert theirs.shape == mine.shape and theirs.dtype == mine.dtype, (theirs.shape, theirs.dtype)
        theirs[...] = mine
    clf.loss_curve_, clf.t_, clf.n_iter_ = [], 0, 0
    seconds, losses = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(cfg.epochs):
            t0 = time.perf_counter()
            clf.partial_fit(X, y)  # one shuffled epoch
            seconds.append(time.perf_counter() - t0)
            losses.append(float(clf.loss_))
    acc = float(clf.score(X_test, y_test)) if X_test is not None else None
    return {"epoch_seconds": seconds, "train_loss": losses, "test_accuracy": acc,
            "notes": f"scikit-learn {sklearn.__version__}, one partial_fit per epoch "
                     f"(includes input validation); same init, its own shuffling; "
                     f"computes in {clf.coefs_[0].dtype}"}


def run(name: str, data, cfg) -> dict:
    if name in ("numpy", "numba"):
        return run_fastnn(name, data, cfg)
    return {"torch": run_torch, "sklearn": run_sklearn}[name](data, cfg)


def available(name: str) -> str | None:
    """None if ``name`` can run here, else the reason it cannot."""
    module = {"torch": "torch", "sklearn": "sklearn"}.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as exc:
        return f"not installed ({exc}); pip install 'fastnn[peers]'"
    return None


# --- peak memory, in a fresh child per implementation ----------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class _Sampler(threading.Thread):
    """Samples RSS every millisecond (fallback when VmHWM cannot be reset)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss_bytes()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.001):
            self.peak = max(self.peak, _rss_bytes())


def memory_child(name: str, cfg) -> dict:
    """Peak RSS of ``cfg.memory_epochs`` epochs of training, beyond what the process held before.

    The process loads the data, then trains once on 512 rows (imports, numba's
    kernels, torch's thread pool: all warmed up), then records its RSS
    (``baseline``), resets the kernel's peak counter and trains on the full
    training set.  ``extra = peak - baseline`` is the memory the training run
    itself needed; it is compared with the size of the training set (X + y).
    """
    rss_start = _rss_bytes()
    X, y, X_test, y_test = load_mnist()
    rss_data = _rss_bytes()
    small = argparse.Namespace(**{**vars(cfg), "epochs": 1})
    run(name, (X[:512], y[:512], None, None), small)
    baseline = _rss_bytes()
    exact = _reset_peak()
    sampler = _Sampler()
    sampler.start()
    full = argparse.Namespace(**{**vars(cfg), "epochs": cfg.memory_epochs})
    run(name, (X, y, None, None), full)
    sampler.stop.set()
    sampler.join()
    hwm = _status_kb("VmHWM")
    peak = hwm * 1024 if exact and hwm is not None else sampler.peak
    mb = 1024 * 1024
    train_bytes = X.nbytes + y.nbytes
    return {"rss_start_mb": rss_start / mb, "rss_after_data_mb": rss_data / mb,
            "baseline_mb": baseline / mb, "peak_mb": peak / mb, "extra_mb": (peak - baseline) / mb,
            "train_set_mb": train_bytes / mb, "extra_over_train_set": (peak - baseline) / train_bytes,
            "sampled_peak_mb": sampler.peak / mb,
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "method": "VmHWM reset via /proc/self/clear_refs" if exact else "RSS sampled every 1 ms",
            "epochs": cfg.memory_epochs}


def measure_memory(name: str, cfg) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", name,
               "--hidden", str(cfg.hidden), "--batch-size", str(cfg.batch_size),
               "--lr", str(cfg.lr), "--seed", str(cfg.seed),
               "--memory-epochs", str(cfg.memory_epochs)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {result.returncode}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- report ---------------------------------------------------------------------------


def summarise(name: str, res: dict, flops: int, n: int, peak: float, ref: dict | None) -> dict:
    secs = res["epoch_seconds"]
    steady = statistics.median(secs[1:]) if len(secs) > 1 else secs[0]
    gflops = flops / steady / 1e9
    row = {"implementation": LABELS[name], "first_epoch_s": secs[0], "epoch_s": steady,
           "samples_per_s": n / steady, "gflops": gflops, "percent_of_peak": 100 * gflops / peak,
           "test_accuracy": res["test_accuracy"], "final_train_loss": res["train_loss"][-1]}
    if ref is not None:
        row["time_vs_numba"] = steady / ref["epoch_s"]
    return row


def markdown(summary: dict, memory: dict, info: dict, cfg, peak: float, flops: int) -> str:
    lines = [f"Config: 784-{cfg.hidden}-10, batch {cfg.batch_size}, lr {cfg.lr}, "
             f"{cfg.epochs} epochs on MNIST (60000 train / 10000 test); "
             f"{flops / 1e9:.1f} GFLOP per epoch (4ndh + 6nhc).  "
             f"Peak float32 matmul: {peak:.1f} GFLOP/s.",
             "",
             "| implementation | 1st epoch (s) | s/epoch (median of later epochs) | samples/s "
             "| GFLOP/s | % of peak | test acc | time vs fastnn-numba |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in summary.values():
        ratio = f"{row['time_vs_numba']:.2f}x" if "time_vs_numba" in row else "-"
        acc = f"{100 * row['test_accuracy']:.2f}%" if row["test_accuracy"] is not None else "-"
        lines.append(f"| {row['implementation']} | {row['first_epoch_s']:.3f} | {row['epoch_s']:.3f} "
                     f"| {row['samples_per_s']:,.0f} | {row['gflops']:.1f} | {row['percent_of_peak']:.1f}% "
                     f"| {acc} | {ratio} |")
    if memory:
        lines += ["", "Peak memory of a training run (fresh process each; extra = peak RSS "
                  "during training - RSS before it):", "",
                  "| implementation | RSS before training (MB) | peak RSS (MB) | extra (MB) "
                  "| training set (MB) | extra / training set |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, m in memory.items():
            if "error" in m:
                lines.append(f"| {LABELS[name]} | failed: {m['error']} | | | | |")
                continue
            lines.append(f"| {LABELS[name]} | {m['baseline_mb']:.0f} | {m['peak_mb']:.0f} "
                         f"| {m['extra_mb']:.1f} | {m['train_set_mb']:.1f} "
                         f"| {m['extra_over_train_set']:.2f} |")
    lines += ["", f"Machine: {info['cpu']}, {info['cores']} cores; BLAS: {'; '.join(info['blas'])}; "
              f"numba {info['numba']} ({info['numba_threads']} threads, "
              f"{info['numba_threading_layer']} layer); load average before/after: "
              f"{info['load_before']} / {info['load_after']}."]
    return "\n".join(lines)


def plot(summary: dict, memory: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["implementation"] for row in summary.values()]
    fig, axes = plt.subplots(1, 2 if memory else 1, figsize=(11 if memory else 6, 4), squeeze=False)
    ax = axes[0, 0]
    values = [row["samples_per_s"] / 1000 for row in summary.values()]
    bars = ax.bar(names, values, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][:len(names)])
    ax.bar_label(bars, labels=[f"{v:,.0f}k\n{r['epoch_s']:.2f} s" for v, r in zip(values, summary.values())],
                 fontsize=8)
    ax.set_ylabel("training throughput (thousand samples/s)")
    ax.set_title("Training speed (median epoch)")
    ax.tick_params(axis="x", labelrotation=15)
    ax.margins(y=0.2)
    if memory:
        ax = axes[0, 1]
        ok = {k: m for k, m in memory.items() if "error" not in m}
        bars = ax.bar([LABELS[k] for k in ok], [m["extra_mb"] for m in ok.values()], color="#8172b2")
        ax.bar_label(bars, fmt="%.0f MB", fontsize=8)
        if ok:
            ax.axhline(next(iter(ok.values()))["train_set_mb"], color="k", ls="--", lw=1,
                       label="size of the training set")
            ax.legend(fontsize=8)
        ax.set_ylabel("peak RSS during training - RSS before (MB)")
        ax.set_title("Extra memory of a training run")
        ax.tick_params(axis="x", labelrotation=15)
        ax.margins(y=0.2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main -----------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="epochs per implementation (default 5)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / ".benchmarks" / "compare",
                   help="folder for compare.json and compare.png (default .benchmarks/compare)")
    p.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                   help="comma-separated subset of numpy,numba,torch,sklearn")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--memory-epochs", type=int, default=1, help="epochs per memory run (default 1)")
    p.add_argument("--memory-child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(IMPLEMENTATIONS)
    if unknown:
        p.error(f"unknown implementation(s) {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    cfg = parse_args(argv)
    if cfg.memory_child:
        print(json.dumps(memory_child(cfg.memory_child, cfg)))
        return 0
    names = [n for n in IMPLEMENTATIONS if n in cfg.only]
    skipped = {}
    for name in list(names):
        reason = available(name)
        if reason:
            skipped[name] = reason
            names.remove(name)
            print(f"skipping {LABELS[name]}: {reason}", file=sys.stderr)

    info = machine_info()
    info["load_before"] = _load()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_before']}", file=sys.stderr)
    data = load_mnist()
    n = data[0].shape[0]
    flops = training_flops(n, D, cfg.hidden, C)
    peak = peak_matmul_gflops()
    print(f"peak float32 matmul: {peak:.1f} GFLOP/s", file=sys.stderr)

    results = {}
    for name in names:
        load = _load()
        print(f"training {LABELS[name]} for {cfg.epochs} epochs (load {load}) ...", file=sys.stderr)
        results[name] = run(name, data, cfg)
        results[name]["load_before"] = load
        secs = ", ".join(f"{s:.3f}" for s in results[name]["epoch_seconds"])
        print(f"  epochs: {secs} s; test accuracy {results[name]['test_accuracy']}", file=sys.stderr)
    info["load_after"] = _load()

    summary = {}
    ref = None
    if "numba" in results:
        ref = summarise("numba", results["numba"], flops, n, peak, None)
    for name in names:
        summary[name] = summarise(name, results[name], flops, n, peak, ref)

    memory = {}
    if not cfg.no_memory:
        for name in names:
            print(f"peak memory of {LABELS[name]} (child process) ...", file=sys.stderr)
            memory[name] = measure_memory(name, cfg)

    table = markdown(summary, memory, info, cfg, peak, flops)
    print(table)
    cfg.out.mkdir(parents=True, exist_ok=True)
    report = {"config": {"hidden": cfg.hidden, "batch_size": cfg.batch_size, "lr": cfg.lr,
                         "epochs": cfg.epochs, "seed": cfg.seed, "n_train": n,
                         "n_test": data[2].shape[0]},
              "flops_per_epoch": flops, "flops_formula": "4*n*d*h + 6*n*h*c",
              "peak_matmul_gflops": peak, "machine": info, "results": results,
              "summary": summary, "memory": memory, "skipped": skipped, "markdown": table}
    (cfg.out / "compare.json").write_text(json.dumps(report, indent=2))
    plot(summary, memory, cfg.out / "compare.png",
         f"784-{cfg.hidden}-10, batch {cfg.batch_size}, MNIST; {info['cpu']}, {info['cores']} cores")
    print(f"\nwrote {cfg.out / 'compare.json'} and {cfg.out / 'compare.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
