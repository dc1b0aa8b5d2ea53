"""scikit-learn's own MLP tests, run against fastnn's estimators with only the import changed.

scikit-learn installs its test file, ``sklearn/neural_network/tests/test_mlp.py``.
This runner copies it with its one import line swapped to ``from fastnn import
MLPClassifier, MLPRegressor``, runs it in a fresh pytest (its fixtures, such as
``global_random_seed``, come from ``sklearn.conftest``, loaded with ``-p
sklearn.conftest``), and reports each of its test functions here as one test:
every one must pass, except the few in :data:`EXCLUDED`, which read
scikit-learn's private internals and are skipped with the reason.  Unchanged,
the file passes 59 of 59 against scikit-learn's own estimators.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn's MLP tests need scikit-learn installed")

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
SWAPPED = "from fastnn import MLPClassifier, MLPRegressor"

#: The file's tests that call scikit-learn's private methods, and why they cannot run here.
EXCLUDED = {
    "test_gradient": (
        "calls scikit-learn's private MLPClassifier._loss_grad_lbfgs(theta, X, Y, sample_weight, "
        "activations, deltas, coef_grads, intercept_grads) with its own work buffers; fastnn's "
        "full-batch loss and gradient are checked against central differences in "
        "tests/test_estimator.py::test_lbfgs_gradient_matches_central_differences"
    ),
}


def _test_functions() -> list[str]:
    if not SOURCE.exists():
        return []
    tree = ast.parse(SOURCE.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list[str]]:
    """Each test function's outcomes ("passed", "failed: ...", "skipped: ...") in the swapped file."""
    text = SOURCE.read_text()
    assert text.count(IMPORT) == 1, f"{SOURCE} no longer imports the estimators in one line: {IMPORT!r}"
    folder = tmp_path_factory.mktemp("sklearn_mlp")
    path = folder / "test_mlp_fastnn.py"
    path.write_text(text.replace(IMPORT, SWAPPED))
    report = folder / "report.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "sklearn.conftest",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={report}",
        str(path),
    ]
    command += [f"--deselect={path}::{name}" for name in EXCLUDED]
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1200)
    assert report.exists(), f"scikit-learn's MLP tests did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    found: dict[str, list[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name").split("[")[0]
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        outcome = "passed" if problem is None else f"{problem.tag}: {problem.get('message', '')[:2000]}"
        found.setdefault(name, []).append(outcome)
    return found


@pytest.mark.parametrize("name", _test_functions() or ["(scikit-learn's test_mlp.py is not installed)"])
def test_scikit_learns_mlp_test_passes_against_fastnn(name, outcomes):
    if not SOURCE.exists():
        pytest.skip(f"scikit-learn's installed package has no {SOURCE.name} to run")
    if name in EXCLUDED:
        pytest.skip(f"excluded: {EXCLUDED[name]}")
    assert name in outcomes, f"{name} did not run"
    failed = [o for o in outcomes[name] if o != "passed"]
    assert not failed, "\n".join(failed)


def test_the_exclusions_still_exist_in_scikit_learns_file():
    """An exclusion for a test scikit-learn has renamed or removed would hide nothing: drop it."""
    if not SOURCE.exists():
        pytest.skip(f"scikit-learn's installed package has no {SOURCE.name} to run")
    assert set(EXCLUDED) <= set(_test_functions())
