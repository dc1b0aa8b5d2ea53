"""Small data files for the tests, good and damaged: Kaggle CSVs, IDX folders, and a catalogue of damage.

``CSV_PROBLEMS`` and ``IDX_PROBLEMS`` map a name to ``(damage, pattern)``:
``damage`` edits the lines of a good CSV (``csv_lines``) or the files of a good
IDX folder (``write_idx_folder(..., suffix="")``), and ``pattern`` is what the
one error it must cause says.  ``tests/test_data.py`` runs the whole catalogue
through :func:`fastnn.load_dataset`; the command-line tests run a few of them
end to end.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fastnn import data
from fastnn.data import IDX_FILES, PIXEL_COLUMNS, write_idx

STEMS = dict(IDX_FILES)
N_ROWS = 300


# ----------------------------------------------------------------------------
# good files
# ----------------------------------------------------------------------------


def digits(n: int = N_ROWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k brightens its own 8-row band of the 28x28 image, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    X = rng.integers(0, 60, (n, 28, 28))
    for i, label in enumerate(y):
        top = int(label) * 2
        X[i, top : top + 8, 4:24] += rng.integers(120, 196, (8, 20))
    return np.clip(X, 0, 255).reshape(n, 784).astype(np.uint8), y.astype(np.int64)


def csv_lines(X: np.ndarray, y: np.ndarray | None) -> list[list[str]]:
    """Header and rows of a Kaggle-style CSV as lists of cell strings (easy to damage)."""
    header = (["label"] if y is not None else []) + list(PIXEL_COLUMNS)
    body = X.astype(str) if y is None else np.column_stack([y, X]).astype(str)
    return [header] + body.tolist()


def write_lines(path: Path, lines: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(row) for row in lines) + "\n")
    return path


def write_kaggle_csv(path: Path, n: int = N_ROWS, seed: int = 0) -> Path:
    X, y = digits(n, seed)
    return write_lines(path, csv_lines(X, y))


def write_idx_folder(folder: Path, n_train: int = N_ROWS, n_test: int | None = 100, suffix: str = ".gz") -> Path:
    """train-* (and, when n_test, t10k-*) IDX files of synthetic digits."""
    folder.mkdir(parents=True, exist_ok=True)
    X, y = digits(n_train, seed=0)
    write_idx(folder / f"{STEMS['X_train']}{suffix}", X, "images")
    write_idx(folder / f"{STEMS['y_train']}{suffix}", y, "labels")
    if n_test:
        X, y = digits(n_test, seed=1)
        write_idx(folder / f"{STEMS['X_test']}{suffix}", X, "images")
        write_idx(folder / f"{STEMS['y_test']}{suffix}", y, "labels")
    return folder


# ----------------------------------------------------------------------------
# damaged CSVs: each edit, and what its error says
# ----------------------------------------------------------------------------


def _edit_cell(row: int, column: str, text: str):
    def edit(lines):
        lines[row][lines[0].index(column)] = text

    return edit


def _drop_column(column: str):
    def edit(lines):
        j = lines[0].index(column)
        for cells in lines:
            del cells[j]

    return edit


def _add_column(name: str):
    def edit(lines):
        lines[0].append(name)
        for cells in lines[1:]:
            cells.append("0")

    return edit


def _rename_column(old: str, new: str):
    def edit(lines):
        lines[0][lines[0].index(old)] = new

    return edit


def _swap_columns(a: str, b: str):
    def edit(lines):
        i, j = lines[0].index(a), lines[0].index(b)
        for cells in lines:
            cells[i], cells[j] = cells[j], cells[i]

    return edit


def _only_header(lines):
    del lines[1:]


CSV_PROBLEMS = {
    "missing-column": (_drop_column("pixel783"), r"header has 784 columns; missing 'pixel783'"),
    "extra-column": (_add_column("pixel784"), r"header has 786 columns; unexpected 'pixel784'"),
    "renamed-column": (_rename_column("pixel5", "px5"), r"missing 'pixel5'; unexpected 'px5'"),
    "columns-out-of-order": (_swap_columns("pixel1", "pixel2"), r"header column 3 is 'pixel2' where 'pixel1' belongs"),
    "label-not-first": (_swap_columns("label", "pixel0"), r"header has 785 columns; unexpected 'label'"),
    "no-label-column": (_drop_column("label"), r"no label column"),
    "text-cell": (_edit_cell(7, "pixel300", "abc"), r"non-integer value 'abc' at row 7 \(line 8\), column 'pixel300'"),
    "nan-cell": (_edit_cell(3, "pixel10", "NaN"), r"non-integer value 'NaN' at row 3 .*column 'pixel10'"),
    "nan-label": (_edit_cell(5, "label", "nan"), r"non-integer value 'nan' at row 5 .*column 'label'"),
    "empty-cell": (_edit_cell(2, "pixel0", ""), r"empty cell at row 2 .*column 'pixel0'"),
    "fractional-cell": (_edit_cell(9, "pixel400", "3.5"), r"non-integer value '3.5' at row 9"),
    "pixel-256": (
        _edit_cell(4, "pixel100", "256"),
        r"pixel value 256 at row 4 .*column 'pixel100', is outside 0\.\.255",
    ),
    "pixel-negative": (_edit_cell(1, "pixel0", "-1"), r"pixel value -1 at row 1 .*is outside 0\.\.255"),
    "pixel-huge": (_edit_cell(6, "pixel783", "70000"), r"pixel value 70000 at row 6 .*is outside 0\.\.255"),
    "label-10": (_edit_cell(8, "label", "10"), r"label 10 at row 8 .*column 'label', is outside 0\.\.9"),
    "label-negative": (_edit_cell(2, "label", "-3"), r"label -3 at row 2 .*is outside 0\.\.9"),
    "header-only": (_only_header, r"has a header but no data rows"),
}


# ----------------------------------------------------------------------------
# damaged IDX folders
# ----------------------------------------------------------------------------


def _raw(folder: Path, role: str) -> Path:
    return folder / STEMS[role]


def _truncate(role: str, keep: int):
    def damage(folder):
        p = _raw(folder, role)
        p.write_bytes(p.read_bytes()[:keep])

    return damage


def _append(role: str, extra: bytes):
    def damage(folder):
        p = _raw(folder, role)
        p.write_bytes(p.read_bytes() + extra)

    return damage


def _set_magic(role: str, magic: int):
    def damage(folder):
        p = _raw(folder, role)
        raw = p.read_bytes()
        p.write_bytes(magic.to_bytes(4, "big") + raw[4:])

    return damage


def _gzip_then(role: str, how: str):
    """Replace a raw file by a damaged .gz of it."""

    def damage(folder):
        p = _raw(folder, role)
        packed = bytearray(gzip.compress(p.read_bytes()))
        p.unlink()
        if how == "truncate":
            packed = packed[: len(packed) // 2]
        elif how == "flip":
            for i in range(20, min(len(packed) - 8, 60)):
                packed[i] ^= 0xA5
        elif how == "crc":
            packed[-8] ^= 0xFF  # the trailer's CRC-32
        Path(f"{p}.gz").write_bytes(bytes(packed))

    return damage


def _set_label(role: str, index: int, value: int):
    def damage(folder):
        p = _raw(folder, role)
        raw = bytearray(p.read_bytes())
        raw[8 + index] = value
        p.write_bytes(bytes(raw))

    return damage


def _remove(role: str):
    def damage(folder):
        _raw(folder, role).unlink()

    return damage


def _drop_images(role: str, count: int):
    def damage(folder):
        p = _raw(folder, role)
        X = data.read_idx(p)
        write_idx(p, X[:-count], "images")

    return damage


def _copy(src: str, dst: str):
    def damage(folder):
        _raw(folder, dst).write_bytes(_raw(folder, src).read_bytes())

    return damage


IDX_PROBLEMS = {
    "truncated-images": (_truncate("X_train", 16 + 784 * 10 + 100), r"truncated: the header declares 300 images"),
    "truncated-labels": (_truncate("y_train", 100), r"truncated: the header declares 300 labels"),
    "truncated-header": (_truncate("X_train", 12), r"truncated IDX image header"),
    "too-short": (_truncate("y_train", 5), r"only 5 bytes, too short to be an IDX file"),
    "trailing-bytes": (_append("X_test", b"\0" * 7), r"7 unexpected bytes after the 100 images"),
    "wrong-magic-images": (
        _set_magic("X_train", 0x00000803 + 0x1000),
        r"not an MNIST IDX file \(magic number 0x00001803",
    ),
    "wrong-magic-labels": (_set_magic("y_test", 0xDEADBEEF), r"not an MNIST IDX file \(magic number 0xdeadbeef"),
    "labels-in-images-file": (
        _copy("y_train", "X_train"),
        r"train-images-idx3-ubyte: holds labels but its name says images",
    ),
    "corrupt-gzip": (_gzip_then("X_train", "flip"), r"corrupt gzip data"),
    "truncated-gzip": (_gzip_then("y_train", "truncate"), r"corrupt gzip data"),
    "gzip-crc-mismatch": (_gzip_then("X_test", "crc"), r"corrupt gzip data .*CRC"),
    "label-10": (_set_label("y_train", 17, 10), r"label 10 at index 17 is outside 0\.\.9"),
    "label-255-in-test": (_set_label("y_test", 3, 255), r"label 255 at index 3 is outside 0\.\.9"),
    "count-mismatch": (_drop_images("X_train", 1), r"has 299 images but .* has 300 labels; the counts must match"),
    "no-training-labels": (_remove("y_train"), r"no MNIST training files found"),
    "test-images-without-labels": (_remove("y_test"), r"found t10k-images-idx3-ubyte but not t10k-labels-idx1-ubyte"),
}
