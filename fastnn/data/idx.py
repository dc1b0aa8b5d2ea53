"""IDX files, MNIST's own format: reading, writing, and finding a set of them in a folder.

An IDX file is a big-endian header (magic 2051 for images, 2049 for labels, then the
dimensions) followed by unsigned bytes; fastnn reads them raw or gzip'd.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import FastnnError
from ..pixels import N_PIXELS, SIDE
from ._files import GZIP_MAGIC, _gunzip, _gzip, _read_bytes, _require_file, _write_bytes

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# The four standard IDX names, as (role, stem); the cache stores "<stem>.gz".
IDX_FILES = (
    ("X_train", "train-images-idx3-ubyte"),
    ("y_train", "train-labels-idx1-ubyte"),
    ("X_test", "t10k-images-idx3-ubyte"),
    ("y_test", "t10k-labels-idx1-ubyte"),
)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an MNIST IDX file, raw or gzip'd (detected by its magic bytes, not its name).

    Images (magic 2051, 28x28) come back as uint8 ``(n, 784)``; labels (magic
    2049) as uint8 ``(n,)``.  A wrong magic number, a size that disagrees with
    the header (truncated file or trailing bytes) or damaged gzip data raises
    :class:`FastnnError`.
    """
    path = Path(path)
    _require_file(path, "IDX file")
    return _decode_idx(_read_bytes(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, kind: str) -> None:
    """Write ``array`` as an IDX file, gzip'd when ``path`` ends in ``.gz``, atomically.

    ``kind`` is ``"images"`` (``(n, 784)`` or ``(n, 28, 28)``) or ``"labels"``
    (``(n,)``); values must be integers in 0..255.
    """
    path = Path(path)
    data = _encode_idx(np.asarray(array), kind, str(path))
    if path.name.endswith(".gz"):
        data = _gzip(data)
    _write_bytes(path, data)


def read_idx_folder(folder: str | os.PathLike) -> dict[str, np.ndarray | None]:
    """Read the standard IDX files in ``folder``; return ``X_train, y_train, X_test, y_test``.

    Names are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally
    ``.gz`` and optionally spelt with a dot (``train-images.idx3-ubyte``).  The
    training pair is required; the test pair is optional (``None`` when
    absent).  Images are uint8 ``(n, 784)``, labels uint8 ``(n,)`` in 0..9, and
    each pair's counts must match.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FastnnError(f"{folder}: no such folder of IDX files")
    paths = _find_idx_files(folder)
    if paths["X_train"] is None or paths["y_train"] is None:
        raise FastnnError(
            f"{folder}: no MNIST training files found; expected "
            f"train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]"
        )
    if (paths["X_test"] is None) != (paths["y_test"] is None):
        found, lacking = ("X_test", "y_test") if paths["X_test"] else ("y_test", "X_test")
        found_path = paths[found]
        assert found_path is not None  # one of the pair is there
        raise FastnnError(
            f"{folder}: found {found_path.name} but not {_stem(lacking)}[.gz]; "
            f"the test images and labels come as a pair"
        )
    files = {role: _read_bytes(p) for role, p in paths.items() if p is not None}
    where = {role: str(p) for role, p in paths.items() if p is not None}
    return _decode_set(files, where)


def _find_idx_files(folder: Path) -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for role, stem in IDX_FILES:
        dotted = stem.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
        candidates = [folder / f"{name}{gz}" for name in (stem, dotted) for gz in (".gz", "")]
        found[role] = next((p for p in candidates if p.is_file()), None)
    return found


def _decode_idx(raw: bytes, where: str) -> np.ndarray:
    """Parse the bytes of an IDX file (gzip'd or not); ``where`` names it in errors."""
    data = _gunzip(raw, where) if raw[:2] == GZIP_MAGIC else raw
    if len(data) < 8:
        raise FastnnError(f"{where}: only {len(data)} bytes, too short to be an IDX file")
    magic, count = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    shape: tuple[int, ...]
    if magic == IMAGES_MAGIC:
        if len(data) < 16:
            raise FastnnError(f"{where}: truncated IDX image header ({len(data)} of 16 bytes)")
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if (rows, cols) != (SIDE, SIDE):
            raise FastnnError(f"{where}: images are {rows}x{cols}; fastnn needs 28x28 (784 pixels)")
        header, shape, what = 16, (count, N_PIXELS), "images"
    elif magic == LABELS_MAGIC:
        header, shape, what = 8, (count,), "labels"
    else:
        raise FastnnError(
            f"{where}: not an MNIST IDX file (magic number {magic:#010x}; expected "
            f"{IMAGES_MAGIC:#010x} for images or {LABELS_MAGIC:#010x} for labels)"
        )
    expected = header + int(np.prod(shape))
    if len(data) < expected:
        raise FastnnError(
            f"{where}: truncated: the header declares {count} {what} "
            f"({expected} bytes) but there are only {len(data)} bytes"
        )
    if len(data) > expected:
        raise FastnnError(
            f"{where}: {len(data) - expected} unexpected bytes after the {count} {what} the header declares"
        )
    # Copy once so callers get an ordinary writable array, not a view of immutable bytes.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _encode_idx(array: np.ndarray, kind: str, where: str) -> bytes:
    if kind == "images":
        if array.ndim == 3 and array.shape[1:] == (SIDE, SIDE):
            array = array.reshape(len(array), N_PIXELS)
        if array.ndim != 2 or array.shape[1] != N_PIXELS:
            raise FastnnError(f"{where}: images must have shape (n, 784) or (n, 28, 28), not {array.shape}")
        header = [IMAGES_MAGIC, len(array), SIDE, SIDE]
    elif kind == "labels":
        if array.ndim != 1:
            raise FastnnError(f"{where}: labels must have shape (n,), not {array.shape}")
        header = [LABELS_MAGIC, len(array)]
    else:
        raise FastnnError(f"IDX kind must be 'images' or 'labels', not {kind!r}")
    if array.dtype != np.uint8 and (
        not np.issubdtype(array.dtype, np.integer) or (array.size and (array.min() < 0 or array.max() > 255))
    ):
        raise FastnnError(f"{where}: IDX {kind} must be integers in 0..255")
    head = b"".join(v.to_bytes(4, "big") for v in header)
    return head + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _decode_set(files: dict[str, bytes], where: dict[str, str]) -> dict[str, np.ndarray | None]:
    """Decode a train pair and an optional test pair of IDX files, checking each pair agrees."""
    arrays: dict[str, np.ndarray | None] = {"X_test": None, "y_test": None}
    for role in files:
        array = arrays[role] = _decode_idx(files[role], where[role])
        want_images = role.startswith("X")
        if (array.ndim == 2) != want_images:
            raise FastnnError(
                f"{where[role]}: holds {'labels' if want_images else 'images'} "
                f"but its name says {'images' if want_images else 'labels'}"
            )
    for split in ("train", "test"):
        X, y = arrays.get(f"X_{split}"), arrays.get(f"y_{split}")
        if (X is None) != (y is None):
            raise FastnnError(f"the {split} images and labels come as a pair; only one was found")
        if X is not None and y is not None:
            _check_pair(X, y, where[f"X_{split}"], where[f"y_{split}"])
    return arrays


def _check_pair(X: np.ndarray, y: np.ndarray, x_where: str, y_where: str) -> None:
    if len(X) != len(y):
        raise FastnnError(f"{x_where} has {len(X)} images but {y_where} has {len(y)} labels; the counts must match")
    if len(X) == 0:
        raise FastnnError(f"{x_where}: holds no images")
    if y.max() > 9:
        i = int(np.argmax(y > 9))
        raise FastnnError(f"{y_where}: label {int(y[i])} at index {i} is outside 0..9")


def _stem(role: str) -> str:
    return dict(IDX_FILES)[role]
