"""``backend="auto"``: which backend trains a fit, by a fixed rule on the data and the settings.

The numba backend is several times faster per epoch on large data, but
compiles its kernels for each dtype on first use (20-60 s, once per
installation while its cache lasts), and on small data its per-step parallel
regions cost more than they save (iris, digits and moons fit 2-5x slower on
numba than on NumPy, warm); the NumPy backend starts at once.  So a fit goes to
numba when its work, at most, would keep NumPy busy for about as long as a
first compile takes:

    work = max_iter * (3 * n_samples * n_weights + steps_per_epoch * n_layers * STEP_COST)

multiply-adds for the three products of every layer (forward, back-propagated
error, weight gradient) over every row of every epoch, plus each step's fixed
cost in Python (:data:`STEP_COST` multiply-add equivalents per layer).
``lbfgs`` counts one full-batch evaluation per iteration.  Numba when
``work >= NUMBA_MIN_WORK``, else NumPy.  The rule reads only the data's shape
and the parameters -- never the machine, the time or whether a compile cache
exists -- so a fit's backend, and so its exact numbers, are reproducible.

On NumPy, a fit whose every product is small (``rows_per_step * n_weights``
below :data:`SMALL_STEP_WORK`: iris, digits, moons) runs BLAS on one thread:
a second thread cannot pay for its synchronisation on such products, and on a
busy machine waiting for it made these fits 5-8x slower.

Prediction always runs on NumPy (BLAS over thousands of rows at a time)
unless ``backend="numba"`` was asked for.
"""

from __future__ import annotations

import contextlib
import functools
import math
from itertools import pairwise

#: Multiply-adds from which a fit goes to numba: about 30 s of NumPy work on a 2-core machine,
#: roughly what a first compile of the kernels costs, while every small example of scikit-learn's
#: gallery (iris, digits, moons: 1e9-1e10) stays well below it.  Measured with
#: benchmarks/estimator_vs_sklearn.py (docs/guide/sklearn.md, "Speed").
NUMBA_MIN_WORK = 1e11
#: The fixed cost of one mini-batch step on one layer in NumPy, in multiply-add equivalents
#: (~100 us of Python and NumPy call overhead per layer and step).
STEP_COST = 3e6
#: Multiply-adds of one step's products (rows x weights) below which NumPy fits run BLAS on one thread.
SMALL_STEP_WORK = 4e6


def fit_work(n_samples: int, layer_units, max_iter: int, steps_per_epoch: int) -> float:
    """The multiply-adds a fit does at most (see the module)."""
    weights = sum(a * b for a, b in pairwise(layer_units))
    n_layers = len(layer_units) - 1
    return float(max_iter) * (3.0 * n_samples * weights + steps_per_epoch * n_layers * STEP_COST)


def training_backend(backend: str, n_samples: int, layer_units, solver: str, max_iter: int, batch_size: int) -> str:
    """The backend that trains: ``backend`` itself unless it is ``"auto"`` (see the module)."""
    if backend != "auto":
        return backend
    steps = 1 if solver == "lbfgs" else math.ceil(n_samples / batch_size)
    return "numba" if fit_work(n_samples, layer_units, max_iter, steps) >= NUMBA_MIN_WORK else "numpy"


def prediction_backend(backend: str) -> str:
    """The backend that predicts (see the module)."""
    return "numba" if backend == "numba" else "numpy"


@contextlib.contextmanager
def blas_threads_for(backend: str, rows_per_step: int, layer_units):
    """Around a fit: BLAS on one thread for a NumPy fit of small products (see the module)."""
    weights = sum(a * b for a, b in pairwise(layer_units))
    if backend != "numpy" or rows_per_step * weights >= SMALL_STEP_WORK:
        yield
        return
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded thread pools, made once: making it scans every loaded
    library (~20 ms, a fifth of an iris fit), limiting through it costs microseconds."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
