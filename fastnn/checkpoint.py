"""Checkpoints: a training run's whole state after an epoch, in a safe file, so it can go on.

A checkpoint holds everything a :class:`~fastnn.training.Run` needs to finish
exactly as the uninterrupted run would have: the parameters, the optimizer's
step count and buffers, the best epoch's parameters (early stopping), the
epochs done and the history, and the config.  Randomness needs no state: every
shuffle and distortion is keyed on ``(seed, epoch)`` (:mod:`fastnn._keys`), so
knowing the epoch is knowing the random state.  The schedule's position is the
epoch too.  A fingerprint of the training data is kept, so a run is only
continued on the data it started on.

The file is an uncompressed ``.npz`` of plain arrays plus JSON metadata (no
pickle), written atomically after every epoch: an interruption at any moment
leaves the previous epoch's checkpoint or this one, never a torn file.  The
caller's own ``metadata`` (``fastnn train`` keeps its command-line options there)
is stored alongside.

Results are bit for bit those of the uninterrupted run on the same backend with
the same number of threads (the numba backend adds partial sums per thread, so
another thread count rounds differently; the checkpoint records the count).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from . import _npz
from ._atomic import atomic_write_bytes
from .config import TrainConfig
from .errors import FastnnError
from .layers import Layout

FORMAT = "fastnn-checkpoint"
VERSION = 1
#: The file name a run keeps in its output folder.
NAME = "checkpoint.npz"
MAX_META_BYTES = 1 << 24  # the history of a very long run with --log-every fits
MAX_MEMBERS = 8
_DTYPES = {"float32": np.float32, "float64": np.float64}


def data_fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """A short digest of a training set: its shape, every label and every 97th row.

    Cheap (a few ms for MNIST) and enough to tell one data set from another; not a
    defence against data crafted to collide.
    """
    h = hashlib.sha256()
    h.update(f"{X.shape}:{X.dtype.str}:{y.dtype.str}".encode())
    h.update(np.ascontiguousarray(y).tobytes())
    h.update(np.ascontiguousarray(X[::97]).tobytes())
    return h.hexdigest()[:32]


def save(path, run, metadata: dict | None = None) -> Path:
    """Write ``run``'s state (a :class:`~fastnn.training.Run`) to ``path`` atomically."""
    path = Path(path)
    net, opt = run.net, run.trainer.optimizer
    arrays = {"params": net.params.flat}
    for name, value in opt.state_arrays().items():
        arrays[f"optimizer_{name}"] = np.asarray(value)
    if run.best is not None:
        arrays["best"] = run.best.flat
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": _jsonable(asdict(run.config)),
        "epochs_done": run.epochs_done,
        "history": run.history.to_dict(),
        "network": {
            "sizes": list(net.sizes),
            "activation": net.activation,
            "head": net.head,
            "dtype": net.dtype.name,
            "class_names": list(net.class_names),
        },
        "optimizer": opt.name,
        "data": run.fingerprint,
        "threads": run.threads,
        "metadata": metadata or {},
    }
    meta["sha256"] = _digest(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise FastnnError(f"cannot write the checkpoint {path}: {exc.strerror or exc}") from None
    return path


def load(path) -> tuple[dict, dict]:
    """Read a checkpoint: ``(meta, arrays)``, checked for format, version, sizes and checksum.

    Read through :mod:`fastnn._npz`: nothing is unpickled, and no member larger than
    the network's parameters (as the metadata declare them) is read.
    """
    path = Path(path)
    if path.is_dir():
        path = path / NAME
    try:
        archive = _npz.open_archive(path, max_members=MAX_MEMBERS, max_directory_bytes=1 << 16)
    except FileNotFoundError:
        raise FastnnError(
            f"no checkpoint at {path}: was the run started with this --out folder, and has it not finished already?"
        ) from None
    except (OSError, _npz.ArchiveError) as exc:
        raise FastnnError(f"{path} is not a readable fastnn checkpoint ({exc})") from None
    try:
        with archive:
            members = archive.members
            if "meta" not in members or members["meta"].nbytes > MAX_META_BYTES:
                raise FastnnError(f"{path} is not a fastnn checkpoint (no metadata within {MAX_META_BYTES} bytes)")
            meta = _read_meta(path, archive.read("meta"))
            limit = _parameter_bytes(path, meta)
            big = [name for name, m in members.items() if name != "meta" and m.nbytes > limit]
            if big:
                raise FastnnError(f"{path}: {', '.join(big)} larger than the network's parameters")
            arrays = {name: archive.read(name) for name in members if name != "meta"}
    except _npz.ArchiveError as exc:
        raise FastnnError(f"{path} is not a readable fastnn checkpoint ({exc})") from None
    if _digest(arrays) != meta.get("sha256"):
        raise FastnnError(f"{path}: checksum mismatch; the checkpoint was modified or corrupted")
    return meta, arrays


def _read_meta(path: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FastnnError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FastnnError(f"{path} is not a fastnn checkpoint")
    if meta.get("version") != VERSION:
        raise FastnnError(f"{path} has checkpoint version {meta.get('version')}; this fastnn reads {VERSION}")
    return meta


def _parameter_bytes(path: Path, meta: dict) -> int:
    """The bytes of the network's parameters, from the metadata's layer sizes (a read limit)."""
    try:
        spec = meta["network"]
        layout = Layout(spec["sizes"], _DTYPES[spec["dtype"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise FastnnError(f"{path}: malformed checkpoint metadata ({type(exc).__name__}: {exc})") from None
    return layout.size * layout.dtype.itemsize


def config_of(meta: dict) -> TrainConfig:
    """The :class:`TrainConfig` a checkpoint's run was started with (validated)."""
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in meta["config"].items() if k in known}
    if "hidden" in values and isinstance(values["hidden"], list):
        values["hidden"] = tuple(values["hidden"])
    return TrainConfig(**values).validate()


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
