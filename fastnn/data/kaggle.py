"""Kaggle Digit Recognizer CSVs: ``train.csv`` (``label,pixel0..pixel783``) and ``test.csv``.

pandas parses the file (imported on first use: it costs ~0.15 s and only this reader
needs it); every cell is then checked to be an integer in range, and a bad cell is
reported by row and column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import FastnnError
from ..pixels import N_PIXELS
from ._files import _first_few, _one_line, _require_file

PIXEL_COLUMNS = tuple(f"pixel{i}" for i in range(N_PIXELS))
TRAIN_COLUMNS = ("label",) + PIXEL_COLUMNS


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
    layouts = (
        "expected Kaggle's train.csv header 'label,pixel0,...,pixel783' (785 columns) "
        "or test.csv header 'pixel0,...,pixel783' (784 columns)"
    )
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
    raise FastnnError(f"{path}: header column {i + 1} is {columns[i]!r} where {expected[i]!r} belongs; {layouts}")


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
    raise FastnnError(f"{path}: non-integer value {cell!r} at {where}; every cell must hold an integer")


def _check_csv_range(values: np.ndarray, low: int, high: int, what: str, path: Path, columns: tuple[str, ...]) -> None:
    bad = (values < low) | (values > high)
    if not bad.any():
        return
    row, col = np.argwhere(bad)[0]
    raise FastnnError(
        f"{path}: {what} {int(values[row, col])} at row {row + 1} (line {row + 2}), "
        f"column {columns[col]!r}, is outside {low}..{high}"
    )
