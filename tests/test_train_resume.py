"""``fastnn train`` interrupted by real signals and finished with ``--resume``: nothing that
was finished is lost, the resumed run ends bit for bit as the uninterrupted one, an earlier
report stays intact until the new run completes, and the checkpoint goes once it does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fastnn import checkpoint
from fastnn.modelfile import load_network

ROOT = Path(__file__).resolve().parent.parent
#: Long enough epochs (~0.1-0.3 s) to be interrupted between them, short enough for CI.
OPTIONS = [
    "--hidden",
    "96,48",
    "--epochs",
    "8",
    "--batch-size",
    "32",
    "--optimizer",
    "nesterov",
    "--schedule",
    "onecycle",
    "--lr",
    "0.05",
    "--no-plots",
    "--quiet",
]


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> Path:
    """3000 rows of two blurred prototypes per class: something to learn, quickly."""
    rng = np.random.default_rng(0)
    y = np.arange(3000) % 10
    protos = rng.integers(0, 256, (10, 784))
    X = np.clip(protos[y] * rng.uniform(0.5, 1, (3000, 1)) + rng.normal(0, 60, (3000, 784)), 0, 255)
    path = tmp_path_factory.mktemp("data") / "train.csv"
    pd.DataFrame(np.column_stack([y, X.astype(int)]), columns=["label"] + [f"pixel{i}" for i in range(784)]).to_csv(
        path, index=False
    )
    return path


def _env():
    return {**os.environ, "CI": "1", "MPLBACKEND": "Agg"}


def _train(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastnn", "train", *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        **kwargs,
    )


def _interrupt(csv, out: Path, backend: str, sig, after_epochs: int = 2) -> subprocess.CompletedProcess:
    """Start a run, send ``sig`` once its checkpoint holds ``after_epochs`` epochs; its result."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastnn",
            "train",
            "--data",
            str(csv),
            "--backend",
            backend,
            "--out",
            str(out),
            *OPTIONS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if checkpoint.load(out)[0]["epochs_done"] >= after_epochs:
                break
        except Exception:  # not written yet (or being replaced): look again
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stderr.read()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def uninterrupted(csv, tmp_path_factory) -> dict:
    """The same runs, never interrupted, one per backend: backend -> network."""
    nets = {}
    for backend in ("numpy", "numba"):
        out = tmp_path_factory.mktemp(f"whole-{backend}")
        done = _train("--data", csv, "--backend", backend, "--out", out, *OPTIONS)
        assert done.returncode == 0, done.stderr
        assert not (out / checkpoint.NAME).exists()  # a finished run leaves no checkpoint
        nets[backend] = load_network(out / "model.npz")[0]
    return nets


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_network_bit_for_bit(
    csv, tmp_path, uninterrupted, backend, sig, status
):
    out = tmp_path / "run"
    stopped = _interrupt(csv, out, backend, sig)
    assert stopped.returncode == status, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stopped.stderr, stopped.stderr
    assert lines[0].startswith("interrupted: stopped") and f"fastnn train --resume {out}" in lines[0]
    kept = checkpoint.load(out)[0]["epochs_done"]
    assert 2 <= kept < 8 and not (out / "model.npz").exists()
    resumed = _train("--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    net = load_network(out / "model.npz")[0]
    np.testing.assert_array_equal(net.params.flat, uninterrupted[backend].params.flat)
    assert not (out / checkpoint.NAME).exists()


def test_an_earlier_report_stays_intact_until_the_new_run_finishes(csv, tmp_path):
    out = tmp_path / "run"
    first = _train(
        "--data", csv, "--backend", "numpy", "--out", out, "--hidden", "8", "--epochs", "1", "--no-plots", "--quiet"
    )
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    stopped = _interrupt(csv, out, "numpy", signal.SIGINT)
    assert stopped.returncode == 130
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != checkpoint.NAME}
    assert after == before  # the old report, untouched while the new run was cut short
    assert _train("--resume", out, "--quiet").returncode == 0
    assert load_network(out / "model.npz")[0].hidden == (96, 48)


@pytest.mark.parametrize(
    "extra",
    [["--epochs", "3"], ["--data", "mnist"], ["--preset", "best"], ["--dev-size", "100"], ["--out", "elsewhere"]],
    ids=str,
)
def test_resume_refuses_options_that_would_change_the_run(csv, tmp_path, extra):
    out = tmp_path / "run"
    stopped = _interrupt(csv, out, "numpy", signal.SIGINT)
    assert stopped.returncode == 130
    refused = _train("--resume", out, *extra)
    assert refused.returncode == 2 and refused.stderr.startswith("error: --resume finishes the run")
    assert extra[0] in refused.stderr and (out / checkpoint.NAME).exists()


def test_resume_without_a_checkpoint_is_one_error(tmp_path):
    refused = _train("--resume", tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"error: no checkpoint at {tmp_path / checkpoint.NAME}")
