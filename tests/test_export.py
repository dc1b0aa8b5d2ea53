"""ONNX export: onnxruntime on the exported file against fastnn's own outputs, for every depth,
activation, head and dtype.

Tolerances.  The graph runs the same products as fastnn, in onnxruntime's
summation order (and, for raw pixels, with ``coefs[0] / 255`` folded in: one
more rounding per weight), so the two differ by a few roundings of each layer's
sums.  Over every case below the largest difference measured, relative to the
outputs' scale ``max(1, max |output|)``, was 1.5e-6 in float32 (eps 1.2e-7:
~13 roundings) and 2e-15 in float64; we allow 1e-5 and 1e-12, about 7x and
500x the measured worst.  Labels must agree exactly wherever the rule's margin
(the gap between the two largest logits, or ``|z|`` for ``z > 0``) exceeds what
those roundings can move, and the tests check that most rows have that margin.
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
from fastnn.activations import ACTIVATIONS
from fastnn.cli.export import main
from fastnn.config import TrainConfig
from fastnn.export import export_onnx, outputs, to_onnx
from fastnn.network import Network, init_network
from fastnn.training import train

from conftest import prototype_data

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install -e '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="running exported models needs onnxruntime (pip install -e '.[onnx]')")

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
ROOT = Path(__file__).resolve().parent.parent
HEADS = [("softmax", 10), ("logistic", 1), ("logistic", 4), ("identity", 3), ("exp", 3)]


@pytest.fixture(scope="module")
def trained():
    """A network trained on synthetic digits, and a held-out slice it never saw."""
    X, y = prototype_data(n=1500, noise=0.6)
    net, _ = train(X[:1200], y[:1200], TrainConfig(hidden=(32,), epochs=3, batch_size=50, lr=0.2))
    return net, X[1200:]


def random_network(hidden, activation="relu", head="softmax", n_outputs=10, dtype=np.float32, d=784, seed=1):
    """A network with random weights and biases (``init_network``'s, biases drawn too)."""
    net = init_network(d, hidden, n_outputs, seed, activation=activation, head=head, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for b in net.intercepts:
        b[...] = 0.1 * rng.standard_normal(b.shape)
    return net


def run(model_or_path, X, head="softmax") -> dict:
    """The graph's outputs by name, run by onnxruntime on ``X``."""
    source = str(model_or_path) if isinstance(model_or_path, Path) else model_or_path.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = outputs(head)
    return dict(zip(names, session.run(list(names), {"pixels": X})))


def assert_agrees(net: Network, got: dict, X) -> float:
    """onnxruntime's outputs against fastnn's (see the module for the tolerance); returns the
    largest relative difference."""
    ref = net.predict_proba(X, "numpy")
    name = outputs(net.head)[-1]
    values = got[name]
    assert values.shape == ref.shape and values.dtype == net.dtype
    scale = max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(values.astype(np.float64) - ref).max()) / scale
    assert diff <= TOL[net.dtype], diff
    if "label" not in got:
        assert net.head in ("identity", "exp")
        return diff
    # A label can differ only where the raw outputs z sit within the two's difference of the
    # rule's boundary; 10x the tolerance on z's scale is a margin no rounding crosses.
    z = net.raw(X, "numpy").astype(np.float64)
    margin = 10 * TOL[net.dtype] * max(1.0, float(np.abs(z).max()))
    label = np.asarray(got["label"])
    if net.head == "softmax":
        top2 = np.sort(z, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > margin
        expected = np.asarray(net.classes)[net.predict(X, "numpy")]
    else:
        clear = np.abs(z) > margin  # each output's own rule, z > 0
        hits = net.predict(X, "numpy")
        if net.n_outputs == 1:
            clear, expected = clear[:, 0], np.asarray(net.classes)[hits]
        else:
            expected = hits
        assert label.shape == expected.shape
    assert clear.mean() > 0.9  # the comparison below is not vacuous
    np.testing.assert_array_equal(label[clear], expected[clear])
    return diff


def inputs(n=200, d=784, dtype=np.float32, seed=3):
    return np.random.default_rng(seed).random((n, d)).astype(dtype)


# --- every depth, activation, head and dtype ------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("head, n_outputs", HEADS, ids=["softmax", "binary", "multilabel", "identity", "exp"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (48,), (64, 32, 16)], ids=["no-hidden", "one", "three"])
def test_onnxruntime_matches_fastnn_for_every_shape(hidden, activation, head, n_outputs, dtype):
    net = random_network(hidden, activation, head, n_outputs, dtype)
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    X = inputs(dtype=dtype)
    got = run(model, X, head)
    assert list(got) == list(outputs(head))
    assert_agrees(net, got, X)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Gemm") == len(hidden) + 1
    assert ops.count(
        {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": "Identity"}[activation]
    ) >= len(hidden)


@pytest.mark.parametrize("n", [1, 7, 300])
def test_onnxruntime_matches_fastnn_on_held_out_images(trained, tmp_path, n):
    net, X_held = trained
    path = export_onnx(net, tmp_path / "model.onnx")
    got = run(path, X_held[:n])
    assert got["label"].shape == (n,) and got["label"].dtype == np.int64
    if n == 300:  # the label check needs rows with a margin; one row may not have one
        assert_agrees(net, got, X_held[:n])
    else:
        ref = net.predict_proba(X_held[:n], "numpy")
        assert np.abs(got["probabilities"] - ref).max() <= TOL[net.dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_raw_pixel_graph_folds_the_scaling_into_the_first_layer(tmp_path, dtype):
    net = random_network((40, 20), "tanh", dtype=dtype)
    raw = np.round(inputs(dtype=np.float64) * 255)  # whole-number pixels, as MNIST's
    path = export_onnx(net, tmp_path / "raw.onnx", raw_pixels=True)
    assert_agrees(net, run(path, raw.astype(dtype)), (raw / 255).astype(dtype))
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["input_scale"] == "raw_0_255"
    plain = to_onnx(net)
    assert [n.op_type for n in model.graph.node] == [n.op_type for n in plain.graph.node]  # no extra operator
    first = onnx.numpy_helper.to_array(model.graph.initializer[0])
    np.testing.assert_array_equal(first, net.coefs[0] / dtype(255))


def test_the_model_carries_its_shape_labels_version_and_a_dynamic_batch(tmp_path):
    net = random_network((16, 8), "tanh", dtype=np.float64)
    model = onnx.load(str(export_onnx(net, tmp_path / "m.onnx")))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["fastnn_version"] == fastnn.__version__
    assert props["input_scale"] == "normalized_0_1"
    assert json.loads(props["sizes"]) == [784, 16, 8, 10]
    assert (props["activation"], props["head"], props["dtype"]) == ("tanh", "softmax", "float64")
    assert json.loads(props["classes"]) == list(range(10))
    assert json.loads(props["class_names"]) == [str(k) for k in range(10)]
    assert "784-16-8-10 tanh/softmax" in model.doc_string
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N" and not batch.HasField("dim_value")
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]


@pytest.mark.parametrize(
    "head, n_outputs, names",
    [
        ("softmax", 3, ["label", "probabilities"]),
        ("logistic", 1, ["label", "probabilities"]),
        ("logistic", 3, ["label", "probabilities"]),
        ("identity", 2, ["predictions"]),
        ("exp", 2, ["predictions"]),
    ],
)
def test_each_head_has_its_outputs(head, n_outputs, names):
    model = to_onnx(random_network((5,), head=head, n_outputs=n_outputs, d=6))
    assert [o.name for o in model.graph.output] == names == list(outputs(head))


@pytest.mark.parametrize(
    "classes",
    [
        np.array(["cat", "dög", "emu"]),
        np.array([-1.5, 0.25, 7.0]),
        np.array([3, 10, 42]),
        np.array([True, False, True]),
    ],
)
def test_models_with_other_features_and_labels_export_too(tmp_path, classes):
    X = inputs(90, d=13)
    net = Network.from_params(random_network((5,), n_outputs=3, d=13).params, classes=classes)
    got = run(export_onnx(net, tmp_path / "other.onnx"), X)
    as_text = classes.dtype.kind in "Ub"  # labels that are not numbers come back as their text
    if as_text:
        net = Network.from_params(net.params, classes=classes.astype(str))
    assert_agrees(net, got, X)
    assert got["label"].dtype.kind == ("O" if as_text else classes.dtype.kind)


@pytest.mark.parametrize("classes", [np.array(["no", "yes"]), np.array([0, 1])])
def test_a_binary_logistic_network_labels_by_the_sign_of_its_output(classes):
    net = random_network((8,), "logistic", "logistic", 1, d=10)
    net = Network.from_params(net.params, "logistic", "logistic", classes=classes)
    X = inputs(400, d=10)
    net.intercepts[-1][0] -= np.median(net.raw(X, "numpy"))  # half the rows on each side of 0
    got = run(to_onnx(net), X, "logistic")
    assert set(got["label"].tolist()) == set(classes.tolist())  # both classes occur: not vacuous
    assert_agrees(net, got, X)


def test_a_model_with_string_labels_exports_the_same_after_a_save_and_load(tmp_path):
    net = Network.from_params(random_network((6,), n_outputs=3, d=9).params, classes=np.array(["zero", "one", "two"]))
    fastnn.save_network(net, tmp_path / "m.npz")
    loaded, _ = fastnn.load_network(tmp_path / "m.npz")
    X = inputs(50, d=9)
    before, after = run(to_onnx(net), X), run(to_onnx(loaded), X)
    np.testing.assert_array_equal(before["label"], after["label"])
    np.testing.assert_array_equal(before["probabilities"], after["probabilities"])


def test_what_cannot_be_exported_is_one_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    import fastnn.export as export

    net = random_network((4,), n_outputs=2, d=6)
    with pytest.raises(FastnnError, match="NaN or infinite"):
        export_onnx(Network.from_params(net.params, classes=np.array([0.5, np.nan])), tmp_path / "nan.onnx")
    broken = net.copy()
    broken.intercepts[1][0] = np.inf
    with pytest.raises(FastnnError, match="layer 1 holds NaN or infinite parameters"):
        export_onnx(broken, tmp_path / "inf.onnx")
    with pytest.raises(FastnnError, match="expected a fastnn Network"):
        export_onnx("model.npz", tmp_path / "str.onnx")
    monkeypatch.setattr(export, "_MAX_PROTO_BYTES", 100)
    with pytest.raises(FastnnError, match="over the 2 GB an ONNX file can hold"):
        export_onnx(net, tmp_path / "big.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_command_exports_a_model_file_and_refuses_a_bad_one(tmp_path, capsys):
    net = random_network((20, 10), "tanh")
    fastnn.save_network(net, tmp_path / "model.npz")
    assert main([str(tmp_path / "model.npz"), "-o", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"wrote {tmp_path / 'm.onnx'} (784-20-10-10 tanh/softmax, float32, input normalised features, opset 17)\n"
    )
    X = inputs()
    assert_agrees(net, run(tmp_path / "m.onnx", X), X)

    (tmp_path / "bad.npz").write_bytes(b"not a model")
    assert main([str(tmp_path / "bad.npz"), "-o", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "bad.onnx").exists()


def test_an_unwritable_destination_is_one_clear_error_and_leaves_nothing(tmp_path):
    with pytest.raises(FastnnError, match="cannot write"):
        export_onnx(random_network((3,), d=5), tmp_path / "no-such-folder" / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_without_the_onnx_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(FastnnError, match="pip install"):
        to_onnx(random_network((3,), d=5))


def test_the_script_runs_from_a_checkout(tmp_path):
    net = random_network((12,))
    fastnn.save_network(net, tmp_path / "model.npz")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "export.py"),
            str(tmp_path / "model.npz"),
            "-o",
            str(tmp_path / "s.onnx"),
            "--raw-pixels",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    raw = np.round(inputs(50, dtype=np.float64) * 255)
    assert_agrees(net, run(tmp_path / "s.onnx", raw.astype(np.float32)), (raw / 255).astype(np.float32))
