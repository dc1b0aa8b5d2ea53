"""Sweeps that lose nothing: each finished trial kept as it finishes, interruptions by real signals to
real processes (Ctrl-C of the client, a worker process killed mid-trial, the timeout), and
``--resume`` giving the rows an uninterrupted sweep gives.

The clusters are real: ``dask_cluster`` (conftest.py) is a ``dask scheduler``
with two ``dask worker`` processes, and the command-line sweeps here start
their own LocalCluster.  Sweeps run as ``python -m fastnn sweep`` in their own
session, so a Ctrl-C is what a terminal sends: SIGINT to the whole process
group.  Every wait is bounded; every process started is ended.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fastnn import sweeps
from fastnn.errors import FastnnError
from fastnn.sweeps.folder import SweepFolder

from conftest import prototype_data

pytest.importorskip("distributed", reason="the sweep tests need Dask distributed (the test extra)")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180  # seconds for any one sweep or wait
# Four trials of 150 epochs at 4-10 ms (one thread) on the 2-core machines, two at a time: a
# signal sent when the first row appears lands while others run, and a worker seen running a
# trial is killed part way through it.
GRID = {"lr": [0.05, 0.1]}
SEEDS = 2
FIXED = {"hidden": 64, "epochs": 150, "batch_size": 32}
TRIALS = 4
# Columns that legitimately differ between two runs of the same trial.
RUN_COLUMNS = ("worker", "train_seconds")


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> Path:
    """An IDX folder of 1200 training and 300 test images, noisy enough that configs score apart."""
    from fastnn.data import write_idx

    folder = tmp_path_factory.mktemp("noisy")
    X, y = prototype_data(1500, noise=1.0, seed=5)
    X = np.round(X * 255).astype(np.uint8)
    write_idx(folder / "train-images-idx3-ubyte", X[:1200], "images")
    write_idx(folder / "train-labels-idx1-ubyte", y[:1200].astype(np.uint8), "labels")
    write_idx(folder / "t10k-images-idx3-ubyte", X[1200:], "images")
    write_idx(folder / "t10k-labels-idx1-ubyte", y[1200:].astype(np.uint8), "labels")
    return folder


@pytest.fixture(scope="module")
def reference(noisy, dask_cluster, tmp_path_factory) -> pd.DataFrame:
    """The rows of the sweep run once, uninterrupted (sweep.csv as written)."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    sweeps.sweep(GRID, noisy, dask_cluster, seeds=SEEDS, fixed=FIXED, out=out, plots=False, timeout=TIMEOUT)
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == TRIALS and table["error"].isna().all()
    assert table["dev_accuracy"].nunique() > 1  # the comparisons below can tell trials apart
    return table


def assert_same_rows(out: Path, reference: pd.DataFrame) -> None:
    """``out/sweep.csv`` holds exactly the reference's rows (but for where and how long they ran)."""
    table = pd.read_csv(out / "sweep.csv")
    columns = [c for c in reference.columns if c not in RUN_COLUMNS]
    pd.testing.assert_frame_equal(table[columns], reference[columns])
    assert json.loads((out / "sweep.json").read_text())["best_trial"] == int(reference["dev_accuracy"].idxmax())


def sweep_argv(data: Path, out: Path, *extra) -> list[str]:
    grid = ",".join(str(v) for v in GRID["lr"])
    return [
        sys.executable,
        "-m",
        "fastnn",
        "sweep",
        "--data",
        str(data),
        "--grid",
        f"lr={grid}",
        "--seeds",
        str(SEEDS),
        "--hidden",
        str(FIXED["hidden"]),
        "--epochs",
        str(FIXED["epochs"]),
        "--batch-size",
        str(FIXED["batch_size"]),
        "--out",
        str(out),
        "--no-plots",
        "--quiet",
        *extra,
    ]


def launch(argv) -> subprocess.Popen:
    """A command in its own session and process group, as a shell runs a foreground job."""
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ, MPLBACKEND="Agg", CI="1"),
    )


def run(argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, MPLBACKEND="Agg", CI="1"),
    )


def rows_in(out: Path) -> int:
    """Finished trials in ``out/sweep.csv`` (the header excluded; 0 before the file exists)."""
    try:
        return max(0, len((out / "sweep.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def wait_for(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended ({proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def ctrl_c(proc: subprocess.Popen) -> tuple[int, str]:
    """SIGINT to the command's process group, as a terminal's Ctrl-C; its exit status and stderr."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err


def interrupted_message(err: str, out: Path) -> int:
    """The one line an interrupted sweep prints; returns the number of trials it says it kept."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    match = re.fullmatch(
        rf"interrupted: (\d+) of {TRIALS} trials are in {re.escape(str(out))}/sweep.csv; "
        rf"fastnn sweep --resume {re.escape(str(out))} runs the other (\d+)",
        lines[0],
    )
    assert match, lines[0]
    kept, other = map(int, match.groups())
    assert kept + other == TRIALS
    return kept


# --------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------


def test_ctrl_c_keeps_the_finished_trials_stops_the_local_cluster_and_resume_completes(noisy, tmp_path, reference):
    import psutil

    out = tmp_path / "sweep"
    proc = launch(sweep_argv(noisy, out))
    wait_for(lambda: rows_in(out) >= 1, "a first finished trial", proc)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "the local cluster's worker processes"
    code, err = ctrl_c(proc)

    assert code == 130
    kept = interrupted_message(err, out)
    assert kept == rows_in(out) >= 1
    assert not (out / "sweep.json").exists()  # not mistaken for a complete sweep
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == [], f"worker processes left running: {alive}"
    # Kept rows are exact: they are the uninterrupted sweep's rows for those trials.
    kept_rows = pd.read_csv(out / "sweep.csv")
    columns = [c for c in reference.columns if c not in RUN_COLUMNS]
    expected = reference.set_index("trial").loc[kept_rows["trial"]].reset_index()
    pd.testing.assert_frame_equal(kept_rows[columns], expected[columns])

    # Starting afresh into the same folder would lose them: refused, naming the way on.
    again = run(sweep_argv(noisy, out))
    assert again.returncode == 2 and f"resume it (fastnn sweep --resume {out})" in again.stderr
    assert rows_in(out) == kept

    resumed = run([sys.executable, "-m", "fastnn", "sweep", "--resume", str(out), "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert_same_rows(out, reference)
    assert (out / "best" / "model.npz").is_file() and not (out / ".best-so-far").exists()


def test_ctrl_c_of_a_client_on_a_dask_scheduler_and_resume_there(noisy, tmp_path, dask_cluster, reference):
    from distributed import Client

    out = tmp_path / "sweep"
    proc = launch(sweep_argv(noisy, out, "--scheduler", dask_cluster))
    wait_for(lambda: rows_in(out) >= 1, "a first finished trial", proc)
    code, err = ctrl_c(proc)
    assert code == 130
    assert interrupted_message(err, out) == rows_in(out) >= 1

    def trials_on_the_scheduler(dask_scheduler):
        return [str(key) for key in dask_scheduler.tasks if str(key).startswith("fastnn-trial")]

    with Client(dask_cluster, timeout=30) as client:
        # The interrupted client's trials are dropped: none stays queued on the cluster.
        wait_for(lambda: client.run_on_scheduler(trials_on_the_scheduler) == [], "the trials to be dropped", timeout=60)
    # Even the best network so far lost (deleted by hand): its trial runs again, to the same row.
    shutil.rmtree(out / ".best-so-far")
    resumed = run(
        [sys.executable, "-m", "fastnn", "sweep", "--resume", str(out), "--scheduler", dask_cluster, "--quiet"]
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_rows(out, reference)
    assert (out / "best" / "model.npz").is_file()


# --------------------------------------------------------------------------
# A worker process killed mid-trial
# --------------------------------------------------------------------------


def test_a_worker_killed_mid_trial_is_replaced_and_the_trial_runs_elsewhere(noisy, tmp_path, dask_cluster, reference):
    from distributed import Client

    def executing(dask_worker):  # runs on a worker (a local function: sent by value)
        import os

        keys = [str(ts.key) for ts in dask_worker.state.executing if str(ts.key).startswith("fastnn-trial")]
        return os.getpid(), keys

    out = tmp_path / "sweep"
    with Client(dask_cluster, timeout=30) as client:
        proc = launch(sweep_argv(noisy, out, "--scheduler", dask_cluster))
        try:

            def a_running_trial():
                running = {address: (pid, keys) for address, (pid, keys) in client.run(executing).items() if keys}
                return next(iter(running.items()), None)

            address, (pid, keys) = wait_for(a_running_trial, "a trial running on a worker", proc)
            killed_trial = int(keys[0].split("-")[2])
            os.kill(pid, signal.SIGKILL)  # the worker process itself; its nanny starts another
            _, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        client.wait_for_workers(2, timeout=60)  # the replacement, for the tests after this one

    assert proc.returncode == 0, err
    assert_same_rows(out, reference)
    rows = pd.read_csv(out / "sweep.csv")
    assert rows["error"].isna().all()
    assert rows.loc[rows["trial"] == killed_trial, "worker"].item() != address  # ran again elsewhere


# --------------------------------------------------------------------------
# The timeout, and the Python API
# --------------------------------------------------------------------------


def test_a_timed_out_sweep_keeps_its_finished_trials_and_resumes_from_python(noisy, tmp_path, dask_cluster):
    # Two trials of 2 epochs finish well within the timeout; two of 400 (1.6 s at least, at 4 ms
    # an epoch) cannot.
    grid, fixed = {"epochs": [2, 400]}, {"hidden": 64, "batch_size": 32, "lr": 0.05}
    out = tmp_path / "sweep"
    with pytest.raises(FastnnError) as info:
        sweeps.sweep(grid, noisy, dask_cluster, seeds=2, fixed=fixed, out=out, plots=False, timeout=1.0)
    match = re.fullmatch(
        rf"the sweep did not finish within 1 s: (\d+) of 4 trials are in "
        rf"{re.escape(str(out))}/sweep.csv; fastnn.sweeps.resume\('{re.escape(str(out))}'\) "
        rf"runs the other \d+",
        str(info.value),
    )
    assert match, str(info.value)
    kept = pd.read_csv(out / "sweep.csv")
    assert len(kept) == int(match.group(1)) and set(kept["epochs"]) <= {2}
    assert not (out / "sweep.json").exists()

    table = sweeps.resume(out, dask_cluster, plots=False, timeout=TIMEOUT)
    assert list(table["trial"]) == [0, 1, 2, 3] and table["error"].isna().all()
    assert list(table["epochs_run"]) == [2, 2, 400, 400]
    resumed = pd.read_csv(out / "sweep.csv").set_index("trial")
    pd.testing.assert_frame_equal(resumed.loc[kept["trial"]].reset_index(), kept)  # kept rows untouched


# --------------------------------------------------------------------------
# The folder's own rules (no cluster)
# --------------------------------------------------------------------------


def _plan(data: Path):
    return sweeps.make_plan(GRID, data, seeds=SEEDS, fixed=FIXED)


def _finished(trial: int, plan, dev_accuracy: float) -> dict:
    row = {"trial": trial, **plan.trials()[trial], "dev_size": plan.dev_size}
    row.update(dict.fromkeys(sweeps.RESULT_COLUMNS))
    row.update(
        dev_accuracy=dev_accuracy,
        test_accuracy=dev_accuracy,
        epochs_run=3,
        threads=1,
        worker="tcp://127.0.0.1:1",
        train_seconds=0.5,
    )
    return {"row": row, "network": None, "history": None}


def test_each_finished_trial_is_in_sweep_csv_at_once_in_trial_order(noisy, tmp_path):
    plan = _plan(noisy)
    folder = SweepFolder.start(tmp_path / "sweep", plan)
    assert rows_in(tmp_path / "sweep") == 0 and (tmp_path / "sweep" / "sweep-plan.json").is_file()
    for count, trial in enumerate([3, 0, 2], start=1):
        folder.record(_finished(trial, plan, 0.5 + trial / 100))
        assert list(pd.read_csv(tmp_path / "sweep" / "sweep.csv")["trial"]) == sorted([3, 0, 2][:count])
    reopened = SweepFolder.open(tmp_path / "sweep")
    assert reopened.rows == folder.rows  # read back exactly, types included
    # The best finished trial (3) has no network kept here, so resuming runs it again.
    assert reopened.missing() == [1, 3]


def test_resume_refuses_a_sweep_csv_that_does_not_match_its_plan(noisy, tmp_path):
    plan = _plan(noisy)
    folder = SweepFolder.start(tmp_path / "sweep", plan)
    folder.record(_finished(2, plan, 0.7))
    csv = tmp_path / "sweep" / "sweep.csv"
    csv.write_text(csv.read_text().replace(",0.1,", ",0.5,"))
    with pytest.raises(
        FastnnError,
        match=r"sweep.csv, line 2: trial 2's settings differ from those in "
        r"sweep-plan.json",
    ):
        sweeps.resume(tmp_path / "sweep")


def test_resume_takes_no_option_that_would_change_the_sweep(noisy, tmp_path, capsys):
    from fastnn.cli import main

    SweepFolder.start(tmp_path / "sweep", _plan(noisy))
    assert main(["sweep", "--resume", str(tmp_path / "sweep"), "--grid", "lr=1", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume runs the sweep saved in") and "drop --epochs, --grid" in err
    assert main(["sweep", "--resume", str(tmp_path / "nothing-here")]) == 2
    assert "holds no sweep to resume" in capsys.readouterr().err
