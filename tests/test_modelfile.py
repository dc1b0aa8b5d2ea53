"""Tests for fastnn.modelfile: the safe ``.npz`` + JSON model format (version 2, reading version 1).

A saved network of any depth, activation, head and dtype must come back bit for
bit; a file fastnn 0.1 wrote must still load and predict exactly as it did; and
every file that is not an intact fastnn model (truncated, tampered, foreign,
newer, hand-crafted with wrong shapes or metadata, carrying a pickle, or hostile:
thousands of members, huge declared shapes, absurd layer counts) must be refused
with one :class:`FastnnError` naming the file and the problem, never another
exception, and without allocating what the file asks for.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastnn._atomic
import fastnn.modelfile as modelfile
from fastnn.activations import ACTIVATIONS
from fastnn.errors import FastnnError
from fastnn.modelfile import (
    FORMAT,
    MAX_LAYERS,
    MAX_MEMBERS,
    VERSION,
    _digest,
    _param_names,
    load_network,
    network_summary,
    save_network,
)
from fastnn.network import Network, init_network

D, H, C = 784, 12, 10


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def make_network(
    seed: int = 0,
    hidden=(H,),
    n_outputs: int = C,
    *,
    activation="relu",
    head="softmax",
    dtype=np.float32,
    classes=None,
    class_names=None,
    d: int = D,
) -> Network:
    """A network with non-trivial values in every parameter (biases too)."""
    net = init_network(
        d,
        hidden,
        n_outputs,
        seed,
        activation=activation,
        head=head,
        dtype=dtype,
        classes=classes,
        class_names=class_names,
    )
    rng = np.random.default_rng(seed + 100)
    for b in net.intercepts:
        b[...] = rng.standard_normal(b.shape)
    return net


def inputs(n: int = 64, seed: int = 1, d: int = D) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def good_parts(net: Network) -> tuple[dict, dict]:
    """The arrays and the metadata save_network writes, for hand-crafting variants."""
    names = _param_names(len(net.coefs))
    arrays = dict(zip(names, (a for pair in net.params.blocks() for a in pair)))
    arrays["classes"] = np.asarray(net.classes)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "sizes": list(net.sizes),
        "activation": net.activation,
        "head": net.head,
        "dtype": net.dtype.name,
        "class_names": list(net.class_names),
        "class_labels": None,
        "sha256": _digest(arrays, names),
        "metadata": {},
    }
    return arrays, meta


def redigest(arrays: dict, meta: dict) -> None:
    """Give ``meta`` the checksum of ``arrays``: a deliberately crafted file, not a damaged one."""
    meta["sha256"] = _digest(arrays, _param_names(len(meta["sizes"]) - 1))


def write_npz(path: Path, arrays: dict, meta=None, raw_meta: bytes | None = None) -> Path:
    """Write an npz by hand; ``meta`` is JSON-encoded (or ``raw_meta`` stored verbatim)."""
    extra = {}
    if raw_meta is not None:
        extra["meta"] = np.frombuffer(raw_meta, np.uint8)
    elif meta is not None:
        extra["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, **extra)
    return path


def refused(path, *phrases: str) -> str:
    """Assert load_network refuses ``path`` with a one-line FastnnError naming the file and each phrase."""
    with pytest.raises(FastnnError) as info:
        load_network(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    for phrase in phrases:
        assert phrase.lower() in message.lower(), message
    return message


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- version 1, as fastnn 0.1 wrote it ---------------------------------------------


def v1_digest(arrays: dict) -> str:
    """fastnn 0.1's checksum, written out from its definition (not fastnn's code): SHA-256 over
    ``W1, b1, W2, b2, classes``, each as ``name:dtype.str:shape`` then its bytes."""
    h = hashlib.sha256()
    for name in ("W1", "b1", "W2", "b2", "classes"):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def v1_parts(seed: int = 0, d: int = D, h: int = H, c: int = C) -> tuple[dict, dict]:
    """A fastnn 0.1 model's members and metadata: ``W1 (d, h)``, ``b1``, ``W2 (h, c)``, ``b2``, float32."""
    rng = np.random.default_rng(seed)
    arrays = {
        "W1": (rng.standard_normal((d, h)) * np.sqrt(2 / d)).astype(np.float32),
        "b1": rng.standard_normal(h).astype(np.float32),
        "W2": (rng.standard_normal((h, c)) * np.sqrt(2 / h)).astype(np.float32),
        "b2": rng.standard_normal(c).astype(np.float32),
        "classes": np.arange(c),
    }
    meta = {
        "format": FORMAT,
        "version": 1,
        "n_features": d,
        "hidden": h,
        "n_classes": c,
        "class_names": [str(k) for k in range(c)],
        "class_labels": None,
        "sha256": v1_digest(arrays),
        "metadata": {"dataset": "mnist", "config": {"hidden": h}},
    }
    return arrays, meta


def write_v1(path: Path, arrays: dict, meta: dict) -> Path:
    """Write a version 1 file as fastnn 0.1's save_network did: ``np.savez`` of the five arrays and meta."""
    buf = io.BytesIO()
    np.savez(buf, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    path.write_bytes(buf.getvalue())
    return path


def v1_reference_proba(arrays: dict, X: np.ndarray) -> np.ndarray:
    """fastnn 0.1's network in float64: softmax(relu(X W1 + b1) W2 + b2)."""
    z = np.maximum(X.astype(np.float64) @ arrays["W1"] + arrays["b1"], 0) @ arrays["W2"] + arrays["b2"]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------------


def assert_same_network(loaded: Network, net: Network) -> None:
    assert loaded.describe() == net.describe() and loaded.dtype == net.dtype
    for a, b in zip(net.coefs + net.intercepts, loaded.coefs + loaded.intercepts):
        assert b.dtype == net.dtype and b.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.classes, net.classes)
    assert loaded.class_names == net.class_names


def test_save_load_round_trip_gives_identical_arrays_metadata_and_predictions(tmp_path):
    net = make_network()
    metadata = {"dataset": "mnist", "config": {"hidden": [H], "lr": 0.2}, "backend": "numba"}
    path = save_network(net, tmp_path / "model.npz", metadata)
    assert path == tmp_path / "model.npz"

    loaded, meta = load_network(path)
    assert_same_network(loaded, net)
    assert meta == metadata
    X = inputs()
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize("hidden", [(), (7,), (64, 32), (40, 30, 20, 10, 5)], ids=lambda h: f"hidden{list(h)}")
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_networks_of_any_depth_and_activation_round_trip(tmp_path, hidden, activation):
    net = make_network(3, hidden, activation=activation)
    loaded, _ = load_network(save_network(net, tmp_path / "deep.npz"))
    assert_same_network(loaded, net)
    assert loaded.hidden == tuple(hidden) and loaded.activation == activation
    X = inputs()
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize(
    "head, n_outputs, classes",
    [
        ("softmax", 4, ["a", "b", "c", "d"]),
        ("logistic", 1, ["no", "yes"]),
        ("logistic", 3, [10, 20, 30]),
        ("identity", 2, None),
        ("exp", 3, None),
    ],
    ids=["softmax", "binary", "multilabel", "identity", "exp"],
)
def test_every_head_round_trips_with_its_classes(tmp_path, head, n_outputs, classes):
    net = make_network(4, (9, 5), n_outputs, activation="tanh", head=head, classes=classes, d=20)
    loaded, _ = load_network(save_network(net, tmp_path / "head.npz"))
    assert_same_network(loaded, net)
    assert loaded.head == head and loaded.n_classes == (0 if classes is None else len(classes))
    X = inputs(d=20)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_float64_networks_round_trip_as_float64(tmp_path):
    net = make_network(5, (30, 20), dtype=np.float64)
    for b in net.intercepts:  # values float32 cannot hold: a lossy save would show
        b += 1e-12
    loaded, _ = load_network(save_network(net, tmp_path / "f64.npz"))
    assert_same_network(loaded, net)
    assert loaded.dtype == np.float64 and loaded.intercepts[0][0] == net.intercepts[0][0]
    with np.load(tmp_path / "f64.npz") as npz:
        assert npz["coef_0"].dtype == np.float64
        assert json.loads(npz["meta"].tobytes())["dtype"] == "float64"


def test_model_file_is_an_npz_without_pickles_recording_its_shape(tmp_path):
    net = make_network(0, (16, 8), activation="tanh")
    path = save_network(net, tmp_path / "model.npz")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(
            f"{k}.npy"
            for k in ("coef_0", "intercept_0", "coef_1", "intercept_1", "coef_2", "intercept_2", "classes", "meta")
        )
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    with np.load(path, allow_pickle=False) as npz:  # would raise if any member were an object array
        meta = json.loads(npz["meta"].tobytes().decode())
    assert (meta["format"], meta["version"]) == (FORMAT, VERSION)
    assert (meta["sizes"], meta["activation"], meta["head"], meta["dtype"]) == (
        [D, 16, 8, C],
        "tanh",
        "softmax",
        "float32",
    )


def test_network_summary_is_the_shape_from_the_network_itself():
    summary = network_summary(make_network(0, (16, 8), 3, activation="logistic", dtype=np.float64))
    assert summary == {
        "sizes": [D, 16, 8, 3],
        "hidden": [16, 8],
        "activation": "logistic",
        "head": "softmax",
        "dtype": "float64",
    }
    assert json.loads(json.dumps(summary)) == summary


def test_string_class_labels_and_names_survive_a_round_trip(tmp_path):
    labels = ["cat", "dog", "bird"]
    names = ("Cat (felis)", "Dog", "Bird ✓")
    net = make_network(classes=labels, class_names=names, n_outputs=3)
    loaded, _ = load_network(save_network(net, tmp_path / "model.npz"))
    assert list(loaded.classes) == labels
    assert loaded.class_names == names
    X = inputs()
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_numeric_non_default_class_labels_survive_a_round_trip(tmp_path):
    net = make_network(classes=[3, 5, 7, 11], n_outputs=4)
    loaded, _ = load_network(save_network(net, tmp_path / "model.npz"))
    assert list(loaded.classes) == [3, 5, 7, 11]
    assert loaded.class_names == ("3", "5", "7", "11")


def test_saving_again_replaces_the_model(tmp_path):
    path = tmp_path / "model.npz"
    save_network(make_network(seed=0), path)
    second = make_network(seed=1, hidden=(5, 5))
    save_network(second, path)
    assert_same_network(load_network(path)[0], second)
    assert listing(tmp_path) == ["model.npz"]


def test_metadata_that_is_not_json_is_refused_at_save_and_nothing_is_written(tmp_path):
    with pytest.raises(FastnnError, match="metadata as JSON"):
        save_network(make_network(), tmp_path / "model.npz", {"when": object()})
    assert listing(tmp_path) == []


# ----------------------------------------------------------------------------
# version 1 files (fastnn 0.1)
# ----------------------------------------------------------------------------


def test_a_version_1_file_loads_as_the_relu_softmax_network_it_was(tmp_path):
    arrays, meta = v1_parts()
    net, metadata = load_network(write_v1(tmp_path / "v1.npz", arrays, meta))
    assert net.describe() == f"{D}-{H}-{C} relu/softmax" and net.dtype == np.float32
    for name, got in zip(("W1", "W2", "b1", "b2"), net.coefs + net.intercepts):
        np.testing.assert_array_equal(got, arrays[name])
    np.testing.assert_array_equal(net.classes, np.arange(C))
    assert net.class_names == tuple(meta["class_names"]) and metadata == meta["metadata"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_version_1_file_predicts_exactly_as_fastnn_0_1_computed(tmp_path, backend):
    arrays, meta = v1_parts(seed=1)
    net, _ = load_network(write_v1(tmp_path / "v1.npz", arrays, meta))
    X = inputs(300)
    # Bit for bit what a network of the same arrays computes, and within float32 rounding of
    # 0.1's definition evaluated in float64 (probabilities <= 1, 784-term sums: 1e-5 is ~100 ulps).
    same = Network([arrays["W1"], arrays["W2"]], [arrays["b1"], arrays["b2"]])
    np.testing.assert_array_equal(net.predict_proba(X, backend), same.predict_proba(X, backend))
    reference = v1_reference_proba(arrays, X)
    np.testing.assert_allclose(net.predict_proba(X, backend), reference, atol=1e-5, rtol=0)
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(net.predict(X, backend)[clear], reference.argmax(axis=1)[clear])


def test_a_version_1_file_with_string_labels_keeps_them(tmp_path):
    arrays, meta = v1_parts(c=3)
    meta.update(class_names=["Cat", "Dog", "Emu"], class_labels=["cat", "dog", "emu"])
    net, _ = load_network(write_v1(tmp_path / "v1.npz", arrays, meta))
    assert list(net.classes) == ["cat", "dog", "emu"] and net.class_names == ("Cat", "Dog", "Emu")


def test_a_version_1_file_saved_again_becomes_version_2_with_the_same_predictions(tmp_path):
    arrays, meta = v1_parts(seed=2)
    old, metadata = load_network(write_v1(tmp_path / "v1.npz", arrays, meta))
    new, again = load_network(save_network(old, tmp_path / "v2.npz", metadata))
    with np.load(tmp_path / "v2.npz") as npz:
        assert json.loads(npz["meta"].tobytes())["version"] == VERSION
    assert again == metadata
    np.testing.assert_array_equal(new.predict_proba(inputs()), old.predict_proba(inputs()))


def test_a_tampered_version_1_file_fails_its_checksum(tmp_path):
    arrays, meta = v1_parts()
    arrays["W2"] = arrays["W2"].copy()
    arrays["W2"][3, 4] += np.float32(1e-3)
    refused(write_v1(tmp_path / "v1.npz", arrays, meta), "checksum mismatch")


@pytest.mark.parametrize(
    "key, value, phrase",
    [
        ("hidden", None, "lacks 'hidden'"),
        ("n_features", 0, "'n_features' must be a positive integer"),
        ("hidden", [12], "'hidden' must be a positive integer"),
        ("n_classes", True, "n_classes"),
    ],
)
def test_a_version_1_file_with_bad_shape_metadata_is_refused(tmp_path, key, value, phrase):
    arrays, meta = v1_parts()
    if value is None:
        del meta[key]
    else:
        meta[key] = value
    refused(write_v1(tmp_path / "v1.npz", arrays, meta), phrase)


def test_a_version_1_file_whose_weights_disagree_with_its_metadata_is_refused(tmp_path):
    arrays, meta = v1_parts()
    meta["hidden"] = H + 1
    refused(write_v1(tmp_path / "v1.npz", arrays, meta), f"W1 has shape ({D}, {H}), expected ({D}, {H + 1})")


# ----------------------------------------------------------------------------
# files that are not intact fastnn models
# ----------------------------------------------------------------------------


def test_missing_model_file(tmp_path):
    refused(tmp_path / "nope.npz", "not found")


@pytest.mark.parametrize("keep", [0, 1, 30, 0.5, -22, -1], ids=lambda k: f"keep{k}")
def test_truncated_model_file(tmp_path, keep):
    raw = save_network(make_network(), tmp_path / "model.npz").read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(raw) + keep)
    damaged = tmp_path / "truncated.npz"
    damaged.write_bytes(raw[:n])
    refused(damaged, "not a readable fastnn model file")


def test_flipped_byte_in_a_weight_is_detected(tmp_path):
    net = make_network()
    raw = bytearray(save_network(net, tmp_path / "model.npz").read_bytes())
    at = bytes(raw).find(net.coefs[0].tobytes()[:256])
    assert at > 0
    raw[at + 1000] ^= 0x01  # one bit of one weight
    damaged = tmp_path / "tampered.npz"
    damaged.write_bytes(bytes(raw))
    message = refused(damaged)
    # The zip member's CRC catches it before the model's own SHA-256 does.
    assert "coef_0" in message and ("crc" in message.lower() or "checksum" in message.lower())


def test_modified_weight_in_a_rewritten_file_fails_the_checksum(tmp_path):
    """A file rewritten with a changed weight but the old metadata (valid zip, valid CRCs)."""
    arrays, meta = good_parts(make_network(hidden=(8, 6)))
    arrays["coef_1"] = arrays["coef_1"].copy()
    arrays["coef_1"][2, 3] += np.float32(1e-3)
    refused(write_npz(tmp_path / "tampered.npz", arrays, meta), "checksum mismatch")


def test_changed_class_array_fails_the_checksum(tmp_path):
    arrays, meta = good_parts(make_network())
    arrays["classes"] = arrays["classes"][::-1].copy()
    refused(write_npz(tmp_path / "tampered.npz", arrays, meta), "checksum mismatch")


@pytest.mark.parametrize("version", [VERSION + 1, 0, True, 2.0, "2", None])
def test_other_format_versions_are_refused(tmp_path, version):
    arrays, meta = good_parts(make_network())
    meta["version"] = version
    refused(write_npz(tmp_path / "future.npz", arrays, meta), f"version {version!r}", "reads versions 1, 2")


def test_other_format_name_is_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    meta["format"] = "someone-elses-model"
    refused(write_npz(tmp_path / "other.npz", arrays, meta), "not a fastnn model file", "someone-elses-model")


@pytest.mark.parametrize(
    "name, shape",
    [
        ("coef_0", (D, H + 1)),
        ("intercept_0", (H + 1,)),
        ("coef_1", (H, C + 1)),
        ("intercept_1", (1, C)),
        ("classes", (C + 1,)),
    ],
)
def test_mismatched_shapes_are_refused(tmp_path, name, shape):
    arrays, meta = good_parts(make_network())
    arrays[name] = np.zeros(shape, arrays[name].dtype)
    redigest(arrays, meta)  # a consistent checksum: only the shape is wrong
    refused(write_npz(tmp_path / "shapes.npz", arrays, meta), f"{name} has shape {shape}")


def test_a_layer_missing_from_the_file_is_named(tmp_path):
    arrays, meta = good_parts(make_network(hidden=(8, 6)))
    del arrays["intercept_2"]
    refused(write_npz(tmp_path / "short.npz", arrays, meta), "missing intercept_2")


def test_weights_of_another_dtype_than_declared_are_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    arrays["coef_1"] = arrays["coef_1"].astype(np.float64)
    redigest(arrays, meta)
    refused(write_npz(tmp_path / "f64.npz", arrays, meta), "coef_1 has dtype float64, expected float32")


def test_non_numeric_weights_are_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    arrays["coef_0"] = np.full((D, H), "x")
    redigest(arrays, meta)
    refused(write_npz(tmp_path / "m.npz", arrays, meta), "coef_0 has dtype")


def test_non_numeric_classes_are_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    arrays["classes"] = np.array(list("abcdefghij"))
    redigest(arrays, meta)
    refused(write_npz(tmp_path / "m.npz", arrays, meta), "classes has dtype")


def test_nan_weights_with_a_consistent_checksum_are_refused(tmp_path):
    arrays, meta = good_parts(make_network(hidden=(8,)))
    arrays["intercept_1"] = arrays["intercept_1"].copy()
    arrays["intercept_1"][4] = np.nan
    redigest(arrays, meta)
    refused(write_npz(tmp_path / "nan.npz", arrays, meta), "intercept_1 holds NaN or infinite values")


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.zeros((3, 3)), bias=np.zeros(3))
    refused(path, "not a fastnn model file", "missing meta")


def test_npz_with_a_pickled_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    arrays, _ = good_parts(make_network())
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays, meta=np.array([Payload()], dtype=object))
    refused(path, "not a readable fastnn model file", "pickles")
    assert not marker.exists()


def test_plain_pickle_file_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"W1": Payload()}))
    refused(path, "not a readable fastnn model file")
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am not a model\n" * 20, b"PK\x03\x04garbage"],
    ids=["empty", "text", "zip-magic-garbage"],
)
def test_non_model_bytes_are_refused(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    refused(path, "not a readable fastnn model file")


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "model.npz").mkdir()
    refused(tmp_path / "model.npz", "folder")


def test_single_npy_array_file_is_refused_unread(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as fh:  # a header declaring 160 GB: it must not be read, let alone allocated
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (200_000, 200_000)})
    refused(path, "single NumPy array")


def test_a_compressed_model_file_still_loads(tmp_path):
    """np.savez_compressed writes deflated members; the reader bounds them by their declared size."""
    net = make_network(hidden=(8,))
    arrays, meta = good_parts(net)
    path = tmp_path / "deflated.npz"
    np.savez_compressed(path, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    assert_same_network(load_network(path)[0], net)


def test_metadata_that_is_not_json_is_refused(tmp_path):
    arrays, _ = good_parts(make_network())
    refused(write_npz(tmp_path / "m.npz", arrays, raw_meta=b"\xff{not json"), "metadata", "JSON")


def test_deeply_nested_metadata_is_refused_not_a_recursion_error(tmp_path):
    arrays, _ = good_parts(make_network())
    refused(write_npz(tmp_path / "m.npz", arrays, raw_meta=b"[" * 200_000), "not valid JSON")


@pytest.mark.parametrize("meta_json", [b"[1, 2, 3]", b'"fastnn-model"', b"null"], ids=["list", "string", "null"])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, meta_json):
    arrays, _ = good_parts(make_network())
    refused(write_npz(tmp_path / "m.npz", arrays, raw_meta=meta_json), "metadata")


@pytest.mark.parametrize("key", ["sizes", "activation", "head", "dtype", "class_names", "metadata", "sha256"])
def test_metadata_missing_a_required_key_is_refused(tmp_path, key):
    arrays, meta = good_parts(make_network())
    del meta[key]
    refused(write_npz(tmp_path / "m.npz", arrays, meta), f"lacks {key!r}")


@pytest.mark.parametrize(
    "key, value",
    [
        ("sizes", [D]),
        ("sizes", [D, 0, C]),
        ("sizes", [D, 12.0, C]),
        ("sizes", f"{D}-{H}-{C}"),
        ("activation", "swish"),
        ("head", "softmax2"),
        ("dtype", "float16"),
        ("class_names", "0123456789"),
        ("class_labels", ["a", "b"]),
        ("metadata", []),
        ("sha256", 7),
    ],
)
def test_metadata_with_a_bad_value_is_refused_naming_the_key(tmp_path, key, value):
    arrays, meta = good_parts(make_network())
    meta[key] = value
    refused(write_npz(tmp_path / "m.npz", arrays, meta), f"{key!r} must be")


def test_class_names_that_do_not_fit_the_outputs_are_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    meta["class_names"] = ["only", "three", "names"]
    arrays["classes"] = np.arange(3)
    redigest(arrays, meta)
    refused(write_npz(tmp_path / "m.npz", arrays, meta), "needs 10 classes")


# --- hostile files: refused before their data are read ----------------------------------


def _rewrite_member(src: Path, dst: Path, member: str, shape, pad: int = 64, descr: str = "<f4") -> None:
    """Copy a model file, replacing ``member``'s .npy with a header declaring ``shape`` and ``pad`` bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == f"{member}.npy":
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
                data = buf.getvalue() + b"\0" * pad
            zout.writestr(info.filename, data)


def refused_within(path, limit_bytes: int, *phrases: str) -> str:
    """:func:`refused`, with the peak of Python allocations while refusing under ``limit_bytes``."""
    tracemalloc.start()
    try:
        message = refused(path, *phrases)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit_bytes, peak
    return message


def test_a_member_declaring_a_huge_array_is_refused_without_allocating_it(tmp_path):
    save_network(make_network(hidden=(16,)), tmp_path / "good.npz")
    _rewrite_member(tmp_path / "good.npz", tmp_path / "evil.npz", "coef_0", (200_000, 200_000))  # 160 GB
    refused_within(tmp_path / "evil.npz", 8 * 2**20, "'coef_0' declares float32 (200000, 200000)")


def test_a_member_whose_declared_shape_disagrees_with_the_metadata_is_refused(tmp_path):
    """Consistent with its own bytes, but not with the network the metadata describes."""
    save_network(make_network(hidden=(16,)), tmp_path / "good.npz")
    _rewrite_member(tmp_path / "good.npz", tmp_path / "odd.npz", "coef_1", (16, 11), pad=16 * 11 * 4)
    refused(tmp_path / "odd.npz", "coef_1 has shape (16, 11), expected (16, 10)")


def test_a_member_over_the_size_ceiling_is_refused_before_it_is_read(tmp_path, monkeypatch):
    save_network(make_network(hidden=(16,)), tmp_path / "good.npz")
    monkeypatch.setattr(modelfile, "MAX_ARRAY_BYTES", 1000)  # coef_0 is 784 * 16 * 4 = 50 KB
    refused(tmp_path / "good.npz", "'coef_0' declares", "over the limit of 1000")


def test_parameters_over_the_total_ceiling_are_refused_before_they_are_read(tmp_path, monkeypatch):
    save_network(make_network(hidden=(16, 16)), tmp_path / "good.npz")
    monkeypatch.setattr(modelfile, "MAX_MODEL_BYTES", 50_000)  # each array fits, all of them do not
    reads = record_reads(monkeypatch)
    refused(tmp_path / "good.npz", "over the limit of 50000")
    assert reads == ["meta"]


def record_reads(monkeypatch) -> list:
    """The names of the members load_network reads from now on, in order."""
    reads, read = [], modelfile._npz.Archive.read
    monkeypatch.setattr(modelfile._npz.Archive, "read", lambda self, name: reads.append(name) or read(self, name))
    return reads


def test_a_file_with_thousands_of_members_is_refused_from_its_directory(tmp_path):
    path = tmp_path / "many.npz"
    empty = io.BytesIO()
    np.save(empty, np.zeros(0, np.uint8))
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(20_000):
            zf.writestr(f"m{k}.npy", empty.getvalue())
    message = refused_within(path, 4 * 2**20, "20000 members", f"limit of {MAX_MEMBERS}")
    assert "over the limit" in message


def test_a_file_whose_end_record_understates_its_members_is_refused(tmp_path):
    """The end record claims 2 members; the directory holds 500: the directory is believed."""
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(500):
            zf.writestr(f"m{k}.npy", b"")
    raw = bytearray(path.read_bytes())
    at = raw.rfind(b"PK\x05\x06")
    raw[at + 8 : at + 12] = (2).to_bytes(2, "little") * 2
    path.write_bytes(bytes(raw))
    refused(path, "members", "over the limit")


def test_a_directory_over_its_size_bound_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(modelfile, "MAX_DIRECTORY_BYTES", 200)  # a 3-layer model's directory is ~600 bytes
    refused(save_network(make_network(hidden=(4, 4)), tmp_path / "m.npz"), "over the limit", "bytes")


def test_an_absurd_layer_count_is_refused_from_the_metadata(tmp_path):
    arrays, meta = good_parts(make_network())
    meta["sizes"] = [D] + [1] * 10_000 + [C]
    refused_within(
        write_npz(tmp_path / "deep.npz", arrays, meta),
        8 * 2**20,
        f"'sizes' must be a list of 2 to {MAX_LAYERS + 1} positive integers",
    )


def test_the_deepest_allowed_network_round_trips(tmp_path):
    net = make_network(hidden=(3,) * (MAX_LAYERS - 1), d=5, n_outputs=2, activation="tanh")
    assert len(net.coefs) == MAX_LAYERS
    assert_same_network(load_network(save_network(net, tmp_path / "deepest.npz"))[0], net)


def test_huge_widths_in_the_metadata_allocate_nothing(tmp_path, monkeypatch):
    """A small file whose metadata claims a 10^6 x 10^6 network: refused from the declared shapes."""
    arrays, meta = good_parts(make_network())
    meta["sizes"] = [1_000_000, 1_000_000, C]
    reads = record_reads(monkeypatch)
    refused_within(
        write_npz(tmp_path / "wide.npz", arrays, meta),
        8 * 2**20,
        "coef_0 has shape (784, 12), expected (1000000, 1000000)",
    )
    assert reads == ["meta"]


@pytest.mark.parametrize("extra", ["coef_0.npy", "notes.txt"])
def test_duplicate_and_foreign_members_are_refused(tmp_path, extra):
    path = save_network(make_network(), tmp_path / "m.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name we mean to write
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(extra, b"\x93NUMPY")
    refused(path, repr(extra), "not one .npy array")


def test_an_encrypted_member_is_refused(tmp_path):
    raw = bytearray(save_network(make_network(), tmp_path / "m.npz").read_bytes())
    at = raw.rfind(b"PK\x01\x02")  # the last directory entry: set its "encrypted" flag
    raw[at + 8] |= 0x01
    (tmp_path / "enc.npz").write_bytes(bytes(raw))
    refused(tmp_path / "enc.npz", "encrypted")


# ----------------------------------------------------------------------------
# saving where it cannot be written
# ----------------------------------------------------------------------------


def test_save_below_a_regular_file_raises_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(FastnnError, match="cannot write model file"):
        save_network(make_network(), blocker / "model.npz")
    assert listing(tmp_path) == ["not-a-folder"]
    assert blocker.read_text() == "x"


def test_save_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(FastnnError, match=r"cannot write model file .*No such file"):
        save_network(make_network(), tmp_path / "missing" / "model.npz")
    assert listing(tmp_path) == []


def test_save_over_a_folder_raises_and_leaves_no_temp_file(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(FastnnError, match="cannot write model file"):
        save_network(make_network(), tmp_path / "model.npz")
    assert listing(tmp_path) == ["model.npz"]
    assert listing(tmp_path / "model.npz") == []


def test_failed_write_keeps_the_old_model_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = make_network(seed=0)
    save_network(old, path)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fastnn._atomic.os, "replace", disk_full)
    with pytest.raises(FastnnError, match="No space left on device"):
        save_network(make_network(seed=1), path)
    monkeypatch.undo()
    assert listing(tmp_path) == ["model.npz"]
    assert_same_network(load_network(path)[0], old)
