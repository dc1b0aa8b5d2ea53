"""fastnn's MLPClassifier against scikit-learn's on scikit-learn's small examples, in one process.

``pytest benchmarks/ -k estimator`` times whole ``fit`` calls (iris, digits and
moons, at the gallery's settings; ``backend="auto"`` runs them on NumPy), the two
implementations side by side in one group per case.  The interleaved
fresh-process comparison, MNIST included, is ``benchmarks/estimator_vs_sklearn.py``
(its smoke test is here too).  With ``--benchmark-disable`` every body runs once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().with_name("estimator_vs_sklearn.py")
sys.path.insert(0, str(SCRIPT.parent))
from estimator_vs_sklearn import CASES, load  # noqa: E402

SMALL = ("iris", "iris-lbfgs", "digits", "moons")


@pytest.mark.parametrize("impl", ["fastnn", "sklearn"])
@pytest.mark.parametrize("case", SMALL)
def test_fit_small_example(benchmark, case, impl):
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from fastnn import MLPClassifier
    data, params = CASES[case]
    X, y, X_test, y_test = load(data)
    benchmark.group = f"estimator fit {case}"

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MLPClassifier(**params).fit(X, y)

    clf = benchmark.pedantic(fit, rounds=3, iterations=1, warmup_rounds=1)
    assert clf.score(X_test, y_test) > 0.8


def test_comparison_script_runs_and_summarises(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "moons", "--rounds", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| moons | numpy |" in proc.stdout
    report = json.loads(out.read_text())
    assert {row["impl"] for row in report["rows"]} == {"fastnn", "sklearn"}
    assert report["summary"]["moons"]["ratio"] > 0
