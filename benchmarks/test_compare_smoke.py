"""Smoke test of ``benchmarks/compare.py``: one round, one epoch of a two-hidden-layer network on a
small slice of MNIST, every implementation installed; and its FLOP count and PyTorch model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _common import make_net
from _compare_report import training_flops

SCRIPT = Path(__file__).resolve().with_name("compare.py")


def test_compare_runs_and_writes_json(tmp_path):
    try:
        from fastnn import load_dataset

        load_dataset("mnist", dev_size=0)
    except Exception as exc:  # no MNIST here, offline
        pytest.skip(f"MNIST not available: {exc}")
    command = [
        sys.executable,
        str(SCRIPT),
        "--epochs",
        "1",
        "--rounds",
        "1",
        "--hidden",
        "32,16",
        "--only",
        "numpy,numba,torch,sklearn",
        "--limit",
        "2000",
        "--target-accuracy",
        "0.5",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| fastnn-numba |" in proc.stdout and "| fastnn-numpy |" in proc.stdout
    assert "784-32-16-10 relu/softmax" in proc.stdout
    report = json.loads((tmp_path / "compare.json").read_text())
    assert (tmp_path / "compare.png").stat().st_size > 0
    expected = ["numpy", "numba"] + [name for name in ("torch", "sklearn") if importlib.util.find_spec(name)]
    assert report["implementations"] == expected
    assert report["config"]["hidden"] == [32, 16]
    assert report["n_train"] == 2000 and report["peak_start"] > 0
    assert report["flops_per_epoch"] == training_flops(2000, (784, 32, 16, 10))
    for name in expected:
        row = report["summary"][name]
        assert "error" not in row, row
        assert row["epoch_s"] > 0 and row["first_epoch_s"] > 0 and row["peak_rss_mb"] > 0
        assert 0 < row["test_accuracy"] <= 1
        assert row["vs_numba"]["median"] > 0 and row["vs_numpy"]["median"] > 0
        if name != "sklearn":  # scikit-learn is not evaluated per epoch
            assert "time_to_accuracy" in row
    if "torch" in expected:  # same weights, same shuffles, same rule: the same network, to rounding
        assert abs(report["summary"]["torch"]["test_accuracy"] - report["summary"]["numpy"]["test_accuracy"]) < 0.01
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes left no temp files


def test_training_flops_counts_every_layer():
    n, d, h, c = 7, 784, 128, 10
    assert training_flops(n, (d, h, c)) == 4 * n * d * h + 6 * n * h * c  # the one-hidden-layer count
    # 784-100-50-10: forward and weight gradient of every layer, the gradient below all but the first
    products = [784 * 100, 100 * 50, 50 * 10]
    assert training_flops(n, (784, 100, 50, 10)) == 2 * n * (2 * sum(products) + sum(products[1:]))


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_torch_sequential_is_the_network(activation):
    torch = pytest.importorskip("torch")
    from fastnn.network import init_network

    from _torch_mlp import sequential

    net = init_network(784, (32, 16), 10, seed=3, activation=activation)
    X = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    with torch.inference_mode():
        theirs = sequential(net)(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(theirs, net.raw(X, "numpy"), rtol=1e-4, atol=1e-5)
    assert len(list(sequential(make_net((8,))).children())) == 3  # Linear, ReLU, Linear
