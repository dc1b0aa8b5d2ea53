"""Saving and loading trained networks in a safe format: ``.npz`` arrays plus JSON, no pickle.

A model file is an uncompressed ``.npz`` holding the four parameter arrays,
``classes``, and ``meta``: UTF-8 JSON (stored as a uint8 array) with the format
name and version, the shapes, the class names, free-form training metadata and
a SHA-256 over the parameter bytes.  Loading uses ``allow_pickle=False`` and
checks every one of those, so a truncated, tampered, foreign or newer file is
refused with a message saying which.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ._atomic import atomic_write_bytes
from .errors import FastnnError
from .model import Network

FORMAT = "fastnn-model"
VERSION = 1
_PARAMS = ("W1", "b1", "W2", "b2")


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in _PARAMS + ("classes",):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_network(net: Network, path, metadata: dict | None = None) -> Path:
    """Write ``net`` to ``path`` atomically; ``metadata`` (JSON-serialisable) is stored alongside."""
    path = Path(path)
    classes = np.asarray(net.classes)
    if classes.dtype.kind not in "iuf":  # string labels go into the JSON, indices into the array
        class_labels, classes = [str(c) for c in classes], np.arange(len(classes))
    else:
        class_labels = None
    arrays = {"W1": net.W1, "b1": net.b1, "W2": net.W2, "b2": net.b2, "classes": classes}
    meta = {
        "format": FORMAT, "version": VERSION,
        "n_features": net.n_features, "hidden": net.hidden, "n_classes": net.n_classes,
        "class_names": list(net.class_names), "class_labels": class_labels,
        "sha256": _digest(arrays), "metadata": metadata or {},
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise FastnnError(f"cannot write model file {path}: {exc.strerror or exc}") from None
    return path


def load_network(path) -> tuple[Network, dict]:
    """Read a model file written by :func:`save_network`; returns ``(network, metadata)``."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FastnnError(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise FastnnError(f"{path} is a folder, not a model file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise FastnnError(f"{path} is not a readable fastnn model file "
                          "(not an .npz archive, truncated, or holding pickled objects)") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise FastnnError(f"{path} is a single NumPy array, not a fastnn model file")
    try:
        with loaded as npz:
            _check_declared_shapes(path, npz, _check_declared_sizes(path, npz.zip))
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        why = "it holds pickled objects, which fastnn never loads" if "pickle" in str(exc) else exc
        raise FastnnError(f"{path} is not a readable fastnn model file ({why})") from None
    try:
        return _from_arrays(path, arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, FastnnError):
            raise
        raise FastnnError(f"{path}: malformed fastnn model file ({type(exc).__name__}: {exc})") from None


# A model file is untrusted input: every member's declared size is checked before any
# member is read, so a hostile header cannot make load_network allocate gigabytes.
MAX_META_BYTES = 1 << 20
MAX_ARRAY_BYTES = 1 << 30  # 1 GiB per array: a 784 x 300,000 network


def _declared(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype, int]:
    """The shape and dtype an ``.npy`` member's header declares (reads the header only)."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
        header_len = fh.tell()
    return shape, dtype, header_len


def _check_declared_sizes(path: Path, zf: zipfile.ZipFile) -> dict:
    """Refuse, before reading any data, a member larger than its limit or than its own header says.

    Returns each member's declared ``(shape, dtype)``.
    """
    declared = {}
    try:
        for info in zf.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            limit = MAX_META_BYTES if name == "meta" else MAX_ARRAY_BYTES
            if info.file_size > limit + 4096:
                raise FastnnError(f"{path}: member {name!r} is {info.file_size} bytes, over the limit of {limit}")
            shape, dtype, header_len = _declared(zf, info)
            n_bytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if dtype.hasobject or n_bytes > limit or n_bytes != info.file_size - header_len:
                raise FastnnError(f"{path}: member {name!r} declares {dtype} {shape}, which its "
                                  f"{info.file_size} bytes do not hold (or which is over the limit)")
            declared[name] = (shape, dtype)
    except FastnnError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FastnnError(f"{path} is not a readable fastnn model file ({exc})") from None
    return declared


def _expected_shapes(meta: dict) -> dict:
    d, h, c = meta["n_features"], meta["hidden"], meta["n_classes"]
    return {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,), "classes": (c,)}


def _read_meta(path: Path, arrays: dict) -> dict:
    try:
        meta = json.loads(arrays["meta"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FastnnError(f"{path}: model metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise FastnnError(f"{path}: model metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise FastnnError(f"{path} is not a fastnn model file (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise FastnnError(f"{path} has model format version {meta.get('version')}; "
                          f"this fastnn reads version {VERSION}")
    return meta


def _check_declared_shapes(path: Path, npz, declared: dict) -> None:
    """The parameters' declared shapes against the metadata, before their data are read."""
    if "meta" not in declared:
        return  # reported as a missing member by _from_arrays
    meta = _read_meta(path, {"meta": npz["meta"]})
    try:
        expected = _expected_shapes(meta)
    except (KeyError, TypeError):
        return  # malformed metadata: reported with the full check in _from_arrays
    for name, shape in expected.items():
        if name in declared and tuple(declared[name][0]) != shape:
            raise FastnnError(f"{path}: {name} has shape {tuple(declared[name][0])}, expected {shape}")


def _from_arrays(path: Path, arrays: dict) -> tuple[Network, dict]:
    missing = [k for k in _PARAMS + ("classes", "meta") if k not in arrays]
    if missing:
        raise FastnnError(f"{path} is not a fastnn model file: missing {', '.join(missing)}")
    meta = _read_meta(path, arrays)
    c = meta["n_classes"]
    for name, shape in _expected_shapes(meta).items():
        if arrays[name].shape != shape:
            raise FastnnError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}")
        if name != "classes" and arrays[name].dtype != np.float32:
            raise FastnnError(f"{path}: {name} has dtype {arrays[name].dtype}, expected float32")
    if _digest(arrays) != meta.get("sha256"):
        raise FastnnError(f"{path}: checksum mismatch; the file was modified or corrupted")
    names = meta["class_names"]
    if not isinstance(names, list) or len(names) != c:
        raise FastnnError(f"{path}: class_names must list {c} names")
    classes = arrays["classes"]
    if meta.get("class_labels") is not None:
        classes = np.asarray(meta["class_labels"])
    params = [np.ascontiguousarray(arrays[k]) for k in _PARAMS]
    net = Network(*params, classes=classes, class_names=tuple(names))
    metadata = meta["metadata"]
    if not isinstance(metadata, dict):
        raise FastnnError(f"{path}: metadata must be a JSON object")
    return net, metadata
