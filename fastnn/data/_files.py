"""Small helpers every data module shares: file reading and writing with one-line errors,
gzip, checksums, and notes on stderr.

Everything here turns an OS or format problem into a :class:`~fastnn.errors.FastnnError`
naming the file, so the readers above it never show a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from .._atomic import atomic_write_bytes
from ..errors import FastnnError

GZIP_MAGIC = b"\x1f\x8b"

# Errors the gzip module raises on damaged data (BadGzipFile is an OSError;
# truncated streams raise EOFError, damaged deflate data zlib.error).
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, OSError)


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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _first_few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _note(message: str) -> None:
    """Tell the user on stderr what a slow or failing fetch is doing (no traceback)."""
    print(f"fastnn: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _Checksum:
    """The expected digest (and size, when known) of one published file."""

    algorithm: str  # a hashlib name: "sha256" or "md5"
    digest: str
    size: int | None = None


def _verify(data: bytes, checksum: _Checksum, where: str) -> None:
    """Raise unless ``data`` has the published size and digest."""
    if checksum.size is not None and len(data) != checksum.size:
        raise FastnnError(f"{where}: size mismatch: expected {checksum.size} bytes, got {len(data)}")
    actual = hashlib.new(checksum.algorithm, data).hexdigest()
    if actual != checksum.digest:
        raise FastnnError(f"{where}: {checksum.algorithm} mismatch: expected {checksum.digest}, got {actual}")
