"""``fastnn train``: train on a dataset, evaluate, and write the report folder.

Also ``fastnn-train`` and ``python scripts/train.py``.  Every problem the user
can fix (bad options, bad data, an unwritable output folder, a diverging run)
ends as one ``error: ...`` line on stderr and exit status 2, never a traceback.

A run keeps ``checkpoint.npz`` in its output folder, rewritten after every
epoch (:mod:`fastnn.checkpoint`).  Ctrl-C or SIGTERM stop training within a
few steps and say how to go on; ``fastnn train --resume OUT`` finishes the run
from its last finished epoch, with the options it started with, bit for bit
as the uninterrupted run (same backend and threads).  The checkpoint is removed
once the report is written; a report already in the folder from an earlier run
stays untouched until then.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from .._atomic import output_folder
from ..errors import Interrupted
from ._options import add_config_options, add_data_options, add_output_options, data_spec, given_config, out_folder

HELP = "train a network on a dataset and write its report folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn train``: one per :class:`~fastnn.config.TrainConfig` field, and the run's own."""
    from ..config import PRESET_HELP, PRESETS

    add_data_options(p)
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="a named recipe (explicit options override it): "
        + "; ".join(f"'{name}' {PRESET_HELP[name]}" for name in PRESETS).replace("%", "%%"),
    )
    add_config_options(p)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads: the numba kernels' (default NUMBA_NUM_THREADS or all cores), or BLAS's for numpy",
    )
    add_output_options(p, default_out="runs/latest", what="the report")
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="finish the interrupted run whose report folder is DIR, from its last finished "
        "epoch, with the options it started with (only --threads, --cache, --source, "
        "--no-plots and --quiet may be given)",
    )
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
    """Whether training is about to wait for the backend to compile its kernels (a cold cache)."""
    from ..backends import get_backend

    return epochs > 0 and not get_backend(backend).kernels_cached()


def resolve_options(args: argparse.Namespace):
    """The run's :class:`~fastnn.config.TrainConfig` and dev size: the defaults, then the preset,
    then the options given explicitly (validated)."""
    from ..config import DEV_SIZE, PRESETS, TrainConfig
    from ..data import parse_dev_size

    values: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig)}
    values["dev_size"] = DEV_SIZE
    values.update(PRESETS[args.preset])
    values.update(given_config(args))
    if args.dev_size is not None:
        values["dev_size"] = args.dev_size
    dev_size = parse_dev_size(values.pop("dev_size"))
    return TrainConfig(**values).validate(), dev_size


#: What --resume takes from the checkpoint instead of the command line.
_PLANNED = ("data", "dev_size", "out")


def _resumed(args: argparse.Namespace):
    """``(config, dev size, checkpoint metadata)`` of the run ``--resume DIR`` continues."""
    from .. import checkpoint
    from ..errors import FastnnError

    given = [f"--{name.replace('_', '-')}" for name in _PLANNED if getattr(args, name) is not None]
    given += [f"--{name.replace('_', '-')}" for name in given_config(args)]
    given += ["--preset"] if args.preset != "default" else []
    if given:
        raise FastnnError(
            f"--resume finishes the run saved in {args.resume} with its own options; "
            f"drop {', '.join(given)} (only --threads, --cache, --source, --no-plots and "
            f"--quiet may be given)"
        )
    meta, _ = checkpoint.load(args.resume)
    run = meta.get("metadata", {})
    if not isinstance(run, dict) or "data" not in run:
        raise FastnnError(
            f"{args.resume}: the checkpoint was not written by fastnn train (resume it from Python with fastnn.resume)"
        )
    return checkpoint.config_of(meta), run.get("dev_size"), {**run, "threads": meta.get("threads")}


class _StopOnSignals:
    """Within the block, Ctrl-C and SIGTERM ask training to stop at its next check (within a few
    steps) instead of interrupting it anywhere: calling the object says whether one came, and
    ``signum`` which."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._note)
        return self

    def _note(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _interrupted(exc, out: str, signum) -> Interrupted:
    """The one line an interrupted run ends with: where it stopped, what is kept, how to go on."""
    return Interrupted(
        f"{exc}; every finished epoch is saved in {out}/checkpoint.npz: fastnn train --resume {out} finishes the run",
        exit_status=143 if signum == signal.SIGTERM else 130,
    )


def train_and_report(args: argparse.Namespace):
    """Train, evaluate and write the report described by parsed ``args``; returns the metrics written."""
    if args.resume is not None:
        config, dev_size, run = _resumed(args)
        out_arg = args.resume
        threads = args.threads if args.threads is not None else run.get("threads")
        data_args = dict(
            spec=run["data"],
            cache=args.cache or run.get("cache"),
            source=args.source or run.get("source"),
            preset=run.get("preset", "default"),
        )
    else:
        config, dev_size = resolve_options(args)
        out_arg = out_folder(args)
        threads = args.threads
        data_args = dict(spec=data_spec(args), cache=args.cache, source=args.source, preset=args.preset)
    with output_folder(out_arg) as out:
        return _run(args, out, config, dev_size, threads, data_args)


def _run(args: argparse.Namespace, out, config, dev_size, threads, data_args: dict):
    """Load, train, evaluate and write into the output folder ``out`` (created and writable)."""
    from .. import checkpoint
    from ..backends import get_backend
    from ..data import load_dataset
    from ..errors import FastnnError
    from ..report import metrics, run_result, splits_of, write_report
    from ..training import resume, train

    backend = get_backend(config.backend)  # fail on a missing backend before loading data
    if args.resume is not None and args.threads is None:
        threads = _same_threads(backend, threads)
    backend.set_threads(threads)

    data = load_dataset(
        data_args["spec"], dev_size=dev_size, seed=config.seed, cache=data_args["cache"], source=data_args["source"]
    )
    compiling = _compiling(config.backend, config.epochs)
    if compiling and not args.quiet:
        print(COMPILING_NOTE, file=sys.stderr, flush=True)
    close_bar, update = _progress(config.epochs, args.quiet, compiling)
    saved = Path(out) / checkpoint.NAME
    keep = {
        "data": data_args["spec"],
        "dev_size": dev_size,
        "cache": data_args["cache"],
        "source": data_args["source"],
        "preset": data_args["preset"],
    }
    t0 = time.perf_counter()
    try:
        with _StopOnSignals() as stop:
            if args.resume is not None:
                net, history = resume(
                    saved,
                    data.X_train,
                    data.y_train,
                    X_dev=data.X_dev,
                    y_dev=data.y_dev,
                    progress=update,
                    checkpoint_metadata=keep,
                    stop=stop,
                )
            else:
                net, history = train(
                    data.X_train,
                    data.y_train,
                    config,
                    X_dev=data.X_dev,
                    y_dev=data.y_dev,
                    n_classes=len(data.class_names),
                    progress=update,
                    class_names=data.class_names,
                    checkpoint_path=saved,
                    checkpoint_metadata=keep,
                    stop=stop,
                )
    except Interrupted as exc:
        raise _interrupted(exc, str(out), stop.signum) from None
    finally:
        close_bar()
    train_seconds = time.perf_counter() - t0

    environment = {
        **backend.thread_info(),
        "platform": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    result = run_result(
        data, config, net, history, train_seconds=train_seconds, preset=data_args["preset"], environment=environment
    )
    try:
        write_report(out, result, splits_of(data), plots=not args.no_plots)
    except FastnnError as exc:
        raise FastnnError(
            f"{exc}; the trained run is kept in {saved}: fastnn train --resume {out} "
            f"writes the report without training again"
        ) from None
    saved.unlink(missing_ok=True)  # the run is complete: its report replaces the checkpoint
    return metrics(result)


def _same_threads(backend, recorded):
    """The thread count a resumed run trained with, where this machine allows it (results are
    bit for bit the uninterrupted run's only with the same count); else the backend's own."""
    try:
        backend.set_threads(recorded)
        return recorded
    except Exception:  # more threads than allowed here: resume with what there is
        return None


def _threads_note(metrics: dict) -> str:
    if "threads" not in metrics:
        return ""
    n = metrics["threads"]
    layer = f", {metrics['threading_layer']}" if "threading_layer" in metrics else ""
    return f" ({n} thread{'s' if n != 1 else ''}{layer})"


def _summary(metrics: dict, out: str) -> str:
    secs = metrics["epoch_seconds"]
    lines = [
        f"fastnn: {metrics['dataset']} ({metrics['n_train']} train / {metrics['n_dev']} dev), "
        f"backend {metrics['config']['backend']}" + _threads_note(metrics)
    ]
    if secs:
        steady = sorted(secs[1:] or secs)[len(secs[1:] or secs) // 2]
        lines.append(
            f"  {len(secs)} epochs in {metrics['train_seconds']:.1f} s "
            f"(first {secs[0]:.3f} s, median after {steady:.3f} s/epoch)"
        )
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
        print(_summary(metrics, args.resume if args.resume is not None else out_folder(args)))


def main(argv=None) -> int:
    """Entry point of ``fastnn-train`` and ``scripts/train.py``: ``fastnn train`` alone."""
    from . import main as fastnn_main

    return fastnn_main(argv, command="train")
