"""fastnn.report: a pure evaluation, and the whole report folder written from one result, from Python."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.metrics import classification_report
from fastnn.modelfile import load_network
from fastnn.network import init_network
from fastnn.report import FIGURES, FIRST_LAYER_FIGURE, RunResult, evaluate, metrics, write_report
from fastnn.training import train

from conftest import prototype_data

NAMES = tuple("abcdefghij")


@pytest.fixture(scope="module")
def run():
    X, y = prototype_data(n=400, d=784, c=10, seed=4)
    splits = {"dev": (X[300:350], y[300:350]), "test": (X[350:], y[350:])}
    config = TrainConfig(hidden=16, epochs=2, backend="numpy")
    net, history = train(X[:300], y[:300], config, X_dev=X[300:350], y_dev=y[300:350], class_names=NAMES)
    result = RunResult(
        dataset="protos",
        config=config,
        network=net,
        history=history,
        evaluation=evaluate(net, splits, "numpy"),
        n_train=300,
        n_dev=50,
    )
    return result, splits


def test_train_names_the_classes_it_is_given():
    X, y = prototype_data(n=100, d=784, c=10)
    net, _ = train(X, y, TrainConfig(hidden=4, epochs=1, backend="numpy"), class_names=NAMES)
    assert net.class_names == NAMES


def test_train_refuses_a_wrong_number_of_class_names():
    X, y = prototype_data(n=100, d=784, c=10)
    with pytest.raises(FastnnError, match="class_names has 3 names for 10 classes"):
        train(X, y, TrainConfig(hidden=4, epochs=1, backend="numpy"), class_names=("a", "b", "c"))


def test_evaluate_reports_every_nonempty_split_and_writes_nothing(run, tmp_path, monkeypatch):
    result, splits = run
    monkeypatch.chdir(tmp_path)
    net = result.network
    empty = {"none": (splits["dev"][0][:0], splits["dev"][1][:0])}
    reports = evaluate(net, {**splits, **empty}, "numpy")
    assert set(reports) == {"dev", "test"}
    for name, (X, y) in splits.items():
        assert reports[name] == classification_report(y, net.predict(X, "numpy"), 10, NAMES)
    assert list(tmp_path.iterdir()) == []


def test_a_report_written_from_python_is_complete_and_consistent(run, tmp_path):
    result, splits = run
    out = write_report(tmp_path / "report", result, splits)
    figures = {**FIGURES, "first_layer": FIRST_LAYER_FIGURE}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["metrics.json", "model.npz", "report.html", *figures.values()]
    )
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures) and "protos" in page
    assert "What the first layer learned" in page and "784-16-10 relu/softmax, float32" in page
    written = json.loads((out / "metrics.json").read_text())
    assert written == {**json.loads(json.dumps(metrics(result))), "figures": figures}
    assert written["config"]["hidden"] == [16] and written["test"]["n"] == 50
    network = {"sizes": [784, 16, 10], "hidden": [16], "activation": "relu", "head": "softmax", "dtype": "float32"}
    assert written["network"] == network
    net, meta = load_network(out / "model.npz")
    np.testing.assert_array_equal(net.params.flat, result.network.params.flat)
    assert net.class_names == NAMES
    assert meta["network"] == network
    assert meta["accuracy"] == {"dev": written["dev"]["accuracy"], "test": written["test"]["accuracy"]}


def test_the_recorded_shape_is_the_networks_not_the_configs(tmp_path):
    """A given network is fine-tuned: its own layers, not config.hidden, are what the report says."""
    X, y = prototype_data(n=200, d=784, c=10, seed=6)
    config = TrainConfig(hidden=(16,), epochs=1, backend="numpy")
    given = init_network(784, (24, 12), 10, seed=0, activation="tanh")
    net, history = train(X[:150], y[:150], config, network=given)
    splits = {"dev": (X[150:], y[150:])}
    result = RunResult(
        dataset="protos",
        config=config,
        network=net,
        history=history,
        evaluation=evaluate(net, splits, "numpy"),
        n_train=150,
        n_dev=50,
    )
    out = write_report(tmp_path / "tuned", result, splits, plots=False)
    written = json.loads((out / "metrics.json").read_text())
    assert written["config"]["hidden"] == [16]
    assert (written["network"]["sizes"], written["network"]["activation"]) == ([784, 24, 12, 10], "tanh")
    assert load_network(out / "model.npz")[1]["network"] == written["network"]
    assert "784-24-12-10 tanh/softmax" in (out / "report.html").read_text()


def test_a_report_on_other_features_draws_no_image_figures(tmp_path):
    X, y = prototype_data(n=120, d=50, c=3, seed=7)
    config = TrainConfig(hidden=(8,), epochs=1, backend="numpy")
    net, history = train(X[:90], y[:90], config)
    splits = {"dev": (X[90:], y[90:])}
    result = RunResult(
        dataset="features",
        config=config,
        network=net,
        history=history,
        evaluation=evaluate(net, splits, "numpy"),
        n_train=90,
        n_dev=30,
    )
    out = write_report(tmp_path / "small", result, splits)
    figures = json.loads((out / "metrics.json").read_text())["figures"]
    assert not (out / FIRST_LAYER_FIGURE).exists()
    # the figures that draw inputs as images are left out too; the page shows what there is
    assert figures == {"history": FIGURES["history"], "confusion_matrix": FIGURES["confusion_matrix"]}
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 2


def test_first_layer_figure_is_drawn_without_a_held_out_split(run, tmp_path):
    import dataclasses

    result, _ = run
    alone = dataclasses.replace(result, evaluation={})
    out = write_report(tmp_path / "no-split", alone, {})
    assert json.loads((out / "metrics.json").read_text())["figures"] == {
        "history": FIGURES["history"],
        "first_layer": FIRST_LAYER_FIGURE,
    }


def test_a_report_without_plots_has_no_figures(run, tmp_path):
    result, splits = run
    out = write_report(tmp_path / "report", result, splits, plots=False)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.npz", "report.html"]
    assert "figures" not in json.loads((out / "metrics.json").read_text())


def test_a_report_that_cannot_be_completed_leaves_nothing(run, tmp_path):
    result, splits = run
    out = tmp_path / "report"
    (out / "history.png").mkdir(parents=True)  # a folder where a figure must go
    with pytest.raises(FastnnError, match="a folder of that name is in the way"):
        write_report(out, result, splits)
    assert [p.name for p in out.iterdir()] == ["history.png"]


def test_a_run_with_augmentation_shows_what_training_saw(tmp_path):
    import dataclasses

    from fastnn.augment import distort, spec_from_config
    from fastnn.report import AUGMENTATION_FIGURE

    X, y = prototype_data(n=200, d=784, c=10, seed=5)
    config = TrainConfig(hidden=8, epochs=1, backend="numpy", augment="affine")
    net, history = train(X[:150], y[:150], config)
    splits = {"dev": (X[150:], y[150:])}
    result = RunResult(
        dataset="protos",
        config=config,
        network=net,
        history=history,
        evaluation=evaluate(net, splits, "numpy"),
        n_train=150,
        n_dev=50,
    )
    out = write_report(tmp_path / "aug", result, splits)
    written = json.loads((out / "metrics.json").read_text())
    assert written["figures"]["augmentation"] == AUGMENTATION_FIGURE
    assert (out / AUGMENTATION_FIGURE).read_bytes()[:4] == b"\x89PNG"
    assert "What training saw" in (out / "report.html").read_text()
    # the figure's distortions are real ones: not the originals
    shown = distort(X[150:162], spec_from_config(config))
    assert not np.allclose(shown, X[150:162])
    plain = dataclasses.replace(result, config=dataclasses.replace(config, augment="none"))
    assert AUGMENTATION_FIGURE not in {p.name for p in write_report(tmp_path / "plain", plain, splits).iterdir()}
