"""Smoke test of ``benchmarks/compare.py``: one round, one epoch, fastnn only, on a small slice of MNIST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().with_name("compare.py")


def test_compare_runs_and_writes_json(tmp_path):
    try:
        from fastnn import load_dataset

        load_dataset("mnist", dev_size=0)
    except Exception as exc:  # noqa: BLE001  (no MNIST here, offline)
        pytest.skip(f"MNIST not available: {exc}")
    command = [sys.executable, str(SCRIPT), "--epochs", "1", "--rounds", "1", "--only", "numpy,numba",
               "--limit", "2000", "--target-accuracy", "0.5", "--out", str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| fastnn-numba |" in proc.stdout and "| fastnn-numpy |" in proc.stdout
    report = json.loads((tmp_path / "compare.json").read_text())
    assert (tmp_path / "compare.png").stat().st_size > 0
    assert report["implementations"] == ["numpy", "numba"]
    assert report["n_train"] == 2000 and report["peak_start"] > 0
    for name in ("numpy", "numba"):
        row = report["summary"][name]
        assert "error" not in row, row
        assert row["epoch_s"] > 0 and row["first_epoch_s"] > 0 and row["peak_rss_mb"] > 0
        assert 0 < row["test_accuracy"] <= 1
        assert row["vs_numba"]["median"] > 0 and row["vs_numpy"]["median"] > 0
        assert "time_to_accuracy" in row
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes left no temp files
