"""Hyperparameter sweeps on a Dask cluster: many trainings, one table (``fastnn.sweep``, ``fastnn sweep``).

One training takes seconds; a grid of them times a few seeds is what outgrows
one process.  :func:`sweep` hands the trials to **Dask distributed** -- an
in-process :class:`~distributed.LocalCluster` sized to the machine by default,
or any running cluster (``dask scheduler`` / ``dask worker``) by address --
and returns one row per trial as a :class:`pandas.DataFrame`.

How the work is laid out:

* **Validation first.**  The grid (``{field: [values]}`` over any
  :class:`~fastnn.model.TrainConfig` field) and the fixed options are checked
  before any cluster starts: an unknown field, a value of the wrong type or out
  of range, an empty list, a field both fixed and varied are one
  :class:`~fastnn.errors.FastnnError`.  What can only fail while training (a
  diverging learning rate, early stopping without a dev split) fails that trial
  alone: its row holds the error and the sweep goes on.
* **Data once per worker.**  By default each worker process loads the dataset
  itself, once (``load_dataset(data, dev_size=0)``, kept in the process), and
  splits the dev set per trial seed exactly as ``fastnn train`` does (the split
  is cached for consecutive trials of one seed).  Tasks carry only a config.  A
  named dataset (``mnist``) is fetched into each machine's own cache, so nothing
  big crosses the network.  A *path* must then exist on every worker: true on a
  LocalCluster (same machine) or a shared file system.  For a remote cluster
  without one, ``scatter=True`` (``--scatter``) loads the data on the client and
  broadcasts it once to every worker (~220 MB for MNIST, per worker).
* **Threads.**  A trial's numba kernels use ``threads_per_trial`` threads
  (``numba.set_num_threads`` in the task).  The LocalCluster has
  ``cores // threads_per_trial`` single-threaded worker processes, each started
  with ``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS`` set to that count, so the
  trials never ask for more threads than there are cores.  On an existing
  cluster the default is the worker's share of its machine's cores (its
  ``NUMBA_NUM_THREADS`` divided by its Dask threads).  The workers share the
  client's numba compile cache (same installation, same folder; see
  :mod:`fastnn.backends._numba_setup`), so a warm cache is loaded, not recompiled.
* **Failures.**  A trial's own error is caught and recorded.  A worker that dies
  mid-trial is replaced and the trial rerun by Dask (its ``allowed-failures``);
  a trial that kills every worker it lands on is recorded as failed.  Ctrl-C
  cancels every pending trial and shuts the local cluster down.

With ``out``, the results are written there atomically: ``sweep.csv``,
``sweep.json`` (written last: its presence means the sweep is complete),
``sweep.png`` (accuracy against each varied parameter, mean and min-max over
seeds) and ``best/``, the report folder of the best trial by dev accuracy
(``model.npz``, ``metrics.json`` and figures, as ``fastnn train`` writes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

from .errors import FastnnError
from .model import TrainConfig

__all__ = ["sweep", "parse_grid", "check_grid", "summarize"]

#: TrainConfig fields a sweep may vary or fix (log_every only adds history rows).
FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "log_every")
_TYPES = {f.name: type(f.default) for f in dataclasses.fields(TrainConfig)}
#: The options a sweep fixes unless told otherwise: TrainConfig's, with the fast backend.
DEFAULT_BACKEND = "numba"
#: Columns of the result table after the config, in order.
RESULT_COLUMNS = ("dev_accuracy", "dev_f1", "test_accuracy", "test_f1", "epochs_run", "train_seconds",
                  "threads", "worker", "error")


# --------------------------------------------------------------------------
# The grid: parsing and validation (client side, before any cluster exists)
# --------------------------------------------------------------------------

def parse_grid(items) -> dict:
    """``["hidden=128,256", "lr=0.1,0.5"]`` -> ``{"hidden": ["128", "256"], "lr": ["0.1", "0.5"]}``.

    Values stay strings here; :func:`check_grid` converts them to the field's type.
    """
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise FastnnError(f"--grid takes FIELD=V1,V2,..., got {item!r}")
        if name in grid:
            raise FastnnError(f"--grid {name} is given twice; list all its values in one --grid")
        grid[name] = [v.strip() for v in values.split(",")] if values.strip() else []
    return grid


def _convert(name: str, value):
    """``value`` as the type of TrainConfig's field ``name`` (strings from the command line are parsed)."""
    kind = _TYPES[name]
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            raise FastnnError(f"{name} takes {'an integer' if kind is int else 'a number'}, "
                              f"got {value!r}") from None
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()  # plain Python values in the table and the JSON
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise FastnnError(f"{name} takes {kind.__name__} values, got {value!r}")
    return value


def _check_field(name: str, where: str) -> None:
    if name not in FIELDS:
        raise FastnnError(f"{where} {name!r} is not a training option; choose from {', '.join(FIELDS)}")


def check_grid(grid: dict, fixed: dict | None = None, seeds: int = 1) -> tuple[dict, dict]:
    """Validate a grid and the fixed options; return both with values converted to the fields' types.

    Raises :class:`FastnnError` for an unknown field, a value of the wrong type
    or out of range, an empty or repeated value list, a field both fixed and
    varied, or ``seed`` in the grid together with ``seeds > 1``.
    """
    if not isinstance(grid, dict) or not grid:
        raise FastnnError("the grid is empty: give at least one field and its values, "
                          "e.g. {'hidden': [128, 256]} or --grid hidden=128,256")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise FastnnError(f"seeds must be a positive integer (repeats per grid point), got {seeds!r}")
    fixed = dict(fixed or {})
    for name in fixed:
        _check_field(name, "fixed option")
    fixed = {name: _convert(name, value) for name, value in fixed.items()}
    checked = {}
    for name, values in grid.items():
        _check_field(str(name), "grid field")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = [_convert(name, v) for v in values]
        if not values:
            raise FastnnError(f"grid field {name!r} has no values")
        if len(set(values)) != len(values):
            raise FastnnError(f"grid field {name!r} lists a value twice: {values}")
        if name in fixed:
            raise FastnnError(f"{name} is both fixed and varied; give it in the grid only")
        checked[name] = values
    if "backend" not in checked:
        fixed.setdefault("backend", DEFAULT_BACKEND)
    if "seed" in checked and seeds > 1:
        raise FastnnError("seed is in the grid, so --seeds (repeats with consecutive seeds) must be 1")
    # Every value must make a valid config with the fixed options (lr=-1, optimizer=foo, ...).
    TrainConfig(**fixed).validate()
    for name, values in checked.items():
        for value in values:
            TrainConfig(**{**fixed, name: value}).validate()
    return checked, fixed


def make_trials(grid: dict, fixed: dict, seeds: int = 1) -> list[dict]:
    """Every grid point (in grid order, last field fastest) times ``seeds`` consecutive seeds."""
    names = list(grid)
    base_seed = fixed.get("seed", 0)
    trials = []
    for point in itertools.product(*(grid[n] for n in names)):
        for k in range(seeds if "seed" not in grid else 1):
            config = {**fixed, **dict(zip(names, point))}
            if "seed" not in grid:
                config["seed"] = base_seed + k
            trials.append({field: config[field] for field in FIELDS if field in config})
    return trials


def _check_dev_size(dev_size):
    import numbers

    if isinstance(dev_size, bool) or not isinstance(dev_size, numbers.Real) or not math.isfinite(dev_size) \
            or dev_size < 0:
        raise FastnnError(f"dev size must be a row count >= 0 or a fraction below 1, got {dev_size!r}")
    if dev_size >= 1 or dev_size == 0:
        if dev_size != int(dev_size):
            raise FastnnError(f"dev size {dev_size:g} is neither a whole row count nor a fraction below 1")
        return int(dev_size)
    return float(dev_size)


def _check_data(data) -> None:
    """A dataset that cannot exist anywhere fails here, before any cluster starts."""
    from . import data as datasets

    names = tuple(getattr(datasets, "_DATASETS", ()))  # the named datasets (mnist, ...)
    if isinstance(data, str) and data.strip().lower().replace("_", "-") in names or Path(data).exists():
        return
    if names:
        raise FastnnError(f"unknown dataset {str(data)!r}: not one of {', '.join(names)} "
                          f"and no such file or folder")


# --------------------------------------------------------------------------
# The worker side: one trial
# --------------------------------------------------------------------------

# Per worker process: the loaded datasets (dev_size=0) by source, and the last split.
_LOADED: dict = {}
_SPLIT: list = [None]


def _base_dataset(ref):
    """The whole dataset of ``ref``: a scattered Dataset as is, or ``(spec, cache, source)`` loaded once."""
    if not isinstance(ref, tuple):
        return ref
    if ref not in _LOADED:
        from .data import load_dataset

        spec, cache, source = ref
        _LOADED.clear()  # one dataset per worker at a time
        _LOADED[ref] = load_dataset(spec, dev_size=0, seed=0, cache=cache, source=source)
    return _LOADED[ref]


def _split_dataset(base, dev_size, seed):
    """What ``load_dataset(spec, dev_size=dev_size, seed=seed)`` returns, from the loaded whole.

    ``load_dataset`` splits the uint8 pixels and then normalises; normalising is
    elementwise, so splitting the normalised whole picks the identical rows and values.
    """
    if dev_size == 0:
        return base
    cached = _SPLIT[0]
    if cached is not None and cached[0] is base and cached[1:3] == (dev_size, seed):
        return cached[3]
    from .data import Dataset, train_dev_split

    X_train, y_train, X_dev, y_dev = train_dev_split(base.X_train, base.y_train, dev_size, seed)
    data = Dataset(name=base.name, X_train=X_train, y_train=y_train, X_dev=X_dev, y_dev=y_dev,
                   X_test=base.X_test, y_test=base.y_test, class_names=base.class_names)
    _SPLIT[0] = (base, dev_size, seed, data)
    return data


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _trial_threads(threads) -> int:
    """This trial's thread count: ``threads``, or per worker address from a dict, or the worker's share."""
    if isinstance(threads, dict):
        threads = threads.get(_worker_address())
    if threads is None:
        import numba

        try:
            from distributed import get_worker

            nthreads = get_worker().state.nthreads
        except (ImportError, ValueError, AttributeError):
            nthreads = 1
        threads = max(1, numba.config.NUMBA_NUM_THREADS // max(1, nthreads))
    return int(threads)


@contextlib.contextmanager
def _threads(backend: str, threads: int):
    """Run the block with ``threads`` numba threads (numba) or BLAS threads (numpy); yields the count."""
    if backend == "numba":
        import numba

        n = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
        before = numba.get_num_threads()
        numba.set_num_threads(n)  # per calling thread: this task's only
        try:
            yield n
        finally:
            numba.set_num_threads(before)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads, user_api="blas"):
            yield threads


def run_trial(index: int, config: dict, data_ref, dev_size, threads=None) -> dict:
    """Train and evaluate one config on this worker: ``{"row": ..., "network": ..., "history": ...}``.

    Never raises for a problem of the trial itself: the row's ``error`` holds it
    (``network`` is then None).  The evaluation is ``fastnn train``'s: the dev
    and test splits' :func:`~fastnn.metrics.classification_report`.
    """
    from .metrics import classification_report
    from .model import train

    row = {"trial": index, **config, "dev_size": dev_size}
    row.update({column: None for column in RESULT_COLUMNS})
    row["worker"] = _worker_address()
    result = {"row": row, "network": None, "history": None}
    try:
        cfg = TrainConfig(**config).validate()
        data = _split_dataset(_base_dataset(data_ref), dev_size, cfg.seed)
        with _threads(cfg.backend, _trial_threads(threads)) as n:
            row["threads"] = n
            t0 = time.perf_counter()
            net, history = train(data.X_train, data.y_train, cfg, X_dev=data.X_dev, y_dev=data.y_dev,
                                 n_classes=len(data.class_names))
            row["train_seconds"] = time.perf_counter() - t0
            net.class_names = tuple(data.class_names)
            for split, X, y in (("dev", data.X_dev, data.y_dev), ("test", data.X_test, data.y_test)):
                if y is not None and len(y):
                    report = classification_report(y, net.predict(X, cfg.backend), net.n_classes,
                                                   net.class_names)
                    row[f"{split}_accuracy"] = report["accuracy"]
                    row[f"{split}_f1"] = report["f1"]
        row["epochs_run"] = len(history.epochs)
        result.update(network=net, history=history.to_dict(), dataset=data.name)
    except Exception as exc:  # the trial failed; the sweep goes on
        row["error"] = str(exc) if isinstance(exc, FastnnError) else f"{type(exc).__name__}: {exc}"
    return result


# --------------------------------------------------------------------------
# The client side
# --------------------------------------------------------------------------

def _local_workers(threads_per_trial: int, n_workers: int | None) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n_workers or max(1, cpus // threads_per_trial)


@contextlib.contextmanager
def _connect(scheduler, threads_per_trial, n_workers, connect_timeout: float = 30):
    """A Dask client: on a new LocalCluster (``scheduler=None``), or on the cluster at ``scheduler``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise FastnnError("sweeps need Dask distributed: pip install 'fastnn[sweep]' "
                          "(or pip install 'dask[distributed]')") from None
    import logging

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # an existing Client: the caller owns it
        return
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            threads = str(threads_per_trial or 1)
            cluster = stack.enter_context(LocalCluster(
                n_workers=_local_workers(threads_per_trial or 1, n_workers), threads_per_worker=1,
                processes=True, dashboard_address=":0", silence_logs=logging.ERROR,
                env={"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
                     "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}))
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=connect_timeout))
                client.wait_for_workers(1, timeout=connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise FastnnError(f"cannot use the Dask scheduler at {scheduler}: {exc}") from None
        yield client


def _progress(total: int, enabled: bool):
    if not enabled or not sys.stderr.isatty() or os.environ.get("CI"):
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="trial", leave=False)


def sweep(grid: dict, data="mnist", scheduler=None, *, seeds: int = 1, fixed: dict | None = None,
          dev_size=5000, threads_per_trial: int | None = None, n_workers: int | None = None,
          out=None, scatter: bool = False, cache=None, source=None, plots: bool = True,
          progress: bool = False, timeout: float | None = None, retries: int = 1):
    """Train every config of ``grid`` x ``seeds`` on a Dask cluster; return a DataFrame, one row per trial.

    ``grid`` maps :class:`~fastnn.model.TrainConfig` fields to lists of values
    (``{"hidden": [128, 256], "lr": [0.1, 0.5]}``); ``fixed`` gives the other
    options (TrainConfig's defaults otherwise, with the numba backend);
    ``seeds`` repeats each point with seeds ``fixed["seed"] + 0, 1, ...``.
    ``data``, ``dev_size``, ``cache``, ``source`` are :func:`~fastnn.data.load_dataset`'s;
    each trial sees exactly the split ``fastnn train --seed S`` would.

    ``scheduler``: None for a new LocalCluster of ``n_workers`` (default
    ``cores // threads_per_trial``) single-threaded worker processes, closed at
    the end; an address (``"tcp://host:8786"``) of a running scheduler; or a
    ``distributed.Client`` you own.  ``threads_per_trial`` (default 1 on a local
    cluster, the worker's share of its cores on another) are numba's threads per
    trial.  ``scatter`` loads ``data`` here and broadcasts it to the workers
    instead of letting each worker load it (for a path the workers cannot see).
    ``retries`` reruns a task whose worker failed in a way Dask reports as an
    exception; ``timeout`` (seconds) bounds the whole sweep.

    Columns: ``trial``, the config fields, ``dev_size``, ``dev_accuracy``,
    ``dev_f1``, ``test_accuracy``, ``test_f1`` (macro F1), ``epochs_run``,
    ``train_seconds``, ``threads``, ``worker`` and ``error`` (None unless the
    trial failed).  ``df.attrs`` holds ``grid``, ``fixed``, ``best`` (the best
    trial's index by dev accuracy), ``wall_seconds`` and ``workers``.  With
    ``out``, writes ``sweep.csv``, ``sweep.json``, ``sweep.png`` and ``best/``
    there (see the module docstring).
    """
    import pandas as pd

    grid, fixed = check_grid(grid, fixed, seeds)
    dev_size = _check_dev_size(dev_size)
    if threads_per_trial is not None and (isinstance(threads_per_trial, bool) or not isinstance(
            threads_per_trial, int) or threads_per_trial < 1):
        raise FastnnError(f"threads per trial must be a positive integer, got {threads_per_trial!r}")
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise FastnnError(f"n_workers must be a positive integer, got {n_workers!r}")
    if scatter:
        from .data import load_dataset

        data_ref = load_dataset(data, dev_size=0, cache=cache, source=source)
    else:
        _check_data(data)
        data_ref = (str(data), None if cache is None else str(cache), None if source is None else str(source))
    trials = make_trials(grid, fixed, seeds)
    out = _prepare_out(out) if out is not None else None

    t0 = time.perf_counter()
    connect_timeout = 30 if timeout is None else min(30, timeout)
    with _connect(scheduler, threads_per_trial, n_workers, connect_timeout) as client:
        workers = len(client.nthreads())
        # On a LocalCluster the workers were made for threads_per_trial (default 1); on another
        # cluster None lets each trial take its worker's share of the cores (_trial_threads).
        threads = threads_per_trial or (1 if scheduler is None else None)
        ref = client.scatter(data_ref, broadcast=True, hash=False) if scatter else data_ref
        results = _gather(client, trials, ref, dev_size, threads, progress, timeout, retries)
    wall = time.perf_counter() - t0

    rows = [r["row"] for r in results]
    table = pd.DataFrame(rows)
    for column in ("epochs_run", "threads"):
        table[column] = table[column].astype("Int64")  # whole numbers, missing for failed trials
    best = _best(rows)
    table.attrs.update(grid=grid, fixed=fixed, seeds=seeds, best=best, wall_seconds=wall, workers=workers,
                       data=str(data), scheduler=_scheduler_name(scheduler))
    if out is not None:
        _write_outputs(out, table, results[best] if best is not None else None, data_ref, cache, source,
                       plots)
    return table


def _scheduler_name(scheduler) -> str:
    if scheduler is None:
        return "local"
    if isinstance(scheduler, str):
        return scheduler
    return getattr(getattr(scheduler, "scheduler", None), "address", "client")  # a Client


def _gather(client, trials, ref, dev_size, threads, progress, timeout, retries) -> list:
    """Submit every trial, collect results as they finish; Ctrl-C or the timeout cancels the rest."""
    from distributed import as_completed

    futures = [client.submit(run_trial, i, config, ref, dev_size, threads, pure=False, retries=retries,
                             key=f"fastnn-trial-{i}-{os.getpid()}-{time.time_ns()}")
               for i, config in enumerate(trials)]
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(trials)
    try:
        with _progress(len(trials), progress) as bar:
            for future in as_completed(futures, timeout=timeout):
                i = index[future.key]
                try:
                    results[i] = future.result()
                except Exception as exc:  # e.g. KilledWorker: it took down every worker it ran on
                    row = {"trial": i, **trials[i], "dev_size": dev_size,
                           **{column: None for column in RESULT_COLUMNS}}
                    row["error"] = f"{type(exc).__name__}: {exc}"
                    results[i] = {"row": row, "network": None, "history": None}
                future.release()
                if bar is not None:
                    bar.update(1)
    except TimeoutError:
        client.cancel(futures)
        raise FastnnError(f"the sweep did not finish within {timeout:g} s") from None
    except BaseException:  # Ctrl-C: stop the work still queued or running
        client.cancel(futures)
        raise
    return results


def _best(rows) -> int | None:
    """The trial with the best dev accuracy (the first of equals); None if every trial failed."""
    ok = [r for r in rows if r["error"] is None]
    if not ok:
        return None
    key = "dev_accuracy" if any(r["dev_accuracy"] is not None for r in ok) else "test_accuracy"
    scored = [r for r in ok if r[key] is not None] or ok
    return max(scored, key=lambda r: (r[key] or 0.0, -r["trial"]))["trial"]


def varied(table) -> list[str]:
    """The grid fields of a sweep's table (from ``table.attrs``), seed last if varied."""
    return list(table.attrs.get("grid", {}))


def summarize(table):
    """Mean, spread and count per grid point over seeds: a DataFrame, one row per point."""
    import pandas as pd

    keys = [k for k in varied(table) if k != "seed"]
    metrics = [m for m in ("dev_accuracy", "test_accuracy", "test_f1", "train_seconds")
               if table[m].notna().any()]
    if not keys:
        keys = ["seed"]
    ok = table[table["error"].isna()]
    rows = []
    for point, group in table.groupby(keys, sort=False, dropna=False):
        point = point if isinstance(point, tuple) else (point,)
        good = ok.loc[ok.index.intersection(group.index)]
        row = dict(zip(keys, point))
        for m in metrics:
            values = good[m].dropna().astype(float)
            row[f"{m}_mean"] = values.mean() if len(values) else float("nan")
            if m.endswith("accuracy"):
                row[f"{m}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
        row["trials"] = len(group)
        row["failed"] = int(group["error"].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(table) -> str:
    """The summary table as text: one line per grid point (mean ± std over seeds), the best one marked."""
    summary = summarize(table)
    keys = [k for k in varied(table) if k != "seed"] or ["seed"]
    best = table.attrs.get("best")
    best_point = None if best is None else tuple(table.loc[table["trial"] == best, keys].iloc[0])

    def number(value, digits):
        return "-" if value is None or value != value else f"{value:.{digits}f}"

    def spread(row, metric):
        text = number(row.get(f"{metric}_mean"), 4)
        std = row.get(f"{metric}_std")
        return text if text == "-" or std is None or std != std else f"{text} ± {std:.4f}"

    headers = [*keys, "dev accuracy", "test accuracy", "test F1", "train s", "trials", "failed", ""]
    body = []
    for _, row in summary.iterrows():
        point = tuple(row[k] for k in keys)
        body.append([*(f"{v:g}" if isinstance(v, float) else str(v) for v in point),
                     spread(row, "dev_accuracy"), spread(row, "test_accuracy"),
                     number(row.get("test_f1_mean"), 4), number(row.get("train_seconds_mean"), 1),
                     str(int(row["trials"])), str(int(row["failed"])), "best" if point == best_point else ""])
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [headers, *body])


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------

def _prepare_out(out) -> Path:
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".fastnn-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FastnnError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _json_value(v.item())
    return v


def _write_outputs(out: Path, table, best_result, data_ref, cache, source, plots: bool) -> None:
    """best/, sweep.png, sweep.csv, then sweep.json (last: the sweep is complete)."""
    from ._atomic import atomic_write_text

    files = {"csv": "sweep.csv", "json": "sweep.json"}
    if best_result is not None:
        write_best_report(out / "best", best_result, data_ref, cache, source, plots)
        files["best"] = "best/metrics.json"
    if plots and table["error"].isna().any():
        plot_sweep(table, out / "sweep.png")
        files["plot"] = "sweep.png"
    try:
        atomic_write_text(out / "sweep.csv", table.to_csv(index=False))
        records = [{k: _json_value(v) for k, v in row.items()}
                   for row in table.astype(object).where(table.notna(), None).to_dict("records")]
        attrs = table.attrs
        document = {"data": attrs.get("data"), "grid": attrs.get("grid"), "fixed": attrs.get("fixed"),
                    "seeds": attrs.get("seeds"), "scheduler": attrs.get("scheduler"),
                    "workers": attrs.get("workers"), "wall_seconds": attrs.get("wall_seconds"),
                    "best_trial": attrs.get("best"), "files": files, "trials": records}
        atomic_write_text(out / "sweep.json", json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise FastnnError(f"cannot write the sweep results into {out}: {exc.strerror or exc}") from None


def write_best_report(folder: Path, result: dict, data_ref, cache, source, plots: bool) -> None:
    """The best trial's report folder, as ``fastnn train`` writes it (model.npz, metrics.json, figures).

    The network comes back from its worker; the data are loaded here again for
    the figures (the same split: same ``dev_size`` and seed).  The one place
    that knows how a report is written.
    """
    from types import SimpleNamespace

    from .cli.train import _evaluate, _write_report
    from .model import History

    row = result["row"]
    net = result["network"]
    base = _base_dataset(data_ref)
    data = _split_dataset(base, row["dev_size"], row["seed"])
    history = History(**result["history"])
    config = {k: row[k] for k in FIELDS if k in row and k != "backend"}
    metrics = {"dataset": data.name, "n_train": int(len(data.y_train)), "n_dev": int(len(data.y_dev)),
               "sweep_trial": row["trial"], "config": config, "backend": row["backend"],
               "threads": row["threads"], "worker": row["worker"],
               "history": result["history"], "epoch_seconds": [e["seconds"] for e in history.epochs],
               "train_seconds": row["train_seconds"]}
    splits = {"dev": (data.X_dev, data.y_dev)}
    if data.X_test is not None:
        splits["test"] = (data.X_test, data.y_test)
    folder.mkdir(parents=True, exist_ok=True)
    predictions = _evaluate(net, splits, row["backend"], metrics)
    _write_report(folder, net, metrics, history, splits, predictions, data, not plots)


def plot_sweep(table, path) -> Path:
    """Accuracy against each varied parameter: mean over seeds, min-max bars, one line per other point."""
    import numpy as np
    from matplotlib.figure import Figure

    from .plots import _save

    grid = table.attrs.get("grid", {})
    params = [k for k in grid if k != "seed"] or list(grid)
    metric = "test_accuracy" if table["test_accuracy"].notna().any() else "dev_accuracy"
    ok = table[table["error"].isna() & table[metric].notna()]
    fig = Figure(figsize=(4.2 * len(params), 3.6), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, param in zip(axes, params):
        values = grid[param]
        others = [k for k in params if k != param]
        groups = ok.groupby(others, sort=False) if others else [((), ok)]
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            xs, means, lows, highs = [], [], [], []
            for x, value in enumerate(values):
                acc = group.loc[group[param] == value, metric].astype(float)
                if len(acc):
                    xs.append(x)
                    means.append(acc.mean())
                    lows.append(acc.mean() - acc.min())
                    highs.append(acc.max() - acc.mean())
            label = ", ".join(f"{k}={v}" for k, v in zip(others, key)) or None
            ax.errorbar(xs, means, yerr=[lows, highs], marker="o", capsize=3, label=label)
        ax.set_xticks(np.arange(len(values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in values])
        ax.set_xlabel(param)
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        if others and len(groups) <= 12:
            ax.legend(fontsize=7)
    seeds = table.attrs.get("seeds", 1)
    fig.suptitle(f"{table.attrs.get('data', '')}: {metric.replace('_', ' ')}"
                 + (f", mean and min-max over {seeds} seeds" if seeds > 1 else ""), fontsize=10)
    return _save(fig, path)
