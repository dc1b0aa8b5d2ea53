"""What runs on a Dask worker: the dataset loaded once per process, one trial per task."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ..config import TrainConfig
from ..errors import FastnnError
from .grid import RESULT_COLUMNS

# --------------------------------------------------------------------------
# The worker side: one trial
# --------------------------------------------------------------------------


def dask_setup(worker) -> None:
    """Run in each worker process of a sweep's own LocalCluster (its ``preload``): Ctrl-C is the client's.

    A terminal's Ctrl-C reaches every process of its group, the local workers
    too, and each would die printing a traceback while the client is already
    cancelling the trials and closing the cluster.  (Workers outlive no client:
    Dask ends them when the process that started them is gone.)
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# Per worker process: the loaded datasets (dev_size=0) by source, and the last split.
_LOADED: dict = {}
_SPLIT: list = [None]


def _base_dataset(ref):
    """The whole dataset of ``ref``: a scattered Dataset as is, or ``(spec, cache, source)`` loaded once."""
    if not isinstance(ref, tuple):
        return ref
    if ref not in _LOADED:
        from ..data import load_dataset

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
    from ..data import Dataset, train_dev_split

    X_train, y_train, X_dev, y_dev = train_dev_split(base.X_train, base.y_train, dev_size, seed)
    data = Dataset(
        name=base.name,
        X_train=X_train,
        y_train=y_train,
        X_dev=X_dev,
        y_dev=y_dev,
        X_test=base.X_test,
        y_test=base.y_test,
        class_names=base.class_names,
    )
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
    (``network`` is then None).  The evaluation is ``fastnn train``'s
    (:func:`fastnn.report.run_result`): the dev and test splits'
    :func:`~fastnn.metrics.classification_report`.
    """
    from ..report import run_result
    from ..training import train

    row = {"trial": index, **config, "dev_size": dev_size}
    row.update(dict.fromkeys(RESULT_COLUMNS))
    row["worker"] = _worker_address()
    result: dict[str, Any] = {"row": row, "network": None, "history": None}
    try:
        cfg = TrainConfig(**config).validate()
        data = _split_dataset(_base_dataset(data_ref), dev_size, cfg.seed)
        with _threads(cfg.backend, _trial_threads(threads)) as n:
            row["threads"] = n
            t0 = time.perf_counter()
            net, history = train(
                data.X_train,
                data.y_train,
                cfg,
                X_dev=data.X_dev,
                y_dev=data.y_dev,
                n_classes=len(data.class_names),
                class_names=data.class_names,
            )
            run = run_result(data, cfg, net, history, train_seconds=time.perf_counter() - t0)
        row["train_seconds"] = run.train_seconds
        for split, report in run.evaluation.items():
            row[f"{split}_accuracy"] = report["accuracy"]
            row[f"{split}_f1"] = report["f1"]
        row["epochs_run"] = len(history.epochs)
        result.update(network=net, history=history.to_dict())
    except Exception as exc:  # the trial failed; the sweep goes on
        row["error"] = str(exc) if isinstance(exc, FastnnError) else f"{type(exc).__name__}: {exc}"
    return result
