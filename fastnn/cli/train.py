"""``fastnn train``: train on a dataset, evaluate, and write the report folder.

Also ``fastnn-train`` and ``python scripts/train.py``.  Every problem the user
can fix (bad options, bad data, an unwritable output folder, a diverging run)
ends as one ``error: ...`` line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from ..errors import FastnnError

HELP = "train a network on a dataset and write its report folder"

DEFAULTS = dict(hidden=256, epochs=15, batch_size=128, lr=0.5, seed=0, dev_size=5000,
                optimizer="sgd", momentum=0.9, weight_decay=0.0, schedule="constant", patience=0)

# Named recipes; options given explicitly on the command line override them.
PRESETS = {
    "default": {},
    # 784-800-10, Nesterov momentum with a one-cycle schedule, trained on all but 1000 of
    # the 60k MNIST training images: 98.5% test accuracy (see the README for the spread).
    "best": dict(hidden=800, epochs=30, lr=0.2, optimizer="nesterov", momentum=0.9,
                 weight_decay=1e-4, schedule="onecycle", dev_size=1000),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn train``."""
    p.add_argument("--backend", default="numba", help="numba (fast, default) or numpy (reference)")
    p.add_argument("--data", default="mnist",
                   help="mnist, fashion-mnist, a Kaggle-style train.csv, or a folder of IDX files")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="a named recipe: 'default' (fast, plain SGD) or 'best' (784-800-10, Nesterov, "
                        "one-cycle; explicit options override it)")
    # Options default to None so that a preset can tell given options from defaults.
    p.add_argument("--hidden", type=int, help=f"hidden units (default {DEFAULTS['hidden']})")
    p.add_argument("--epochs", type=int, help=f"passes over the training set (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int, help=f"mini-batch size (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, help=f"(peak) learning rate (default {DEFAULTS['lr']})")
    p.add_argument("--optimizer", help="sgd (default), momentum, nesterov or adam")
    p.add_argument("--momentum", type=float, help="momentum, or Adam's beta1 (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay on the weights (default 0)")
    p.add_argument("--schedule", help="learning-rate schedule: constant (default), step, cosine or onecycle")
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a better dev accuracy, keeping the best weights (default 0: off)")
    p.add_argument("--seed", type=int, help="seed for init, shuffling and the dev split (default 0)")
    p.add_argument("--dev-size", type=float,
                   help=f"rows held out for the dev set: a count, or a fraction < 1 (default {DEFAULTS['dev_size']})")
    p.add_argument("--log-every", type=int, default=0, help="also record the train loss every N steps")
    p.add_argument("--threads", type=int, default=None,
                   help="threads: the numba kernels' (default NUMBA_NUM_THREADS or all cores), or BLAS's for numpy")
    p.add_argument("--out", default="runs/latest", help="folder for the report (default %(default)s)")
    p.add_argument("--cache", default=None, help="dataset cache folder (default: $FASTNN_DATA_DIR or the user cache)")
    p.add_argument("--source", default=None, help="a folder holding the dataset's IDX files, tried before downloading")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(_memory_hint="; try a smaller --hidden or --batch-size")


def _dev_size(value: float):
    """--dev-size as given: a whole row count, or a fraction strictly between 0 and 1."""
    import math

    if not math.isfinite(value) or value < 0:
        raise FastnnError(f"--dev-size must be a row count >= 0 or a fraction below 1, got {value:g}")
    if value >= 1 or value == 0:
        if value != int(value):
            raise FastnnError(f"--dev-size {value:g} is neither a whole row count nor a fraction below 1")
        return int(value)
    return value


def _prepare_out(out: str) -> Path:
    """Create the output folder and prove it is writable before spending time on training."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".fastnn-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FastnnError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


def _set_threads(backend: str, threads: int | None) -> dict:
    """Apply --threads and report the threading setup the run actually used.

    For numba it is the kernel thread count (at most NUMBA_NUM_THREADS); for the
    NumPy reference it caps BLAS's threads (the only parallel part of it).
    """
    if backend != "numba":
        if threads is None:
            return {}
        if not 1 <= threads <= (os.cpu_count() or 1):
            raise FastnnError(f"--threads must be between 1 and {os.cpu_count()} (the CPU count), got {threads}")
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
        return {"threads": threads}
    import numba

    from ..backends._numba_setup import threading_layer

    if threads is not None:
        if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
            raise FastnnError(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} "
                              f"(NUMBA_NUM_THREADS), got {threads}")
        numba.set_num_threads(threads)
    return {"threads": numba.get_num_threads(), "threading_layer": threading_layer()}


COMPILING_NOTE = "fastnn: compiling the numba kernels (first run only, ~20 s)"


def _progress(total: int, quiet: bool, compiling: bool = False):
    """tqdm over epochs on a terminal; silent when piped, in CI, or with --quiet.

    Returns ``(close, update)``.  With ``compiling`` (numba is about to compile
    the kernels during the first epoch) the bar first appears after that epoch,
    counting from 1: a bar at 0% for the compile time, and an ETA taken from
    it, would only mislead.
    """
    if quiet or not sys.stderr.isatty() or os.environ.get("CI"):
        return (lambda: None), (lambda row: None)  # not even importing tqdm
    from tqdm.auto import tqdm

    def make(done: int):
        return tqdm(total=total, initial=done, unit="epoch", leave=False)

    bars = [] if compiling else [make(0)]

    def update(row):
        shown = {"loss": f"{row['train_loss']:.4f}", "acc": f"{row['train_accuracy']:.4f}"}
        if "dev_accuracy" in row:
            shown["dev"] = f"{row['dev_accuracy']:.4f}"
        if not bars:  # the compiling first epoch is over: start the bar (and its clock) now
            bars.append(make(row["epoch"]))
            bars[0].set_postfix(shown)
            return
        bars[0].set_postfix(shown)
        bars[0].update(1)

    def close():
        for bar in bars:
            bar.close()

    return close, update


def _compiling(backend: str, epochs: int) -> bool:
    """Whether training is about to wait for numba to compile the kernels (a cold compile cache)."""
    if backend != "numba" or epochs == 0:
        return False
    from ..backends._numba_setup import kernels_cached

    return not kernels_cached()


def resolve_options(args: argparse.Namespace) -> dict:
    """Training options: the defaults, then the preset, then what was given explicitly."""
    options = dict(DEFAULTS)
    options.update(PRESETS[args.preset])
    for name in DEFAULTS:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def train_and_report(args: argparse.Namespace) -> dict:
    """Train, evaluate and write the report described by parsed ``args``; returns metrics."""
    from ..backends import get_backend
    from ..data import load_dataset
    from ..model import TrainConfig, train

    options = resolve_options(args)
    config = TrainConfig(backend=args.backend, log_every=args.log_every,
                         **{k: v for k, v in options.items() if k != "dev_size"}).validate()
    dev_size = _dev_size(options["dev_size"])
    out = _prepare_out(args.out)
    get_backend(config.backend)  # fail on a missing backend before loading data
    threading = _set_threads(config.backend, args.threads)

    data = load_dataset(args.data, dev_size=dev_size, seed=config.seed,
                        cache=args.cache, source=args.source)
    compiling = _compiling(config.backend, config.epochs)
    if compiling and not args.quiet:
        print(COMPILING_NOTE, file=sys.stderr, flush=True)
    close_bar, update = _progress(config.epochs, args.quiet, compiling)
    t0 = time.perf_counter()
    try:
        net, history = train(data.X_train, data.y_train, config, X_dev=data.X_dev, y_dev=data.y_dev,
                             n_classes=len(data.class_names), progress=update)
    finally:
        close_bar()
    train_seconds = time.perf_counter() - t0
    net.class_names = tuple(data.class_names)

    metrics = {
        "dataset": data.name,
        "n_train": int(len(data.y_train)), "n_dev": int(len(data.y_dev)),
        "preset": args.preset,
        "config": {k: getattr(config, k) for k in (
            "hidden", "epochs", "batch_size", "lr", "seed", "log_every", "optimizer", "momentum",
            "weight_decay", "schedule", "patience")},
        "backend": config.backend,
        **threading,
        "history": history.to_dict(),
        "epoch_seconds": [row["seconds"] for row in history.epochs],
        "train_seconds": train_seconds,
        "platform": {"python": platform.python_version(), "machine": platform.machine(),
                     "cpus": os.cpu_count()},
    }
    splits = {"dev": (data.X_dev, data.y_dev)}
    if data.X_test is not None:
        splits["test"] = (data.X_test, data.y_test)
    predictions = _evaluate(net, splits, config.backend, metrics)
    _write_report(out, net, metrics, history, splits, predictions, data, args.no_plots)
    return metrics


def _evaluate(net, splits, backend, metrics) -> dict:
    from ..metrics import classification_report

    predictions = {}
    for name, (X, y) in splits.items():
        if len(y) == 0:
            continue
        pred = net.predict(X, backend)
        predictions[name] = pred
        metrics[name] = classification_report(y, pred, net.n_classes, net.class_names)
    return predictions


def _write_report(out, net, metrics, history, splits, predictions, data, no_plots) -> None:
    """Write every report file into a staging folder, then move them into ``out`` together.

    A failure part way (a full disk, a name taken by a folder) leaves no new
    report file behind, and never a half-written one: files already moved are
    removed again.  (Files of an earlier run that they had replaced are gone.)
    """
    import shutil
    import tempfile

    try:
        stage = Path(tempfile.mkdtemp(prefix=".fastnn-report-", dir=out))
    except OSError as exc:
        raise FastnnError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    try:
        _render_report(stage, net, metrics, history, splits, predictions, data, no_plots)
        names = sorted(p.name for p in stage.iterdir())
        for name in names:
            if (out / name).is_dir():
                raise FastnnError(f"cannot write {out / name}: a folder of that name is in the way")
        moved = []
        try:
            # metrics.json goes last: its presence means the report is complete.
            for name in sorted(names, key=lambda n: n == "metrics.json"):
                os.replace(stage / name, out / name)
                moved.append(name)
        except OSError as exc:
            for name in moved:
                (out / name).unlink(missing_ok=True)
            raise FastnnError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _render_report(folder, net, metrics, history, splits, predictions, data, no_plots) -> None:
    from .._atomic import atomic_write_text
    from ..modelfile import save_network
    from ..report_html import write_report_html

    save_network(net, folder / "model.npz", {"dataset": metrics["dataset"], "config": metrics["config"],
                                             "backend": metrics["backend"]})
    if not no_plots:
        import numpy as np

        from .. import plots

        figures = {"history": "history.png"}
        plots.plot_history(history.to_dict(), folder / "history.png")
        shown = "test" if "test" in predictions else "dev" if "dev" in predictions else None
        if shown:
            X, y = splits[shown]
            pred = predictions[shown]
            report = metrics[shown]
            plots.plot_confusion_matrix(
                np.array(report["confusion_matrix"]), net.class_names, folder / "confusion_matrix.png",
                title=f"Confusion matrix ({data.name} {shown}, accuracy {report['accuracy']:.4f})")
            probs = net.predict_proba(X[:1])[0]
            plots.plot_prediction(X[0], net.class_names[pred[0]], net.class_names[y[0]],
                                  folder / "prediction.png", probs=probs, class_names=net.class_names)
            plots.plot_misclassified(X, y, pred, folder / "misclassified.png", class_names=net.class_names)
            figures.update(confusion_matrix="confusion_matrix.png", prediction="prediction.png",
                           misclassified="misclassified.png")
        metrics["figures"] = figures
    write_report_html(folder, metrics)
    try:
        atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    except OSError as exc:
        raise FastnnError(f"cannot write metrics.json: {exc.strerror or exc}") from None


def _threads_note(metrics: dict) -> str:
    if "threads" not in metrics:
        return ""
    n = metrics["threads"]
    layer = f", {metrics['threading_layer']}" if "threading_layer" in metrics else ""
    return f" ({n} thread{'s' if n != 1 else ''}{layer})"


def _summary(metrics: dict, out: str) -> str:
    secs = metrics["epoch_seconds"]
    lines = [f"fastnn: {metrics['dataset']} ({metrics['n_train']} train / {metrics['n_dev']} dev), "
             f"backend {metrics['backend']}"
             + _threads_note(metrics)]
    if secs:
        steady = sorted(secs[1:] or secs)[len(secs[1:] or secs) // 2]
        lines.append(f"  {len(secs)} epochs in {metrics['train_seconds']:.1f} s "
                     f"(first {secs[0]:.3f} s, median after {steady:.3f} s/epoch)")
    for split in ("dev", "test"):
        if split in metrics:
            r = metrics[split]
            lines.append(f"  {split}: accuracy {r['accuracy']:.4f}  macro F1 {r['f1']:.4f}")
    lines.append(f"  report: {out}/metrics.json")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """``fastnn train``: train, evaluate, write the report and print the summary."""
    metrics = train_and_report(args)
    if not args.quiet:
        print(_summary(metrics, args.out))


def main(argv=None) -> int:
    """Entry point of ``fastnn-train`` and ``scripts/train.py``: ``fastnn train`` alone."""
    from . import main as fastnn_main

    return fastnn_main(argv, command="train")
