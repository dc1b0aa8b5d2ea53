"""fastnn.sweep / ``fastnn sweep``: grids validated up front, trials spread over Dask workers.

The clusters are real: a LocalCluster of two single-threaded worker processes,
and a ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1
(``dask_cluster`` in conftest.py).  Every process started is killed at the
end, also when a test fails, and every wait is bounded.  The data are a small synthetic IDX folder,
so a trial takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn import sweeps
from fastnn.errors import FastnnError

from conftest import prototype_data

pytest.importorskip("distributed", reason="the sweep tests need Dask distributed (the test extra)")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for any one sweep
COMMON = dict(epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """An IDX folder: 1200 training images (200 held out as dev) and 300 test images."""
    from fastnn.data import write_idx

    folder = tmp_path_factory.mktemp("tiny")
    X, y = prototype_data(1500, noise=0.5, seed=3)
    X = np.round(X * 255).astype(np.uint8)
    y = y.astype(np.uint8)
    write_idx(folder / "train-images-idx3-ubyte", X[:1200], "images")
    write_idx(folder / "train-labels-idx1-ubyte", y[:1200], "labels")
    write_idx(folder / "t10k-images-idx3-ubyte", X[1200:], "images")
    write_idx(folder / "t10k-labels-idx1-ubyte", y[1200:], "labels")
    return folder


# --------------------------------------------------------------------------
# Up-front validation: no cluster is started for a bad grid
# --------------------------------------------------------------------------


@pytest.fixture
def no_cluster(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a cluster was started for an invalid sweep")

    monkeypatch.setattr(sweeps.run, "_connect", refuse)


@pytest.mark.parametrize(
    "grid, fixed, seeds, message",
    [
        ({}, None, 1, "the grid is empty"),
        ({"hiden": [1]}, None, 1, "'hiden' is not a training option"),
        ({"hidden": []}, None, 1, "has no values"),
        ({"hidden": [16, 16]}, None, 1, "lists a value twice"),
        ({"hidden": [16.5]}, None, 1, "hidden: hidden layer sizes are a positive integer or a list of them"),
        ({"hidden": ["many"]}, None, 1, "hidden: hidden layer sizes are whole numbers"),
        ({"hidden": [16, (16,)]}, None, 1, "lists a value twice"),
        ({"hidden": ["100-0"]}, None, 1, "hidden layer sizes must be integers from 1"),
        ({"lr": ["fast"]}, None, 1, "lr takes a number"),
        ({"optimizer": [3]}, None, 1, "optimizer takes str values"),
        ({"optimizer": ["sgd", "foo"]}, None, 1, "unknown optimizer 'foo'"),
        ({"lr": [0.1, -1]}, None, 1, "learning rate must be"),
        ({"lr": [0.1]}, {"lr": 0.5}, 1, "both fixed and varied"),
        ({"lr": [0.1]}, {"epoch": 2}, 1, "'epoch' is not a training option"),
        ({"seed": [0, 1]}, None, 2, "seed is in the grid"),
        ({"lr": [0.1]}, None, 0, "seeds must be a positive integer"),
        ({"augment": ["none", "affine"]}, {"augment_flip": 0.5}, 1, "augment_flip=0.5 needs augment=affine"),
        ({"dropout": [0.0, 1.0]}, None, 1, r"dropout must be a probability in \[0, 1\), got 1\.0"),
        ({"dropout": ["nan"]}, None, 1, r"dropout must be a probability in \[0, 1\), got nan"),
    ],
)
def test_a_bad_grid_is_one_error_before_any_cluster(no_cluster, tiny, grid, fixed, seeds, message):
    with pytest.raises(FastnnError, match=message):
        sweeps.sweep(grid, tiny, fixed=fixed, seeds=seeds)


def test_a_missing_dataset_fails_before_any_cluster(no_cluster, tmp_path):
    with pytest.raises(FastnnError, match="no such file or folder"):
        sweeps.sweep({"lr": [0.1]}, tmp_path / "missing")


@pytest.mark.parametrize(
    "grid, options, message",
    [
        ({"lr": [0.1]}, {"dev_size": 5000}, r"dev_size=5000 is larger than the 1199 rows that can be held out"),
        ({"lr": [0.1]}, {"dev_size": 0.9999}, r"dev_size=0.9999 \(1200 rows\) is larger than"),
        (
            {"patience": [0, 3]},
            {"dev_size": 0},
            r"patience=3 \(early stopping\) needs a dev split to watch, "
            r"but dev_size=0 holds out no rows",
        ),
    ],
)
def test_the_data_are_checked_against_every_trial_before_any_cluster(
    no_cluster, tiny, tmp_path, grid, options, message
):
    with pytest.raises(FastnnError, match=message):
        sweeps.sweep(grid, tiny, out=tmp_path / "sweep", **options)
    assert not (tmp_path / "sweep").exists()  # nothing written either


def test_a_malformed_csv_is_one_error_line_before_any_cluster(no_cluster, tmp_path, capsys):
    from fastnn.cli import main

    bad = tmp_path / "train.csv"
    bad.write_text("label,pixel0\n1,2\n")
    assert main(["sweep", "--data", str(bad), "--grid", "lr=0.1,0.5", "--out", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: header has 2 columns")
    assert not (tmp_path / "sweep").exists()


def test_a_grid_whose_every_point_combines_valid_options_is_accepted():
    """augment_flip needs an augmentation: fixed flips with a grid of augmentations are fine."""
    grid, fixed = sweeps.check_grid({"augment": ["affine", "elastic"]}, {"augment_flip": 0.5})
    assert grid == {"augment": ["affine", "elastic"]} and fixed["augment_flip"] == 0.5
    grid, _ = sweeps.check_grid({"augment": ["affine"], "augment_erase": [0.0, 0.5]}, {})
    assert grid["augment_erase"] == [0.0, 0.5]


def test_a_grid_of_dropout_rates_is_typed_and_expanded():
    grid, fixed = sweeps.check_grid(sweeps.parse_grid(["dropout=0,0.2,0.5", "hidden=32-16"]), {})
    assert grid == {"dropout": [0.0, 0.2, 0.5], "hidden": [(32, 16)]}
    assert [t["dropout"] for t in sweeps.make_trials(grid, fixed)] == [0.0, 0.2, 0.5]


def test_grid_from_the_command_line_is_typed_and_expanded_in_order():
    grid, fixed = sweeps.check_grid(sweeps.parse_grid(["hidden=16,32-8", "lr=0.1,1", "optimizer=sgd"]), {"seed": 5})
    assert grid == {"hidden": [(16,), (32, 8)], "lr": [0.1, 1.0], "optimizer": ["sgd"]}
    assert fixed == {"seed": 5, "backend": "numba"}
    trials = sweeps.make_trials(grid, fixed, seeds=2)
    assert [(t["hidden"], t["lr"], t["seed"]) for t in trials] == [
        ((16,), 0.1, 5),
        ((16,), 0.1, 6),
        ((16,), 1.0, 5),
        ((16,), 1.0, 6),
        ((32, 8), 0.1, 5),
        ((32, 8), 0.1, 6),
        ((32, 8), 1.0, 5),
        ((32, 8), 1.0, 6),
    ]
    assert type(trials[2]["lr"]) is float


def test_importing_fastnn_and_its_command_line_loads_no_dask():
    code = (
        "import sys, fastnn, fastnn.cli\nfastnn.cli.build_parser()\nfastnn.sweep\n"
        "print([m for m in ('dask', 'distributed', 'pandas') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --------------------------------------------------------------------------
# A LocalCluster: results equal to fastnn train, outputs complete
# --------------------------------------------------------------------------


def _train_one_by_one(tiny, row, out) -> dict:
    from fastnn.cli import main

    argv = [
        "train",
        "--data",
        str(tiny),
        "--hidden",
        str(row["hidden"]),
        "--lr",
        str(row["lr"]),
        "--epochs",
        str(row["epochs"]),
        "--batch-size",
        str(row["batch_size"]),
        "--seed",
        str(row["seed"]),
        "--dev-size",
        str(row["dev_size"]),
        "--threads",
        "1",
        "--out",
        str(out),
        "--no-plots",
        "--quiet",
    ]
    assert main(argv) == 0
    return json.loads((out / "metrics.json").read_text())


def test_local_cluster_sweep_equals_training_one_by_one(tiny, tmp_path):
    out = tmp_path / "sweep"
    table = sweeps.sweep(
        {"hidden": [16, 32], "lr": [0.01, 0.1]},
        tiny,
        fixed=COMMON,
        dev_size=200,
        n_workers=2,
        threads_per_trial=1,
        out=out,
        timeout=TIMEOUT,
    )
    assert len(table) == 4 and table["error"].isna().all()
    assert table.attrs["workers"] == 2 and (table["threads"] == 1).all()
    assert table["worker"].str.startswith("tcp://127.0.0.1:").all()
    for _, row in table.iterrows():
        metrics = _train_one_by_one(tiny, row, tmp_path / f"train-{row['trial']}")
        assert metrics["n_dev"] == 200
        for split in ("dev", "test"):
            assert row[f"{split}_accuracy"] == metrics[split]["accuracy"]
            assert row[f"{split}_f1"] == metrics[split]["f1"]

    best = table.attrs["best"]
    assert table.loc[best, "dev_accuracy"] == table["dev_accuracy"].max()
    assert {p.name for p in out.iterdir()} == {"sweep-plan.json", "sweep.csv", "sweep.json", "sweep.png", "best"}
    document = json.loads((out / "sweep.json").read_text())
    assert document["best_trial"] == best and len(document["trials"]) == 4
    assert document["trials"][best]["dev_accuracy"] == table.loc[best, "dev_accuracy"]
    import pandas as pd

    csv = pd.read_csv(out / "sweep.csv")
    assert list(csv["dev_accuracy"]) == list(table["dev_accuracy"])
    report = json.loads((out / "best" / "metrics.json").read_text())
    assert report["sweep_trial"] == best and report["test"]["accuracy"] == table.loc[best, "test_accuracy"]
    from fastnn import load_network

    net, _ = load_network(out / "best" / "model.npz")
    assert net.hidden == tuple(table.loc[best, "hidden"])
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------
# A real cluster: dask scheduler + two dask workers on 127.0.0.1
# --------------------------------------------------------------------------

# dask_cluster (conftest.py): a ``dask scheduler`` with two ``dask worker`` processes.


def test_sweep_on_a_dask_scheduler_records_a_failing_trial(tiny, tmp_path, dask_cluster):
    out = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastnn",
            "sweep",
            "--data",
            str(tiny),
            "--scheduler",
            dask_cluster,
            "--grid",
            "lr=0.05,1e30",
            "--seeds",
            "2",
            "--hidden",
            "16",
            "--epochs",
            "5",
            "--batch-size",
            "32",
            "--dev-size",
            "200",
            "--timeout",
            str(TIMEOUT),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 trials (2 failed) on 2 workers" in proc.stdout
    rows = json.loads((out / "sweep.json").read_text())["trials"]
    assert [(r["lr"], r["seed"]) for r in rows] == [(0.05, 0), (0.05, 1), (1e30, 0), (1e30, 1)]
    for row in rows[:2]:
        assert row["error"] is None and row["dev_accuracy"] > 0.5 and row["threads"] == 1
    for row in rows[2:]:
        assert row["error"].startswith("training diverged") and row["dev_accuracy"] is None
    assert (out / "best" / "model.npz").is_file()
    # The same configs on the same cluster through the Python API give the same figures.
    table = sweeps.sweep(
        {"lr": [0.05]},
        tiny,
        dask_cluster,
        seeds=2,
        fixed={"hidden": 16, "epochs": 5, "batch_size": 32},
        dev_size=200,
        timeout=TIMEOUT,
    )
    assert list(table["dev_accuracy"]) == [r["dev_accuracy"] for r in rows[:2]]


def test_a_sweep_whose_every_trial_fails_is_an_error(tiny, tmp_path, dask_cluster, capsys):
    from fastnn.cli import main

    code = main(
        [
            "sweep",
            "--data",
            str(tiny),
            "--scheduler",
            dask_cluster,
            "--grid",
            "lr=1e30,1e31",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--dev-size",
            "200",
            "--timeout",
            str(TIMEOUT),
            "--out",
            str(tmp_path / "sweep"),
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: all 2 trials failed; the first: training diverged")
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["best_trial"] is None


def test_an_unreachable_scheduler_is_one_error(tiny):
    with pytest.raises(FastnnError, match="cannot use the Dask scheduler"):
        sweeps.sweep({"lr": [0.1]}, tiny, "tcp://127.0.0.1:1", timeout=5)
