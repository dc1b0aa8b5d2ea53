"""Saving and loading trained networks in a safe format: ``.npz`` arrays plus JSON, no pickle.

A model file (format version 2) is an uncompressed ``.npz`` holding each
layer's weights and biases (``coef_0``, ``intercept_0``, ``coef_1``, ...),
``classes``, and ``meta``: UTF-8 JSON (stored as a uint8 array) with the format
name and version, the layer ``sizes``, the hidden ``activation``, the output
``head``, the ``dtype`` (float32 or float64), the class names (and the labels,
when they are not numbers), free-form training ``metadata`` and a SHA-256 over
the parameters and classes.

A model file is untrusted input.  Loading reads it through :mod:`fastnn._npz`
(no pickle, a bounded zip directory, every member's declared size checked
before any data is read), then checks the metadata, and every member's declared
shape and dtype against it, before reading the parameters (at most
:data:`MAX_MODEL_BYTES` of them), then the checksum.  A truncated, tampered,
foreign, oversized or newer file is refused with one :class:`FastnnError`
naming the file and the problem.

Version 1 files (fastnn 0.1: one ReLU hidden layer and a softmax output, float32,
members ``W1, b1, W2, b2, classes, meta``, the metadata giving ``n_features``,
``hidden`` and ``n_classes``) are still read, with the same checks.
"""

from __future__ import annotations

import hashlib
import io
import json
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import _npz
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
#: Members a model file may hold: two per layer, the classes and the metadata.
MAX_MEMBERS = 2 * MAX_LAYERS + 2
#: Bytes of the zip directory (ours take ~50 a member; the bound keeps parsing it cheap).
MAX_DIRECTORY_BYTES = 1 << 20
MAX_META_BYTES = 1 << 20
#: Bytes of any one array: a 784 x 300,000 float32 layer.
MAX_ARRAY_BYTES = 1 << 30
#: Bytes of all the arrays together, the most loading a model file ever allocates.
MAX_MODEL_BYTES = 1 << 31
_DTYPES = ("float32", "float64")
_V1_PARAMS = ("W1", "b1", "W2", "b2")


def network_summary(net: Network) -> dict:
    """The network's shape as fastnn records it (model files, ``metrics.json``, ``/api/model``).

    ``sizes`` (inputs first), ``hidden`` (the sizes between), ``activation``,
    ``head`` and ``dtype``, as plain JSON values.
    """
    return {
        "sizes": list(net.sizes),
        "hidden": list(net.hidden),
        "activation": net.activation,
        "head": net.head,
        "dtype": net.dtype.name,
    }


def _param_names(n_layers: int) -> tuple:
    return tuple(f"{kind}_{i}" for i in range(n_layers) for kind in ("coef", "intercept"))


def _digest(arrays: dict, names: tuple) -> str:
    """SHA-256 over the named parameters and ``classes``: each one's name, dtype, shape and bytes
    (version 1 files used the same rule over ``W1, b1, W2, b2``)."""
    h = hashlib.sha256()
    for name in names + ("classes",):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.data if a.size else b"")  # the bytes tobytes() gives, without copying them
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
    shape = {k: v for k, v in network_summary(net).items() if k != "hidden"}  # hidden: sizes[1:-1]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **shape,
        "class_names": list(net.class_names),
        "class_labels": class_labels,
        "sha256": _digest(arrays, names),
        "metadata": metadata or {},
    }
    try:
        meta_json = json.dumps(meta).encode()
    except (TypeError, ValueError) as exc:
        raise FastnnError(f"cannot save the model's metadata as JSON: {exc}") from None
    buf = io.BytesIO()
    np.savez(buf, **arrays, meta=np.frombuffer(meta_json, np.uint8))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise FastnnError(f"cannot write model file {path}: {exc.strerror or exc}") from None
    return path


def load_network(path) -> tuple[Network, dict]:
    """Read a model file written by :func:`save_network` (or by fastnn 0.1); returns
    ``(network, metadata)``.  Anything else is one :class:`FastnnError` (see the module)."""
    path = Path(path)
    try:
        archive = _npz.open_archive(path, max_members=MAX_MEMBERS, max_directory_bytes=MAX_DIRECTORY_BYTES)
    except FileNotFoundError:
        raise FastnnError(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise FastnnError(f"{path} is a folder, not a model file") from None
    except (OSError, _npz.ArchiveError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise FastnnError(f"{path} is not a readable fastnn model file ({why})") from None
    try:
        with archive:
            spec = _spec(path, archive)
            arrays = {name: archive.read(name) for name in spec.shapes}
    except _npz.ArchiveError as exc:
        raise FastnnError(f"{path} is not a readable fastnn model file ({exc})") from None
    return _network(path, spec, arrays)


class _Spec(NamedTuple):
    """What a file's metadata says it holds, checked."""

    names: tuple  # the parameter members, in layer order
    shapes: dict  # member -> shape, for every member to read (parameters, classes)
    dtype: np.dtype
    activation: str
    head: str
    class_names: tuple
    class_labels: list | None
    sha256: str
    metadata: dict


def _spec(path: Path, archive) -> _Spec:
    """Read and check the metadata, then every member's declared size, shape and dtype against it."""
    members = archive.members
    for name, member in members.items():
        limit = MAX_META_BYTES if name == "meta" else MAX_ARRAY_BYTES
        if member.nbytes > limit:
            raise FastnnError(
                f"{path}: member {name!r} declares {member.dtype} {member.shape}, "
                f"{member.nbytes} bytes, over the limit of {limit}"
            )
    if "meta" not in members:
        raise FastnnError(f"{path} is not a fastnn model file: missing meta")
    if members["meta"].dtype != np.uint8 or len(members["meta"].shape) != 1:
        raise FastnnError(f"{path}: meta is {members['meta'].dtype} {members['meta'].shape}, not JSON bytes")
    spec = _parse_meta(path, _read_meta(path, archive.read("meta")))
    missing = [name for name in spec.shapes if name not in members]
    if missing:
        raise FastnnError(f"{path} is not a fastnn model file: missing {', '.join(missing)}")
    for name, shape in spec.shapes.items():
        declared = members[name]
        if declared.shape != shape:
            raise FastnnError(f"{path}: {name} has shape {declared.shape}, expected {shape}")
        if name in spec.names and declared.dtype != spec.dtype:
            raise FastnnError(f"{path}: {name} has dtype {declared.dtype}, expected {spec.dtype.name}")
    if members["classes"].dtype.kind not in "iuf":
        raise FastnnError(f"{path}: classes has dtype {members['classes'].dtype}, expected numbers")
    total = sum(members[name].nbytes for name in spec.shapes)
    if total > MAX_MODEL_BYTES:
        raise FastnnError(f"{path}: the parameters take {total} bytes, over the limit of {MAX_MODEL_BYTES}")
    return spec


def _read_meta(path: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FastnnError(f"{path}: model metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise FastnnError(f"{path}: model metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise FastnnError(f"{path} is not a fastnn model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if type(version) is not int or version not in READS:
        raise FastnnError(
            f"{path} has model format version {version!r}; this fastnn reads versions {', '.join(map(str, READS))}"
        )
    return meta


def _parse_meta(path: Path, meta: dict) -> _Spec:
    """The :class:`_Spec` of a version 1 or 2 file's metadata, or a FastnnError naming the bad key."""

    def bad(key, what):
        if key not in meta:
            return FastnnError(f"{path}: the model metadata lacks {key!r}")
        shown = repr(meta[key])
        shown = shown if len(shown) < 80 else f"{shown[:76]}..."
        return FastnnError(f"{path}: the model metadata's {key!r} must be {what}, got {shown}")

    for key in ("class_names", "metadata", "sha256"):
        if key not in meta:
            raise bad(key, "present")
    if meta["version"] == 1:
        for key in ("n_features", "hidden", "n_classes"):
            if not _is_count(meta.get(key)):
                raise bad(key, "a positive integer")
        sizes = [meta["n_features"], meta["hidden"], meta["n_classes"]]
        names, dtype, activation, head = _V1_PARAMS, np.dtype(np.float32), "relu", "softmax"
        shapes = {"W1": tuple(sizes[0:2]), "b1": (sizes[1],), "W2": tuple(sizes[1:3]), "b2": (sizes[2],)}
    else:
        listed = meta.get("sizes")
        if not isinstance(listed, list) or not 2 <= len(listed) <= MAX_LAYERS + 1 or not all(map(_is_count, listed)):
            raise bad("sizes", f"a list of 2 to {MAX_LAYERS + 1} positive integers")
        sizes = listed
        if meta.get("dtype") not in _DTYPES:
            raise bad("dtype", " or ".join(_DTYPES))
        activation, head = str(meta.get("activation")), str(meta.get("head"))  # "None" when missing
        if activation not in ACTIVATIONS:
            raise bad("activation", f"one of {', '.join(ACTIVATIONS)}")
        if head not in HEADS:
            raise bad("head", f"one of {', '.join(HEADS)}")
        names, dtype = _param_names(len(sizes) - 1), np.dtype(meta["dtype"])
        shapes = {}
        for i, (fan_in, fan_out) in enumerate(pairwise(sizes)):
            shapes[f"coef_{i}"], shapes[f"intercept_{i}"] = (fan_in, fan_out), (fan_out,)
    class_names = meta["class_names"]
    if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
        raise bad("class_names", "a list of names")
    labels = meta.get("class_labels")
    if labels is not None and (
        not isinstance(labels, list)
        or len(labels) != len(class_names)
        or not all(isinstance(label, str) for label in labels)
    ):
        raise bad("class_labels", f"null or a list of {len(class_names)} strings")
    if not isinstance(meta["metadata"], dict):
        raise bad("metadata", "a JSON object")
    if not isinstance(meta["sha256"], str):
        raise bad("sha256", "a hex digest")
    shapes["classes"] = (len(class_names),)
    return _Spec(names, shapes, dtype, activation, head, tuple(class_names), labels, meta["sha256"], meta["metadata"])


def _is_count(value) -> bool:
    return type(value) is int and value >= 1


def _network(path: Path, spec: _Spec, arrays: dict) -> tuple[Network, dict]:
    """The checked arrays as a Network (after the checksum and a look for NaN)."""
    if _digest(arrays, spec.names) != spec.sha256:
        raise FastnnError(f"{path}: checksum mismatch; the file was modified or corrupted")
    for name in spec.names:
        a = arrays[name]
        # min and max propagate NaN and show infinities, without a temporary the array's size
        if a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
            raise FastnnError(f"{path}: {name} holds NaN or infinite values")
    classes = np.asarray(spec.class_labels) if spec.class_labels is not None else arrays["classes"]
    try:
        net = Network(
            [arrays[k] for k in spec.names[0::2]],
            [arrays[k] for k in spec.names[1::2]],
            spec.activation,
            spec.head,
            classes=classes,
            class_names=spec.class_names,
            dtype=spec.dtype,
        )
    except FastnnError as exc:  # e.g. classes that do not fit the head
        raise FastnnError(f"{path}: {exc}") from None
    return net, spec.metadata
