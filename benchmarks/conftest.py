"""Fixtures and the timing policy of the fastnn benchmarks.

Run with ``pytest benchmarks/`` (the main test run only collects ``tests/``).
Every benchmark is grouped by configuration -- ``benchmark.group`` is e.g.
``"forward b128 784-1000-500-10"`` -- and parametrised over the backends, so
``--benchmark-group-by=group`` (pytest-benchmark's default) puts numpy and
numba side by side, and ``--benchmark-autosave`` / ``--benchmark-compare``
work across runs (saved to ``.benchmarks/``).

Timing policy: numba's kernels are compiled (or loaded from its cache) once
per session in the ``backend`` fixture.  Each benchmark then calls its kernel
once untimed (warm-up and calibration) and times about ``--bench-time``
seconds of calls in ``benchmark.pedantic`` rounds (between
``--bench-min-rounds`` and ``--bench-max-rounds``); calls shorter than 0.2 ms
are looped inside a round.  pytest-benchmark's own ``--benchmark-max-time`` /
``--benchmark-min-rounds`` do not apply to pedantic runs; use these options.
With ``--benchmark-disable`` every benchmark body runs exactly once (the CI
smoke test), and the whole-epoch benchmarks run on the first :data:`SMOKE_ROWS`
rows: that run checks that every body works, not how long it takes.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastnn.backends import BACKENDS, get_backend

from _common import N_TRAIN, C, D, Runner, load_average, warm_up


def pytest_addoption(parser):
    group = parser.getgroup("fastnn benchmarks")
    group.addoption(
        "--bench-time",
        type=float,
        default=0.4,
        metavar="SECONDS",
        help="seconds of timed calls per benchmark (default 0.4)",
    )
    group.addoption(
        "--bench-min-rounds", type=int, default=5, metavar="N", help="minimum timed rounds per benchmark (default 5)"
    )
    group.addoption(
        "--bench-max-rounds",
        type=int,
        default=200,
        metavar="N",
        help="maximum timed rounds per benchmark (default 200)",
    )


def pytest_report_header(config):
    return [
        f"fastnn benchmarks: {os.cpu_count()} cores, load average {' '.join(map(str, load_average())) or 'unknown'} "
        f"(parallel timings are only meaningful on an otherwise idle machine)"
    ]


def pytest_benchmark_update_machine_info(config, machine_info):
    """Saved runs record the thread setup they were measured under.

    (Only stable facts: pytest-benchmark warns on ``--benchmark-compare`` when
    machine_info differs.  The load average goes into each benchmark's
    ``extra_info["load_1min_after"]`` instead.)
    """
    import numba
    from threadpoolctl import threadpool_info

    import fastnn.backends.numba_backend  # noqa: F401  (loads SciPy's BLAS, so it is always listed)

    machine_info["numba_threads"] = numba.get_num_threads()
    machine_info["blas"] = sorted(
        f"{i.get('internal_api')} {i.get('version')} {i.get('num_threads')} threads"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )


@pytest.fixture(scope="session")
def train_set():
    """Synthetic training set of MNIST's shape: X (60000, 784) float32 in [0, 1), y int64."""
    rng = np.random.default_rng(0)
    X = rng.random((N_TRAIN, D), dtype=np.float32)
    y = rng.integers(0, C, N_TRAIN).astype(np.int64)
    return X, y


@pytest.fixture(scope="session")
def shuffled():
    """A fixed shuffle of the 60000 training rows (int64), like one ``permutation`` output."""
    return np.random.default_rng(1).permutation(N_TRAIN).astype(np.int64)


#: Training rows of an epoch in the smoke test (50 batches of 128; a full epoch is 469).
SMOKE_ROWS = 6400


@pytest.fixture(scope="session")
def smoke(request) -> bool:
    """Whether this is the untimed smoke run (``--benchmark-disable``)."""
    opt = request.config.getoption
    return bool(opt("benchmark_disable") and not opt("benchmark_enable"))


_WARM: set[str] = set()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    """A backend module (``numpy`` / ``numba``) whose kernels have all run once."""
    bk = get_backend(request.param)
    if request.param not in _WARM:
        warm_up(bk)
        _WARM.add(request.param)
    return bk


@pytest.fixture
def run(benchmark, request):
    """``run(fn, *args, group=..., samples=..., steps=...)``: see :class:`_common.Runner`."""
    opt = request.config.getoption
    return Runner(benchmark, opt("--bench-time"), opt("--bench-min-rounds"), opt("--bench-max-rounds"))
