"""Every command with its defaults on a 150-row and a 2,000-row CSV, as a new user runs them.

Each command runs as ``python -m fastnn ...`` in a fresh folder, with no option
but the ones it requires (``--data``, the model, ``-o``, ``--grid``; ``--port 0``
so that the server never meets a port in use).  The default dev split is a tenth
of the rows (``fastnn.data.dev_rows``); a dataset too small for it is one error
naming the fix, from ``fastnn train`` and ``fastnn sweep`` alike, before any
cluster starts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from datafiles import write_kaggle_csv

ROOT = Path(__file__).resolve().parent.parent


def fastnn(cwd: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", CI="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "fastnn", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("rows, dev", [(150, 15), (2000, 200)])
def test_every_command_works_with_its_defaults_on_a_small_csv(tmp_path, rows, dev):
    write_kaggle_csv(tmp_path / "my.csv", n=rows)

    train = fastnn(tmp_path, "train", "--data", "my.csv")
    assert train.returncode == 0, train.stderr
    assert f"my.csv ({rows - dev} train / {dev} dev)" in train.stdout
    metrics = json.loads((tmp_path / "runs" / "latest" / "metrics.json").read_text())
    assert metrics["n_dev"] == dev and metrics["dev"]["n"] == dev
    model = "runs/latest/model.npz"

    predict = fastnn(tmp_path, "predict", model, "my.csv")
    assert predict.returncode == 0, predict.stderr
    assert len((tmp_path / "submission.csv").read_text().splitlines()) == rows + 1

    pytest.importorskip("onnx", reason="fastnn export needs the onnx extra")
    export = fastnn(tmp_path, "export", model, "-o", "model.onnx")
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "model.onnx").stat().st_size > 0

    pytest.importorskip("uvicorn", reason="fastnn serve needs the serve extra")
    server = subprocess.Popen(
        [sys.executable, "-m", "fastnn", "serve", model, "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT)),
    )
    try:
        url = re.search(r"(http://\S+/)", server.stdout.readline()).group(1)
        body = json.dumps({"pixels": [0] * 300 + [255] * 184 + [0] * 300}).encode()
        with urllib.request.urlopen(urllib.request.Request(url + "api/predict", data=body), timeout=30) as r:
            assert len(json.load(r)["probabilities"]) == 10
    finally:
        server.terminate()
        server.communicate(timeout=30)

    pytest.importorskip("distributed", reason="fastnn sweep needs the sweep extra")
    sweep = fastnn(tmp_path, "sweep", "--data", "my.csv", "--grid", "lr=0.1,0.5")
    assert sweep.returncode == 0, sweep.stderr
    table = json.loads((tmp_path / "runs" / "sweep" / "sweep.json").read_text())
    assert [t["error"] for t in table["trials"]] == [None, None]
    assert (tmp_path / "runs" / "sweep" / "best" / "metrics.json").is_file()


def test_a_dataset_too_small_for_the_default_dev_split_is_one_error_naming_the_fix(tmp_path):
    write_kaggle_csv(tmp_path / "my.csv", n=7)
    fix = "give --dev-size 0 to train on all 7 without a dev split"
    for argv in (["train", "--data", "my.csv"], ["sweep", "--data", "my.csv", "--grid", "lr=0.1,0.5"]):
        proc = fastnn(tmp_path, *argv, timeout=120)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith("error: the data have 7 rows, too few for the default dev split")
        assert fix in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert [p for p in (tmp_path / "runs").rglob("*") if p.is_file()] == []  # nothing written
    assert fastnn(tmp_path, "train", "--data", "my.csv", "--dev-size", "0").returncode == 0  # the fix works
