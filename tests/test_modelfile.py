"""Tests for fastnn.modelfile: the safe ``.npz`` + JSON model format.

A saved network must come back bit for bit, and every file that is not an
intact fastnn model (truncated, tampered, foreign, newer, hand-crafted with
wrong shapes or metadata, or carrying a pickle) must be refused with a
:class:`FastnnError` whose message says what is wrong, never another exception.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastnn._atomic
from fastnn.errors import FastnnError
from fastnn.model import Network, init_network
from fastnn.modelfile import FORMAT, VERSION, _digest, load_network, save_network

D, H, C = 784, 12, 10


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def make_network(seed: int = 0, classes=None, class_names=None) -> Network:
    """A network with non-trivial values in every parameter (biases too)."""
    net = init_network(D, H, C if classes is None else len(classes), seed)
    rng = np.random.default_rng(seed + 100)
    net.b1[:] = rng.standard_normal(net.b1.shape).astype(np.float32)
    net.b2[:] = rng.standard_normal(net.b2.shape).astype(np.float32)
    if classes is not None:
        net = Network(net.W1, net.b1, net.W2, net.b2, classes=np.asarray(classes),
                      class_names=class_names)
    return net


def inputs(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, D), dtype=np.float32)


def good_parts(net: Network) -> tuple[dict, dict]:
    """The arrays and the metadata save_network would write, for hand-crafting variants."""
    arrays = {"W1": net.W1, "b1": net.b1, "W2": net.W2, "b2": net.b2,
              "classes": np.asarray(net.classes)}
    meta = {"format": FORMAT, "version": VERSION, "n_features": net.n_features,
            "hidden": net.hidden, "n_classes": net.n_classes,
            "class_names": list(net.class_names), "class_labels": None,
            "sha256": _digest(arrays), "metadata": {}}
    return arrays, meta


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
    """Assert load_network refuses ``path`` with a FastnnError naming the file and each phrase."""
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


# ----------------------------------------------------------------------------
# round trip
# ----------------------------------------------------------------------------

def test_save_load_round_trip_gives_identical_arrays_metadata_and_predictions(tmp_path):
    net = make_network()
    metadata = {"dataset": "mnist", "config": {"hidden": H, "lr": 0.2}, "backend": "numba"}
    path = save_network(net, tmp_path / "model.npz", metadata)
    assert path == tmp_path / "model.npz"

    loaded, meta = load_network(path)
    for name in ("W1", "b1", "W2", "b2"):
        a, b = getattr(net, name), getattr(loaded, name)
        assert b.dtype == np.float32 and b.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.classes, np.arange(C))
    assert loaded.class_names == net.class_names
    assert meta == metadata
    X = inputs()
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_model_file_is_an_npz_without_pickles(tmp_path):
    path = save_network(make_network(), tmp_path / "model.npz")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(f"{k}.npy" for k in ("W1", "b1", "W2", "b2", "classes", "meta"))
    with np.load(path, allow_pickle=False) as npz:  # would raise if any member were an object array
        meta = json.loads(npz["meta"].tobytes().decode())
    assert (meta["format"], meta["version"]) == (FORMAT, VERSION)


def test_string_class_labels_and_names_survive_a_round_trip(tmp_path):
    labels = ["cat", "dog", "bird"]
    names = ("Cat (felis)", "Dog", "Bird ✓")
    net = make_network(classes=labels, class_names=names)
    loaded, _ = load_network(save_network(net, tmp_path / "model.npz"))
    assert list(loaded.classes) == labels
    assert loaded.class_names == names
    X = inputs()
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_numeric_non_default_class_labels_survive_a_round_trip(tmp_path):
    net = make_network(classes=[3, 5, 7, 11])
    loaded, _ = load_network(save_network(net, tmp_path / "model.npz"))
    assert list(loaded.classes) == [3, 5, 7, 11]
    assert loaded.class_names == ("3", "5", "7", "11")


def test_saving_again_replaces_the_model(tmp_path):
    path = tmp_path / "model.npz"
    save_network(make_network(seed=0), path)
    second = make_network(seed=1)
    save_network(second, path)
    loaded, _ = load_network(path)
    np.testing.assert_array_equal(loaded.W1, second.W1)
    assert listing(tmp_path) == ["model.npz"]


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
    at = bytes(raw).find(net.W1.tobytes()[:256])
    assert at > 0
    raw[at + 1000] ^= 0x01  # one bit of one weight
    damaged = tmp_path / "tampered.npz"
    damaged.write_bytes(bytes(raw))
    message = refused(damaged)
    # The zip member's CRC catches it before the model's own SHA-256 does.
    assert "W1" in message and ("crc" in message.lower() or "checksum" in message.lower())


def test_modified_weight_in_a_rewritten_file_fails_the_checksum(tmp_path):
    """A file rewritten with a changed weight but the old metadata (valid zip, valid CRCs)."""
    net = make_network()
    arrays, meta = good_parts(net)
    arrays["W1"] = arrays["W1"].copy()
    arrays["W1"][100, 3] += np.float32(1e-3)
    refused(write_npz(tmp_path / "tampered.npz", arrays, meta), "checksum mismatch")


def test_changed_class_array_fails_the_checksum(tmp_path):
    arrays, meta = good_parts(make_network())
    arrays["classes"] = arrays["classes"][::-1].copy()
    refused(write_npz(tmp_path / "tampered.npz", arrays, meta), "checksum mismatch")


def test_newer_format_version_is_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    meta["version"] = VERSION + 1
    refused(write_npz(tmp_path / "future.npz", arrays, meta), f"version {VERSION + 1}", f"reads version {VERSION}")


def test_other_format_name_is_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    meta["format"] = "someone-elses-model"
    refused(write_npz(tmp_path / "other.npz", arrays, meta), "not a fastnn model file", "someone-elses-model")


@pytest.mark.parametrize("name, shape", [("W1", (D, H + 1)), ("b1", (H + 1,)), ("W2", (H, C + 1)),
                                         ("b2", (1, C)), ("classes", (C + 1,))])
def test_mismatched_shapes_are_refused(tmp_path, name, shape):
    arrays, meta = good_parts(make_network())
    arrays[name] = np.zeros(shape, arrays[name].dtype)
    meta["sha256"] = _digest(arrays)  # a consistent checksum: only the shape is wrong
    refused(write_npz(tmp_path / "shapes.npz", arrays, meta), f"{name} has shape {shape}")


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.zeros((3, 3)), bias=np.zeros(3))
    refused(path, "not a fastnn model file", "missing W1")


def test_npz_with_a_pickled_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    arrays, _ = good_parts(make_network())
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays, meta=np.array([Payload()], dtype=object))
    refused(path, "not a readable fastnn model file", "pickled objects")
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


@pytest.mark.parametrize("content", [b"", b"hello, I am not a model\n" * 20, b"PK\x03\x04garbage"],
                         ids=["empty", "text", "zip-magic-garbage"])
def test_non_model_bytes_are_refused(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    refused(path, "not a readable fastnn model file")


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "model.npz").mkdir()
    refused(tmp_path / "model.npz")


def test_single_npy_array_file_is_refused(tmp_path):
    # np.load returns a bare ndarray (not an NpzFile) for .npy content.
    path = tmp_path / "model.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros((D, H), np.float32))
    refused(path, "not a")


def test_metadata_that_is_not_json_is_refused(tmp_path):
    arrays, _ = good_parts(make_network())
    refused(write_npz(tmp_path / "m.npz", arrays, raw_meta=b"\xff{not json"), "metadata", "JSON")


@pytest.mark.parametrize("meta_json", [b"[1, 2, 3]", b"\"fastnn-model\"", b"null"],
                         ids=["list", "string", "null"])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, meta_json):
    arrays, _ = good_parts(make_network())
    refused(write_npz(tmp_path / "m.npz", arrays, raw_meta=meta_json), "metadata")


@pytest.mark.parametrize("key", ["n_features", "hidden", "n_classes", "class_names", "metadata"])
def test_metadata_missing_a_required_key_is_refused(tmp_path, key):
    arrays, meta = good_parts(make_network())
    del meta[key]
    refused(write_npz(tmp_path / "m.npz", arrays, meta), key)


def test_class_names_that_do_not_match_the_outputs_are_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    meta["class_names"] = ["only", "three", "names"]
    refused(write_npz(tmp_path / "m.npz", arrays, meta), "class")


def test_non_numeric_weights_are_refused(tmp_path):
    arrays, meta = good_parts(make_network())
    arrays["W1"] = np.full((D, H), "x")
    meta["sha256"] = _digest(arrays)  # consistent checksum: a deliberately crafted file
    refused(write_npz(tmp_path / "m.npz", arrays, meta), "W1")


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
    with pytest.raises(FastnnError, match="cannot write model file .*No such file"):
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
    np.testing.assert_array_equal(load_network(path)[0].W1, old.W1)


# --- bounded reads: a hostile file is refused before its data are read ------------------


def _rewrite_member(src: Path, dst: Path, member: str, shape, pad: int = 64, descr: str = "<f4") -> None:
    """Copy a model file, replacing ``member``'s .npy with a header declaring ``shape`` and ``pad`` bytes."""
    import io

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == f"{member}.npy":
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
                data = buf.getvalue() + b"\0" * pad
            zout.writestr(info.filename, data)


def test_a_member_declaring_a_huge_array_is_refused_without_allocating_it(tmp_path):
    import tracemalloc

    save_network(init_network(784, 16, 10, 0), tmp_path / "good.npz")
    _rewrite_member(tmp_path / "good.npz", tmp_path / "evil.npz", "W1", (200_000, 200_000))  # 160 GB declared
    tracemalloc.start()
    with pytest.raises(FastnnError, match="'W1' declares float32 \\(200000, 200000\\)"):
        load_network(tmp_path / "evil.npz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 2**20


def test_a_member_whose_declared_shape_disagrees_with_the_metadata_is_refused(tmp_path):
    """Consistent with its own bytes, but not with the network the metadata describes."""
    save_network(init_network(784, 16, 10, 0), tmp_path / "good.npz")
    _rewrite_member(tmp_path / "good.npz", tmp_path / "odd.npz", "W2", (16, 11), pad=16 * 11 * 4)
    with pytest.raises(FastnnError, match="W2 has shape \\(16, 11\\), expected \\(16, 10\\)"):
        load_network(tmp_path / "odd.npz")


def test_a_member_over_the_size_ceiling_is_refused_from_its_zip_entry(tmp_path, monkeypatch):
    import fastnn.modelfile as modelfile

    save_network(init_network(784, 16, 10, 0), tmp_path / "good.npz")
    monkeypatch.setattr(modelfile, "MAX_ARRAY_BYTES", 1000)  # W1 is 784 * 16 * 4 = 50 KB
    with pytest.raises(FastnnError, match="over the limit"):
        load_network(tmp_path / "good.npz")
