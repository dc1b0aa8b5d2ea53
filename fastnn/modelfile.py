"""Saving and loading trained networks in a safe format: ``.npz`` arrays plus JSON, no pickle.

A model file (format version 2) is an uncompressed ``.npz`` holding each
layer's weights and biases (``coef_0``, ``intercept_0``, ``coef_1``, ...),
``classes``, and ``meta``: UTF-8 JSON (stored as a uint8 array) with the format
name and version, the layer sizes, the hidden activation and the output head,
the dtype, the class names, free-form training metadata and a SHA-256 over the
parameter bytes.  Loading uses ``allow_pickle=False`` and checks every one of
those, each member's declared size before any data is read, so a truncated,
tampered, foreign, oversized or newer file is refused with a message saying
which.  Files of version 1 (fastnn 0.1: one ReLU hidden layer, ``W1, b1, W2,
b2``) are still read.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ._atomic import atomic_write_bytes
from .activations import ACTIVATIONS, HEADS
from .errors import FastnnError
from .network import Network

FORMAT = "fastnn-model"
VERSION = 2
#: Versions this fastnn reads.
READS = (1, 2)
#: Most weight layers a model file may declare (a bound on what a hostile file can ask for).
MAX_LAYERS = 64
_DTYPES = {"float32": np.float32, "float64": np.float64}
_V1_PARAMS = ("W1", "b1", "W2", "b2")


def _param_names(n_layers: int) -> tuple:
    return tuple(f"{kind}_{i}" for i in range(n_layers) for kind in ("coef", "intercept"))


def _digest(arrays: dict, names: tuple) -> str:
    h = hashlib.sha256()
    for name in names + ("classes",):
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
    names = _param_names(len(net.coefs))
    arrays = dict(zip(names, (a for pair in net.params.blocks() for a in pair)))
    arrays["classes"] = classes
    meta = {
        "format": FORMAT, "version": VERSION, "sizes": list(net.sizes), "activation": net.activation,
        "head": net.head, "dtype": net.dtype.name,
        "class_names": list(net.class_names), "class_labels": class_labels,
        "sha256": _digest(arrays, names), "metadata": metadata or {},
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
            wanted = _check_declared_shapes(path, npz, _check_declared_sizes(path, npz.zip))
            arrays = {name: npz[name] for name in npz.files if name in wanted}
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
    """Every member's shape, from the metadata (raises KeyError/TypeError/ValueError if malformed)."""
    if meta["version"] == 1:
        d, h, c = (_count(meta[k]) for k in ("n_features", "hidden", "n_classes"))
        return {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,), "classes": (c,)}
    sizes = meta["sizes"]
    if not isinstance(sizes, list) or not 2 <= len(sizes) <= MAX_LAYERS + 1:
        raise ValueError(f"sizes must list 2 to {MAX_LAYERS + 1} layer widths")
    sizes = [_count(s) for s in sizes]
    shapes = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"coef_{i}"] = (fan_in, fan_out)
        shapes[f"intercept_{i}"] = (fan_out,)
    shapes["classes"] = (len(meta["class_names"]),)
    return shapes


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"layer widths are positive integers, got {value!r}")
    return value


def _read_meta(path: Path, arrays: dict) -> dict:
    try:
        meta = json.loads(arrays["meta"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FastnnError(f"{path}: model metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise FastnnError(f"{path}: model metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise FastnnError(f"{path} is not a fastnn model file (format {meta.get('format')!r})")
    if meta.get("version") not in READS:
        raise FastnnError(f"{path} has model format version {meta.get('version')}; "
                          f"this fastnn reads versions {', '.join(map(str, READS))}")
    return meta


def _check_declared_shapes(path: Path, npz, declared: dict) -> set:
    """The parameters' declared shapes against the metadata, before their data are read.

    Returns the names of the members to read: the metadata's and those it declares
    (nothing else in the file is ever read).
    """
    if "meta" not in declared:
        return set()  # reported as a missing member by _from_arrays
    meta = _read_meta(path, {"meta": npz["meta"]})
    try:
        expected = _expected_shapes(meta)
    except (KeyError, TypeError, ValueError):
        return {"meta"}  # malformed metadata: reported with the full check in _from_arrays
    for name, shape in expected.items():
        if name in declared and tuple(declared[name][0]) != shape:
            raise FastnnError(f"{path}: {name} has shape {tuple(declared[name][0])}, expected {shape}")
    return set(expected) | {"meta"}


def _from_arrays(path: Path, arrays: dict) -> tuple[Network, dict]:
    if "meta" not in arrays:
        raise FastnnError(f"{path} is not a fastnn model file: missing meta")
    meta = _read_meta(path, arrays)
    shapes = _expected_shapes(meta)
    missing = [k for k in shapes if k not in arrays]
    if missing:
        raise FastnnError(f"{path} is not a fastnn model file: missing {', '.join(missing)}")
    v1 = meta["version"] == 1
    dtype = np.float32 if v1 else _DTYPES.get(meta["dtype"])
    if dtype is None:
        raise FastnnError(f"{path}: dtype {meta['dtype']!r} is not one of {', '.join(_DTYPES)}")
    names = _V1_PARAMS if v1 else _param_names(len(meta["sizes"]) - 1)
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise FastnnError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}")
        if name != "classes" and arrays[name].dtype != dtype:
            raise FastnnError(f"{path}: {name} has dtype {arrays[name].dtype}, expected {np.dtype(dtype).name}")
    if _digest(arrays, names) != meta.get("sha256"):
        raise FastnnError(f"{path}: checksum mismatch; the file was modified or corrupted")
    activation, head = ("relu", "softmax") if v1 else (meta["activation"], meta["head"])
    if activation not in ACTIVATIONS or head not in HEADS:
        raise FastnnError(f"{path}: unknown activation {activation!r} or head {head!r}")
    names_ = meta["class_names"]
    if not isinstance(names_, list) or not all(isinstance(n, str) for n in names_):
        raise FastnnError(f"{path}: class_names must be a list of names")
    classes = arrays["classes"]
    if meta.get("class_labels") is not None:
        classes = np.asarray(meta["class_labels"])
    params = [np.ascontiguousarray(arrays[k]) for k in names]
    net = Network(params[0::2], params[1::2], activation, head, classes=classes,
                  class_names=tuple(names_), dtype=dtype)
    metadata = meta["metadata"]
    if not isinstance(metadata, dict):
        raise FastnnError(f"{path}: metadata must be a JSON object")
    return net, metadata
