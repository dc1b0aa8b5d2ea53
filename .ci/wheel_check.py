"""Checks of an installed fastnn wheel, run by .ci/wheel from a fresh virtual environment.

``core WHEEL``: ``import fastnn`` comes from the environment and needs no extra; ``fastnn
--version`` is the wheel's version; a one-epoch ``fastnn train`` on a small CSV writes a report.
``serve WHEEL``: ``fastnn serve`` of that model answers ``/api/model`` and serves its page.

The training runs ``--backend numpy``: a fresh environment has no compiled numba kernels, and
compiling them (a cold start of ~20-60 s on two cores) would measure numba, not the wheel; the
kernels are the test suite's to check.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
FASTNN = str(BIN / "fastnn")
RUN = Path("run")


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"wheel check failed: {message}")
    print(f"ok: {message}")


def core(wheel: Path) -> None:
    import fastnn

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    check(Path(fastnn.__file__).resolve().is_relative_to(site), f"fastnn imported from {site}")
    version = wheel.name.split("-")[1]
    check(fastnn.__version__ == version, f"fastnn.__version__ is the wheel's {version}")
    extras = ["sklearn", "starlette", "uvicorn", "distributed", "onnx", "onnxruntime", "skl2onnx"]
    absent = [name for name in extras if importlib.util.find_spec(name) is None]
    check(absent == extras, f"no optional dependency installed ({', '.join(extras)})")
    check(
        len([getattr(fastnn, n) for n in fastnn.__all__ if n not in ("MLPClassifier", "MLPRegressor", "sweep")]) > 0,
        "import fastnn and its public names work without the extras",
    )

    out = subprocess.run([FASTNN, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    check(out == f"fastnn {version}", f"`fastnn --version` says {out!r}")

    # A small Kaggle-style CSV: 200 noisy images of ten fixed patterns.
    import numpy as np

    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, size=(10, 784))
    labels = np.arange(200) % 10
    pixels = np.clip(patterns[labels] + rng.integers(-40, 41, size=(200, 784)), 0, 255)
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    np.savetxt("train.csv", np.column_stack([labels, pixels]), fmt="%d", delimiter=",", header=header, comments="")
    start = time.perf_counter()
    subprocess.run(
        [
            FASTNN,
            "train",
            "--backend",
            "numpy",
            "--data",
            "train.csv",
            "--epochs",
            "1",
            "--hidden",
            "32",
            "--out",
            str(RUN),
            "--quiet",
        ],
        check=True,
    )
    check(
        (RUN / "model.npz").is_file() and (RUN / "report.html").is_file(),
        f"a one-epoch `fastnn train` wrote model.npz and report.html ({time.perf_counter() - start:.1f} s)",
    )


def serve(wheel: Path) -> None:
    proc = subprocess.Popen([FASTNN, "serve", str(RUN / "model.npz"), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "fastnn serve: http://127.0.0.1:PORT/  (model ...)"
        check(line.startswith("fastnn serve: http://127.0.0.1:"), f"fastnn serve started: {line.strip()}")
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/model", timeout=30) as answer:
            model = json.load(answer)
        check(model["sizes"] == [784, 32, 10], f"/api/model answers {model['sizes']}")
        with urllib.request.urlopen(url, timeout=30) as answer:
            page = answer.read().decode()
        check("<html" in page.lower(), "the draw-a-digit page is served from the installed package data")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    {"core": core, "serve": serve}[sys.argv[1]](Path(sys.argv[2]))
