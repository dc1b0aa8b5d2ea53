"""Running a sweep: connecting to (or starting) the cluster, submitting the trials, gathering rows."""

from __future__ import annotations

import contextlib
import os
import sys
import time

from .._atomic import writable_folder
from ..config import DEV_SIZE
from ..data import parse_dev_size
from ..errors import FastnnError
from .grid import RESULT_COLUMNS, _check_data, check_grid, make_trials
from .results import _write_outputs
from .worker import run_trial

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
          dev_size=DEV_SIZE, threads_per_trial: int | None = None, n_workers: int | None = None,
          out=None, scatter: bool = False, cache=None, source=None, plots: bool = True,
          progress: bool = False, timeout: float | None = None, retries: int = 1):
    """Train every config of ``grid`` x ``seeds`` on a Dask cluster; return a DataFrame, one row per trial.

    ``grid`` maps :class:`~fastnn.config.TrainConfig` fields to lists of values
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
    dev_size = parse_dev_size(dev_size)
    if threads_per_trial is not None and (isinstance(threads_per_trial, bool) or not isinstance(
            threads_per_trial, int) or threads_per_trial < 1):
        raise FastnnError(f"threads per trial must be a positive integer, got {threads_per_trial!r}")
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise FastnnError(f"n_workers must be a positive integer, got {n_workers!r}")
    if scatter:
        from ..data import load_dataset

        data_ref = load_dataset(data, dev_size=0, cache=cache, source=source)
    else:
        _check_data(data)
        data_ref = (str(data), None if cache is None else str(cache), None if source is None else str(source))
    trials = make_trials(grid, fixed, seeds)
    out = writable_folder(out) if out is not None else None

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
