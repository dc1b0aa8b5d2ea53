"""``fastnn train``: train on a dataset, evaluate, and write the report folder.

Also ``fastnn-train`` and ``python scripts/train.py``.  Every problem the user
can fix (bad options, bad data, an unwritable output folder, a diverging run)
ends as one ``error: ...`` line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import fields

from .._atomic import writable_folder
from ._options import (add_config_options, add_data_options, add_output_options, data_spec, given_config,
                       out_folder)

HELP = "train a network on a dataset and write its report folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn train``: one per :class:`~fastnn.config.TrainConfig` field, and the run's own."""
    from ..config import PRESET_HELP, PRESETS

    add_data_options(p)
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="a named recipe (explicit options override it): "
                        + "; ".join(f"'{name}' {PRESET_HELP[name]}" for name in PRESETS).replace("%", "%%"))
    add_config_options(p)
    p.add_argument("--threads", type=int, default=None,
                   help="threads: the numba kernels' (default NUMBA_NUM_THREADS or all cores), or BLAS's for numpy")
    add_output_options(p, default_out="runs/latest", what="the report")
    p.set_defaults(_memory_hint="; try a smaller --hidden or --batch-size")


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


def resolve_options(args: argparse.Namespace):
    """The run's :class:`~fastnn.config.TrainConfig` and dev size: the defaults, then the preset,
    then the options given explicitly (validated)."""
    from ..config import DEV_SIZE, PRESETS, TrainConfig
    from ..data import parse_dev_size

    values = {f.name: f.default for f in fields(TrainConfig)}
    values["dev_size"] = DEV_SIZE
    values.update(PRESETS[args.preset])
    values.update(given_config(args))
    if args.dev_size is not None:
        values["dev_size"] = args.dev_size
    dev_size = parse_dev_size(values.pop("dev_size"))
    return TrainConfig(**values).validate(), dev_size


def train_and_report(args: argparse.Namespace):
    """Train, evaluate and write the report described by parsed ``args``; returns the metrics written."""
    from ..backends import get_backend
    from ..data import load_dataset
    from ..model import train
    from ..report import metrics, run_result, splits_of, write_report

    config, dev_size = resolve_options(args)
    out = writable_folder(out_folder(args))
    backend = get_backend(config.backend)  # fail on a missing backend before loading data
    backend.set_threads(args.threads)

    data = load_dataset(data_spec(args), dev_size=dev_size, seed=config.seed,
                        cache=args.cache, source=args.source)
    compiling = _compiling(config.backend, config.epochs)
    if compiling and not args.quiet:
        print(COMPILING_NOTE, file=sys.stderr, flush=True)
    close_bar, update = _progress(config.epochs, args.quiet, compiling)
    t0 = time.perf_counter()
    try:
        net, history = train(data.X_train, data.y_train, config, X_dev=data.X_dev, y_dev=data.y_dev,
                             n_classes=len(data.class_names), progress=update,
                             class_names=data.class_names)
    finally:
        close_bar()
    train_seconds = time.perf_counter() - t0

    environment = {**backend.thread_info(),
                   "platform": {"python": platform.python_version(), "machine": platform.machine(),
                                "cpus": os.cpu_count()}}
    result = run_result(data, config, net, history, train_seconds=train_seconds, preset=args.preset,
                        environment=environment)
    write_report(out, result, splits_of(data), plots=not args.no_plots)
    return metrics(result)


def _threads_note(metrics: dict) -> str:
    if "threads" not in metrics:
        return ""
    n = metrics["threads"]
    layer = f", {metrics['threading_layer']}" if "threading_layer" in metrics else ""
    return f" ({n} thread{'s' if n != 1 else ''}{layer})"


def _summary(metrics: dict, out: str) -> str:
    secs = metrics["epoch_seconds"]
    lines = [f"fastnn: {metrics['dataset']} ({metrics['n_train']} train / {metrics['n_dev']} dev), "
             f"backend {metrics['config']['backend']}"
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
        print(_summary(metrics, out_folder(args)))


def main(argv=None) -> int:
    """Entry point of ``fastnn-train`` and ``scripts/train.py``: ``fastnn train`` alone."""
    from . import main as fastnn_main

    return fastnn_main(argv, command="train")
