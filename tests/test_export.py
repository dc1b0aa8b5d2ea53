"""ONNX export: onnxruntime on the exported file against fastnn's own predictions.

Tolerance: the graph computes the same float32 products as fastnn's numpy
backend, in onnxruntime's order (and, for raw pixels, with ``W1 / 255`` folded
in, one more rounding per weight), so probabilities agree to a few float32
roundings of values <= 1: we allow 1e-5 absolute.  Labels must agree exactly
except where the two largest probabilities are within that tolerance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import FastnnError
from fastnn.cli.export import main
from fastnn.export import export_onnx, to_onnx
from fastnn.model import Network, TrainConfig, train

from conftest import prototype_data

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install -e '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="running exported models needs onnxruntime (pip install -e '.[onnx]')")

PROB_TOL = 1e-5
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained():
    """A network trained on synthetic digits, and a held-out slice it never saw."""
    X, y = prototype_data(n=1500, noise=0.6)
    net, _ = train(X[:1200], y[:1200], TrainConfig(hidden=32, epochs=3, batch_size=50, lr=0.2))
    return net, X[1200:]


def _run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, probs = session.run(["label", "probabilities"], {"pixels": np.ascontiguousarray(X, np.float32)})
    return label, probs


def _assert_agrees(net, label, probs, X):
    ref = net.predict_proba(X)
    assert probs.shape == ref.shape and probs.dtype == np.float32
    assert np.abs(probs - ref).max() <= PROB_TOL
    expected = np.asarray(net.classes)[ref.argmax(axis=1)]
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * PROB_TOL
    assert clear.mean() > 0.9  # the comparison below is not vacuous
    np.testing.assert_array_equal(np.asarray(label)[clear], expected[clear])


@pytest.mark.parametrize("n", [1, 7, 300])
def test_onnxruntime_matches_fastnn_on_held_out_images(trained, tmp_path, n):
    net, X_held = trained
    path = export_onnx(net, tmp_path / "model.onnx")
    label, probs = _run(path, X_held[:n])
    assert label.shape == (n,) and label.dtype == np.int64
    _assert_agrees(net, label, probs, X_held[:n])


def test_raw_pixel_graph_folds_the_scaling_into_the_first_layer(trained, tmp_path):
    net, X_held = trained
    X = np.round(X_held * 255) / np.float32(255)  # images with whole-number pixels, as MNIST's
    X = X.astype(np.float32)
    path = export_onnx(net, tmp_path / "raw.onnx", raw_pixels=True)
    label, probs = _run(path, X * np.float32(255))
    _assert_agrees(net, label, probs, X)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["input_scale"] == "raw_0_255"
    assert len(onnx.load(str(path)).graph.node) == len(onnx.load(str(export_onnx(net, tmp_path / "n.onnx"))).graph.node)


def test_the_model_carries_its_labels_version_and_a_dynamic_batch(trained, tmp_path):
    net, _ = trained
    model = onnx.load(str(export_onnx(net, tmp_path / "m.onnx")))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["fastnn_version"] == fastnn.__version__
    assert props["input_scale"] == "normalized_0_1"
    assert json.loads(props["classes"]) == list(range(10))
    assert json.loads(props["shape"]) == [784, 32, 10]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N" and not batch.HasField("dim_value")
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]


@pytest.mark.parametrize("classes", [np.array(["cat", "dög", "emu"]), np.array([-1.5, 0.25, 7.0]),
                                     np.array([3, 10, 42]), np.array([True, False, True])])
def test_models_with_other_features_and_labels_export_too(tmp_path, classes):
    rng = np.random.default_rng(0)
    X = rng.random((90, 13), dtype=np.float32)
    y = rng.integers(0, 3, 90)
    net, _ = train(X, y, TrainConfig(hidden=5, epochs=2, batch_size=16, lr=0.5))
    net = Network(net.W1, net.b1, net.W2, net.b2, classes=classes)
    label, probs = _run(export_onnx(net, tmp_path / "other.onnx"), X)
    as_text = classes.dtype.kind in "Ub"  # labels that are not numbers come back as their text
    if as_text:
        net = Network(net.W1, net.b1, net.W2, net.b2, classes=classes.astype(str))
    _assert_agrees(net, label, probs, X)
    assert label.dtype.kind == ("O" if as_text else classes.dtype.kind)


def test_labels_that_cannot_be_exported_or_a_broken_network_are_one_clear_error(tmp_path):
    rng = np.random.default_rng(1)
    W1, b1 = rng.random((6, 4), dtype=np.float32), np.zeros(4, np.float32)
    W2, b2 = rng.random((4, 2), dtype=np.float32), np.zeros(2, np.float32)
    with pytest.raises(FastnnError, match="NaN or infinite"):
        export_onnx(Network(W1, b1, W2, b2, classes=np.array([0.5, np.nan])), tmp_path / "nan.onnx")
    broken = Network(W1, b1, W2, b2)
    broken.b1 = b1[:2]
    with pytest.raises(FastnnError, match="do not fit together"):
        export_onnx(broken, tmp_path / "broken.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_mlpclassifier_with_string_labels_exports(tmp_path):
    pytest.importorskip("sklearn", reason="MLPClassifier needs scikit-learn")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = fastnn.MLPClassifier(hidden=16, max_iter=5, random_state=0).fit(X / 16.0, names[y])
    path = tmp_path / "clf.npz"
    fastnn.save_network(clf.network_, path)  # network_.classes holds the string labels
    net, _ = fastnn.load_network(path)
    label, _ = _run(export_onnx(net, tmp_path / "clf.onnx"), (X / 16.0).astype(np.float32))
    assert (label == clf.predict(X / 16.0)).mean() > 0.99


def test_the_command_exports_a_model_file_and_refuses_a_bad_one(trained, tmp_path, capsys):
    net, X_held = trained
    fastnn.save_network(net, tmp_path / "model.npz")
    assert main([str(tmp_path / "model.npz"), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    label, probs = _run(tmp_path / "m.onnx", X_held)
    _assert_agrees(net, label, probs, X_held)

    (tmp_path / "bad.npz").write_bytes(b"not a model")
    assert main([str(tmp_path / "bad.npz"), "-o", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "bad.onnx").exists()


def test_an_unwritable_destination_is_one_clear_error_and_leaves_nothing(trained, tmp_path):
    net, _ = trained
    with pytest.raises(FastnnError, match="cannot write"):
        export_onnx(net, tmp_path / "no-such-folder" / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_without_the_onnx_package_the_error_says_what_to_install(trained, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(FastnnError, match="pip install"):
        to_onnx(trained[0])


def test_the_script_runs_from_a_checkout(trained, tmp_path):
    net, _ = trained
    fastnn.save_network(net, tmp_path / "model.npz")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "export.py"), str(tmp_path / "model.npz"),
                             "-o", str(tmp_path / "s.onnx"), "--raw-pixels"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.onnx").stat().st_size > 4 * net.W1.size
