"""Hyperparameter sweeps on a Dask cluster: many trainings, one table (``fastnn.sweep``, ``fastnn sweep``).

One training takes seconds; a grid of them times a few seeds is what outgrows
one process.  :func:`sweep` hands the trials to **Dask distributed** -- an
in-process :class:`~distributed.LocalCluster` sized to the machine by default,
or any running cluster (``dask scheduler`` / ``dask worker``) by address --
and returns one row per trial as a :class:`pandas.DataFrame`.

How the work is laid out:

* **Validation first** (:mod:`.plan`).  The grid (``{field: [values]}`` over any
  :class:`~fastnn.config.TrainConfig` field) and the fixed options are checked
  before any cluster starts: an unknown field, a value of the wrong type or out
  of range, an empty list, a field both fixed and varied are one
  :class:`~fastnn.errors.FastnnError`.  So are the data against every trial:
  they are loaded on the client first, so a missing or malformed file, a dev
  split larger than the data or early stopping without a dev split fail once,
  not in every trial.  What can only fail while training (a diverging learning
  rate) fails that trial alone: its row holds the error and the sweep goes on.
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
* **Nothing finished is lost** (:mod:`.folder`).  With ``out``, each finished
  trial's row is in ``sweep.csv`` as soon as it finishes (an atomic rewrite),
  and the best trial's network so far beside it; an interrupted or timed-out
  sweep keeps them, and :func:`resume` (``fastnn sweep --resume DIR``) runs
  only the missing trials, from the plan saved in ``sweep-plan.json``.

At the end ``out`` also receives ``sweep.json`` (written last: its presence
means the sweep is complete), ``sweep.png`` (accuracy against each varied
parameter, mean and min-max over seeds) and ``best/``, the report folder of the
best trial by dev accuracy (``model.npz``, ``metrics.json`` and figures, as
``fastnn train`` writes).
"""

from __future__ import annotations

from .grid import RESULT_COLUMNS as RESULT_COLUMNS
from .grid import check_grid, parse_grid
from .grid import make_trials as make_trials
from .plan import make_plan
from .results import format_summary as format_summary
from .results import summarize
from .run import resume, sweep

__all__ = ["sweep", "resume", "make_plan", "parse_grid", "check_grid", "summarize"]
