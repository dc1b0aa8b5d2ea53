#!/usr/bin/env python
"""fastnn's MLPClassifier against scikit-learn's: the same arguments, fresh processes, interleaved.

    python benchmarks/estimator_vs_sklearn.py [--rounds 5] [--only mnist-sgd,mnist-adam,iris,...]
        [--max-iter 10] [--threads 1] [--wait-quiet 1.0] [--json results.json]

Each measurement is one fresh Python process that imports the estimator, loads
the data (untimed) and times ``fit`` alone, then scores the test split.  The
two implementations take turns (fastnn first in odd rounds, scikit-learn first
in even ones), so a slow phase of a shared machine hits both; a case's ratio is
the median over rounds of fastnn's fit time over scikit-learn's *in the same
round*, with the min-max in brackets (``--wait-quiet LOAD`` holds each
measurement until a shared machine's 1-minute load average is at most LOAD).
"Warm": numba's compiled kernels are loaded from its cache (one untimed fastnn
fit runs first to make sure of it).

The cases are scikit-learn's own: ``benchmarks/bench_mnist.py``'s two MLPs on
float32 MNIST (60000 training, 10000 test images; ``max_iter`` capped, default
10 epochs, since the ratio per epoch is what a longer fit multiplies), and the
small examples of its gallery at their default ``max_iter``: iris, digits, and
moons (``plot_classifier_comparison``'s MLP), float64 as they come.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: name -> (data, estimator arguments); max_iter=None keeps the case's own
CASES = {
    "mnist-sgd": (
        "mnist",
        dict(
            hidden_layer_sizes=(100, 100),
            alpha=1e-4,
            solver="sgd",
            learning_rate_init=0.2,
            momentum=0.9,
            tol=1e-4,
            random_state=1,
        ),
    ),
    "mnist-adam": (
        "mnist",
        dict(
            hidden_layer_sizes=(100, 100), alpha=1e-4, solver="adam", learning_rate_init=0.001, tol=1e-4, random_state=1
        ),
    ),
    "iris": ("iris", dict(random_state=1, max_iter=200)),
    "iris-lbfgs": ("iris", dict(solver="lbfgs", random_state=1, max_iter=200)),
    "digits": ("digits", dict(random_state=1, max_iter=200)),
    "moons": ("moons", dict(alpha=1, max_iter=1000, random_state=42)),
}


def load(name: str):
    """``(X_train, y_train, X_test, y_test)`` of a case's data set."""
    from sklearn.model_selection import train_test_split

    if name == "mnist":
        import numpy as np

        from fastnn import load_dataset

        d = load_dataset("mnist", dev_size=0)
        return d.X_train.astype(np.float32), d.y_train, d.X_test.astype(np.float32), d.y_test
    if name == "iris":
        from sklearn.datasets import load_iris

        X, y = load_iris(return_X_y=True)
    elif name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        from sklearn.datasets import make_moons

        X, y = make_moons(n_samples=200, noise=0.3, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
    return X_train, y_train, X_test, y_test


def worker(case: str, impl: str, max_iter: int | None) -> dict:
    """One timed fit (this process's only one): seconds, epochs and test accuracy."""
    import warnings

    warnings.simplefilter("ignore")  # ConvergenceWarning: both run exactly max_iter epochs here
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from fastnn import MLPClassifier
    data, params = CASES[case]
    X, y, X_test, y_test = load(data)
    if max_iter is not None and data == "mnist":
        params = {**params, "max_iter": max_iter}
    clf = MLPClassifier(**params)
    t0 = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
    row = {
        "case": case,
        "impl": impl,
        "fit_s": seconds,
        "n_iter": int(clf.n_iter_),
        "epoch_s": seconds / max(int(clf.n_iter_), 1),
        "test_accuracy": float(clf.score(X_test, y_test)),
    }
    if impl == "fastnn":
        from fastnn.estimator import auto

        batch = min(200, len(X)) if params.get("batch_size", "auto") == "auto" else params["batch_size"]
        row["backend"] = auto.training_backend("auto", len(X), clf.network_.sizes, clf.solver, clf.max_iter, batch)
    return row


def wait_for_quiet(load: float | None, patience: float = 600.0) -> None:
    """Wait (at most ``patience`` seconds) until the 1-minute load average is at most ``load``."""
    deadline = time.monotonic() + patience
    while load is not None and os.getloadavg()[0] > load and time.monotonic() < deadline:
        time.sleep(5)


def run_worker(case: str, impl: str, max_iter: int | None, threads: int | None = None) -> dict:
    command = [sys.executable, __file__, "--worker", case, impl]
    if max_iter is not None:
        command += ["--max-iter", str(max_iter)]
    env = dict(os.environ)
    if threads is not None:  # every library's threads: numba's, OpenMP's and BLAS's
        env.update(
            {
                name: str(threads)
                for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            }
        )
    proc = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{case} {impl} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    model = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {"cpu": model, "cores": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default=",".join(CASES), help="comma-separated cases: " + ", ".join(CASES))
    p.add_argument("--max-iter", type=int, default=10, help="epochs of the MNIST cases (default 10)")
    p.add_argument("--json", default=None, help="also write every measurement to this file")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="LOAD",
        help="before each measurement, wait (up to 10 min) for a 1-minute load average <= LOAD",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both implementations (numba, OpenMP and BLAS); default: all cores",
    )
    p.add_argument("--worker", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.max_iter)))
        return
    cases = args.only.split(",")
    unknown = set(cases) - set(CASES)
    if unknown:
        p.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(CASES)}")
    before = machine()
    threads = args.threads or before["cores"]
    print(f"# {before['cpu']}, {before['cores']} cores, {threads} thread(s) each, load {before['load']}", flush=True)
    rows = []
    for case in cases:
        run_worker(case, "fastnn", args.max_iter, args.threads)  # warm numba's cache, untimed
        for r in range(args.rounds):
            for impl in ("fastnn", "sklearn") if r % 2 == 0 else ("sklearn", "fastnn"):
                wait_for_quiet(args.wait_quiet)
                load = os.getloadavg()[0]
                row = run_worker(case, impl, args.max_iter, args.threads)
                row["round"], row["load_before"] = r, round(load, 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"# load after: {machine()['load']}\n")
    print(
        "| case | backend | fastnn fit s | scikit-learn fit s | epochs (fastnn, sklearn) | fastnn / sklearn "
        "| test acc (fastnn, sklearn) |"
    )
    print("|---|---|---:|---:|---|---:|---|")
    summary = {}
    for case in cases:
        mine = [r for r in rows if r["case"] == case]
        by_round = {(r["round"], r["impl"]): r for r in mine}
        ratios = [by_round[i, "fastnn"]["fit_s"] / by_round[i, "sklearn"]["fit_s"] for i in range(args.rounds)]
        med = {impl: statistics.median(r["fit_s"] for r in mine if r["impl"] == impl) for impl in ("fastnn", "sklearn")}
        iters = {impl: sorted({r["n_iter"] for r in mine if r["impl"] == impl}) for impl in ("fastnn", "sklearn")}
        acc = {
            impl: statistics.median(r["test_accuracy"] for r in mine if r["impl"] == impl)
            for impl in ("fastnn", "sklearn")
        }
        summary[case] = {"ratio": statistics.median(ratios), "ratios": ratios, "fit_s": med, "accuracy": acc}
        print(
            f"| {case} | {mine[0].get('backend', '?')} | {med['fastnn']:.3f} | {med['sklearn']:.3f} "
            f"| {iters['fastnn']}, {iters['sklearn']} | **{statistics.median(ratios):.2f}x** "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {acc['fastnn']:.4f}, {acc['sklearn']:.4f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": before, "threads": threads, "rows": rows, "summary": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
