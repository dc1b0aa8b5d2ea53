"""Numba configuration that must happen before the first parallel kernel runs.

Threading layer: numba's ``workqueue`` layer costs ~150 us per parallel-region
launch on our 2-core machines and ``omp`` ~3 us; a training step launches three
regions, so the layer decides whether parallelism pays at all.  We ask for
``omp`` (then ``tbb``) explicitly and fall back to ``workqueue`` only if neither
can load; :func:`threading_layer` reports which one actually ran.  A user's
own ``NUMBA_THREADING_LAYER`` wins.
"""

from __future__ import annotations

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]


def threading_layer() -> str:
    """Name of the threading layer in use (starts numba's pool if it is not running yet)."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        from numba import njit, prange

        @njit(parallel=True)
        def _touch(n):
            s = 0
            for i in prange(n):
                s += i
            return s

        _touch(2)
        return numba.threading_layer()
