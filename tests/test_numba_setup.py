"""The numba backend's environment: threading layer chosen on purpose, compile cache that
cannot break training.  Each case runs in a fresh interpreter, because numba fixes both
the threading layer and the cache location once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def tiny_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.arange(200) % 10
    X = rng.integers(0, 255, (200, 784))
    frame = pd.DataFrame(np.column_stack([y, X]), columns=["label"] + [f"pixel{i}" for i in range(784)])
    frame.to_csv(path, index=False)
    return path


def train_tiny(tmp_path: Path, out: Path, env_extra: dict, *options: str) -> subprocess.CompletedProcess:
    """``scripts/train.py`` with the numba backend on a 200-row CSV, in a fresh process whose
    environment has no NUMBA_ settings but ``env_extra``'s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(env_extra)
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--backend", "numba"]
    command += ["--data", str(tiny_csv(tmp_path / "train.csv")), "--epochs", "1", "--hidden", "8"]
    command += ["--dev-size", "50", "--no-plots", "--out", str(out), *options]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def run_train(tmp_path: Path, env_extra: dict) -> dict:
    out = tmp_path / "out"
    proc = train_tiny(tmp_path, out, env_extra, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "metrics.json").read_text())


def test_the_omp_layer_is_chosen_when_it_can_load(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import numba.np.ufunc.omppool"], capture_output=True)
    metrics = run_train(tmp_path, {})
    if probe.returncode == 0:
        assert metrics["threading_layer"] == "omp"
    else:  # no OpenMP runtime on this machine: the next layer in our order, never a crash
        assert metrics["threading_layer"] in ("tbb", "workqueue")


def test_a_threading_layer_set_by_the_user_is_respected_and_reported(tmp_path):
    metrics = run_train(tmp_path, {"NUMBA_THREADING_LAYER": "workqueue"})
    assert metrics["threading_layer"] == "workqueue"


def test_numba_num_threads_sets_the_thread_count(tmp_path):
    metrics = run_train(tmp_path, {"NUMBA_NUM_THREADS": "1"})
    assert metrics["threads"] == 1


def test_an_unwritable_compile_cache_does_not_break_training(tmp_path):
    # A path below a regular file cannot be created, even by root.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = tmp_path / "home"
    metrics = run_train(
        tmp_path, {"NUMBA_CACHE_DIR": str(blocker / "cache"), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    )
    assert metrics["dev"]["n"] == 50
    # The kernels were cached in the next writable place instead.
    assert any((home / ".cache" / "fastnn" / "numba").rglob("*.nbi"))


def run_python(code: str, env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_threading_layer_starts_the_pool_without_compiling_anything():
    code = (
        "import numba.core.event as ev\n"
        "from fastnn.backends._numba_setup import threading_layer\n"
        "with ev.install_recorder('numba:compile') as rec:\n"
        "    layer = threading_layer()\n"
        "print(layer, len(rec.buffer))"
    )
    layer, compiles = run_python(code, {}).split()
    assert layer in ("omp", "tbb", "workqueue") and compiles == "0"


KERNELS_CACHED = "from fastnn.backends import get_backend; print(get_backend('numba').kernels_cached())"


def test_a_cold_compile_cache_is_announced_once_and_then_cached(tmp_path):
    cache = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    assert run_python(KERNELS_CACHED, cache) == "False"

    def train(out: str) -> subprocess.CompletedProcess:
        return train_tiny(tmp_path, tmp_path / out, {**cache, "CI": "1"})

    first = train("first")
    assert first.returncode == 0, first.stderr
    from fastnn.cli.train import COMPILING_NOTE

    assert first.stderr == COMPILING_NOTE + "\n"
    assert run_python(KERNELS_CACHED, cache) == "True"
    second = train("second")
    assert second.returncode == 0 and second.stderr == "", second.stderr


def test_the_compile_cache_is_keyed_on_every_kernel_source_file(tmp_path, monkeypatch):
    """numba only notices edits to a cached function's own file; the folder name must change
    when any module compiled into the kernels (tile kernels, GEMM binding, the random keys
    of fastnn/_keys.py) changes."""
    from fastnn.backends import _numba_setup

    here = Path(_numba_setup.__file__).parent
    copies = tmp_path / "backends"
    copies.mkdir()
    for path in list(here.glob("*numba*.py")):
        (copies / path.name).write_bytes(path.read_bytes())
    (tmp_path / "_keys.py").write_bytes((here.parent / "_keys.py").read_bytes())
    assert Path(_numba_setup.CACHE_DIR).name == f"fastnn-kernels-{_numba_setup._sources_hash()}"
    monkeypatch.setattr(_numba_setup, "__file__", str(copies / "_numba_setup.py"))
    same = _numba_setup._sources_hash()
    monkeypatch.undo()
    assert same == _numba_setup._sources_hash()  # the copies hash as the originals do
    monkeypatch.setattr(_numba_setup, "__file__", str(copies / "_numba_setup.py"))
    for edited in (copies / "_numba_sparse.py", tmp_path / "_keys.py"):
        before = _numba_setup._sources_hash()
        with open(edited, "a") as fh:
            fh.write("\n# an edit to one module compiled into the kernels\n")
        assert _numba_setup._sources_hash() != before, edited.name


_EVERY_KERNEL = """
import json, numpy as np
from fastnn.network import init_network
from fastnn.backends import get_backend
from fastnn.activations import make_targets
from fastnn.optimizers import make_optimizer
nb = get_backend("numba")
rng = np.random.default_rng(0)
X = ((rng.random((300, 784)) < 0.2) * rng.random((300, 784))).astype(np.float32)
dense = rng.random((300, 784), dtype=np.float32)
y = rng.integers(0, 10, 300)
out = {}
for name, data, kind in (("sparse", X, "adam"), ("dense", dense, "sgd")):
    net = init_network(784, (32, 16), 10, 0, activation="tanh")
    ws = nb.make_workspace(net, 64)
    nb.train_steps(net, data, make_targets("softmax", y, 10), np.arange(300), 0, 300, 64, np.full(5, 0.01),
                   make_optimizer(kind, net.layout, l2=0.1), ws)
    Xb = data[:64].copy()
    nb.forward(net, Xb, ws)
    nb.backward(net, Xb, ws)
    pred = np.empty((300, 10), np.float32)
    nb.predict(net, data, pred)
    perm = np.empty(300, np.int64)
    nb.permutation(300, 1, 2, perm)
    out[name] = [float(np.abs(net.params.flat).sum()), float(ws.grads.flat.sum()), float(pred.sum()), int(perm[:5].sum())]
print(json.dumps(out))
"""


def test_every_kernel_loaded_from_a_warm_cache_in_a_fresh_process_gives_the_cold_results(tmp_path):
    """A process that compiled the kernels (train, forward, backward, predict, shuffle; both
    first-layer paths; a deep network) caches them; a fresh process loads them all and must
    compute exactly what the compiling one did.  (An inlined helper once produced cached
    code that crashed the loading process: numba 0.68.)"""
    cache = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    cold = run_python(_EVERY_KERNEL, cache)
    assert run_python(KERNELS_CACHED, cache) == "True"
    warm = run_python(_EVERY_KERNEL, cache)
    assert json.loads(warm) == json.loads(cold)
