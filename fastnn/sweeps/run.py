"""Running a sweep: connecting to (or starting) the cluster, submitting the trials, gathering rows."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time

from ..config import DEV_SIZE
from ..errors import FastnnError, option
from .folder import SweepFolder, resume_command
from .grid import RESULT_COLUMNS
from .plan import check_threads, make_plan
from .results import best_trial, table_of
from .worker import _base_dataset, run_trial

# --------------------------------------------------------------------------
# The client side
# --------------------------------------------------------------------------


def _local_workers(threads_per_trial: int, n_workers: int | None) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n_workers or max(1, cpus // threads_per_trial)


def _require_distributed() -> None:
    """Dask distributed is installed, or one error saying how to get it (before anything is written)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise FastnnError(
            "sweeps need Dask distributed: pip install 'fastnn[sweep]' (or pip install 'dask[distributed]')"
        ) from None


@contextlib.contextmanager
def _connect(scheduler, threads_per_trial, n_workers, connect_timeout: float = 30):
    """A Dask client: on a new LocalCluster (``scheduler=None``), or on the cluster at ``scheduler``."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # an existing Client: the caller owns it
        return
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            threads = str(threads_per_trial or 1)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=_local_workers(threads_per_trial or 1, n_workers),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                    preload=["fastnn.sweeps.worker"],  # its dask_setup: the workers leave Ctrl-C to us
                    env={
                        "NUMBA_NUM_THREADS": threads,
                        "OMP_NUM_THREADS": threads,
                        "OPENBLAS_NUM_THREADS": threads,
                        "MKL_NUM_THREADS": threads,
                    },
                )
            )
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


def sweep(
    grid: dict,
    data="mnist",
    scheduler=None,
    *,
    seeds: int = 1,
    fixed: dict | None = None,
    dev_size=DEV_SIZE,
    threads_per_trial: int | None = None,
    n_workers: int | None = None,
    out=None,
    scatter: bool = False,
    cache=None,
    source=None,
    plots: bool = True,
    progress: bool = False,
    timeout: float | None = None,
    retries: int = 1,
):
    """Train every config of ``grid`` x ``seeds`` on a Dask cluster; return a DataFrame, one row per trial.

    ``grid`` maps :class:`~fastnn.config.TrainConfig` fields to lists of values
    (``{"hidden": [128, 256], "lr": [0.1, 0.5]}``); ``fixed`` gives the other
    options (TrainConfig's defaults otherwise, with the numba backend);
    ``seeds`` repeats each point with seeds ``fixed["seed"] + 0, 1, ...``.
    ``data``, ``dev_size``, ``cache``, ``source`` are :func:`~fastnn.data.load_dataset`'s;
    each trial sees exactly the split ``fastnn train --seed S`` would.  The grid,
    and the data against every trial, are checked before any cluster starts
    (:func:`~fastnn.sweeps.plan.make_plan`).

    ``scheduler``: None for a new LocalCluster of ``n_workers`` (default
    ``cores // threads_per_trial``) single-threaded worker processes, closed at
    the end; an address (``"tcp://host:8786"``) of a running scheduler; or a
    ``distributed.Client`` you own.  ``threads_per_trial`` (default 1 on a local
    cluster, the worker's share of its cores on another) are numba's threads per
    trial.  ``scatter`` loads ``data`` here and broadcasts it to the workers
    instead of letting each worker load it (for a path the workers cannot see).
    ``retries`` reruns a task whose worker failed in a way Dask reports as an
    exception; ``timeout`` (seconds) bounds the whole sweep.

    With ``out``, every finished trial's row is in ``out/sweep.csv`` as soon as
    it finishes, so an interrupted or timed-out sweep keeps them, and
    :func:`resume` runs the missing ones; at the end ``sweep.json``,
    ``sweep.png`` and ``best/`` are written there (see :mod:`fastnn.sweeps.folder`).
    A folder holding an unfinished sweep is refused (resume it instead).

    Columns: ``trial``, the config fields, ``dev_size``, ``dev_accuracy``,
    ``dev_f1``, ``test_accuracy``, ``test_f1`` (macro F1), ``epochs_run``,
    ``train_seconds``, ``threads``, ``worker`` and ``error`` (None unless the
    trial failed).  ``df.attrs`` holds ``grid``, ``fixed``, ``best`` (the best
    trial's index by dev accuracy), ``wall_seconds`` and ``workers``.
    """
    plan = make_plan(
        grid,
        data,
        seeds=seeds,
        fixed=fixed,
        dev_size=dev_size,
        cache=cache,
        source=source,
        threads_per_trial=threads_per_trial,
    )
    _check_cluster_options(n_workers)
    _require_distributed()
    folder = SweepFolder.start(out, plan)
    return _run(
        folder,
        scheduler,
        n_workers=n_workers,
        scatter=scatter,
        plots=plots,
        progress=progress,
        timeout=timeout,
        retries=retries,
    )


def resume(
    out,
    scheduler=None,
    *,
    threads_per_trial: int | None = None,
    n_workers: int | None = None,
    scatter: bool = False,
    plots: bool = True,
    progress: bool = False,
    timeout: float | None = None,
    retries: int = 1,
):
    """Finish the sweep saved in the folder ``out``: run only its missing trials; return the whole table.

    The sweep's settings (data, grid, fixed options, seeds, dev split and
    threads per trial) are those its folder's ``sweep-plan.json`` records, and
    its finished rows are those of ``sweep.csv``, checked against them, so the
    table is the one an uninterrupted sweep gives.  The cluster options are
    :func:`sweep`'s; ``threads_per_trial`` overrides the recorded one (other
    thread counts sum in another order: the figures may then differ in the
    last digits).  A complete sweep is returned as it is.
    """
    folder = SweepFolder.open(out)
    if threads_per_trial is not None:
        check_threads(threads_per_trial)
        folder.plan = dataclasses.replace(folder.plan, threads_per_trial=threads_per_trial)
    _check_cluster_options(n_workers)
    _require_distributed()
    return _run(
        folder,
        scheduler,
        n_workers=n_workers,
        scatter=scatter,
        plots=plots,
        progress=progress,
        timeout=timeout,
        retries=retries,
    )


def _check_cluster_options(n_workers) -> None:
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise FastnnError(f"{option('n_workers')} must be a positive integer, got {n_workers!r}")


def _run(folder: SweepFolder, scheduler, *, n_workers, scatter, plots, progress, timeout, retries):
    """Run the folder's missing trials, keeping each as it finishes; then the table and the files."""
    plan = folder.plan
    todo = folder.missing()
    trials = plan.trials()
    t0 = time.perf_counter()
    workers = 0
    if todo:
        connect_timeout = 30 if timeout is None else min(30, timeout)
        with _connect(scheduler, plan.threads_per_trial, n_workers, connect_timeout) as client:
            workers = len(client.nthreads())
            # On a LocalCluster the workers were made for threads_per_trial (default 1); on another
            # cluster None lets each trial take its worker's share of the cores (_trial_threads).
            threads = plan.threads_per_trial or (1 if scheduler is None else None)
            ref = client.scatter(_base_dataset(plan.data_ref), broadcast=True, hash=False) if scatter else plan.data_ref
            _gather(client, trials, todo, ref, plan.dev_size, threads, progress, timeout, retries, folder)
    table = table_of(folder.rows, plan)
    table.attrs.update(
        grid=plan.grid,
        fixed=plan.fixed,
        seeds=plan.seeds,
        dev_size=plan.dev_size,
        best=best_trial(folder.rows.values()),
        wall_seconds=time.perf_counter() - t0,
        workers=workers,
        data=plan.data,
        scheduler=_scheduler_name(scheduler),
    )
    if todo or not folder.complete:
        folder.finish(table, plots=plots)
    return table


def _scheduler_name(scheduler) -> str:
    if scheduler is None:
        return "local"
    if isinstance(scheduler, str):
        return scheduler
    return getattr(getattr(scheduler, "scheduler", None), "address", "client")  # a Client


@contextlib.contextmanager
def _ctrl_c_held():
    """Hold a Ctrl-C that arrives in the block until the block is done, then raise it: a finished
    trial is kept whole (its network, its row, the count the message gives) or not at all."""
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield  # signals reach the main thread only; None: a handler Python did not install
        return
    caught = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _unfinished(folder: SweepFolder, total: int) -> str:
    """What an interrupted sweep kept, and how to go on."""
    done = len(folder.rows)
    if folder.path is None:
        return f"{done} of {total} trials had finished (no output folder: nothing was kept)"
    return (
        f"{done} of {total} trials are in {folder.path / 'sweep.csv'}; "
        f"{resume_command(folder.path)} runs the other {total - done}"
    )


def _gather(client, trials, todo, ref, dev_size, threads, progress, timeout, retries, folder) -> None:
    """Submit the trials ``todo``, keep each result as it finishes; Ctrl-C or the timeout cancels the rest."""
    from distributed import as_completed

    run = f"{os.getpid()}-{time.time_ns()}"
    futures = [
        client.submit(
            run_trial, i, trials[i], ref, dev_size, threads, pure=False, retries=retries, key=f"fastnn-trial-{i}-{run}"
        )
        for i in todo
    ]
    index = {f.key: i for i, f in zip(todo, futures)}
    try:
        with _progress(len(todo), progress) as bar:
            for future in as_completed(futures, timeout=timeout):
                i = index[future.key]
                try:
                    result = future.result()
                except Exception as exc:  # e.g. KilledWorker: it took down every worker it ran on
                    row = {"trial": i, **trials[i], "dev_size": dev_size, **dict.fromkeys(RESULT_COLUMNS)}
                    row["error"] = f"{type(exc).__name__}: {exc}"
                    result = {"row": row, "network": None, "history": None}
                future.release()
                with _ctrl_c_held():
                    folder.record(result)
                if bar is not None:
                    bar.update(1)
    except TimeoutError:
        client.cancel(futures)
        raise FastnnError(
            f"the sweep did not finish within {timeout:g} s: {_unfinished(folder, len(trials))}"
        ) from None
    except KeyboardInterrupt:  # Ctrl-C: stop the work still queued or running, say what was kept
        client.cancel(futures)
        raise KeyboardInterrupt(_unfinished(folder, len(trials))) from None
    except BaseException:
        client.cancel(futures)
        raise
