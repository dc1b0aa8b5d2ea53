"""Fast starts: ``import fastnn`` loads no heavy dependency until a feature needs it.

pandas (~0.15 s) is for the CSV reader, matplotlib for the figures, numba (and
scipy, for its BLAS) for the numba backend.  Each case runs in a fresh
interpreter, since this process has imported all of them already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "pandas", "numba", "scipy", "sklearn", "tqdm", "PIL")


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", ["fastnn", "fastnn.cli", "fastnn.compat", "fastnn.predict", "fastnn.data"])
def test_importing_fastnn_loads_no_heavy_dependency(module):
    assert loaded_after(f"import {module}") == []


def test_the_public_api_is_all_there_and_still_lazy():
    code = (
        "import fastnn\nmissing = [n for n in fastnn.__all__\n           if n not in ('MLPClassifier', 'MLPRegressor') and not hasattr(fastnn, n)]\n"
        "assert not missing, missing"
    )
    assert loaded_after(code) == []
    # Every public name resolves (the estimators import scikit-learn on first use).
    proc = subprocess.run(
        [sys.executable, "-c", "import fastnn; [getattr(fastnn, n) for n in fastnn.__all__]"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_pandas_is_imported_when_a_csv_is_read(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + ",".join(["1"] * 785) + "\n")
    code = (
        f"import fastnn\nX, y = fastnn.read_kaggle_csv({str(csv)!r})\nassert X.shape == (1, 784) and y.tolist() == [1]"
    )
    assert "pandas" in loaded_after(code)
