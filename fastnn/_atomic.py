"""Atomic file writes: a reader never sees a half-written file.

Everything fastnn writes that another run may later read (cache files, model
files, reports) goes through here: the bytes land in a temporary file in the
destination folder, are flushed to disk, and only then renamed over the final
name.  ``os.replace`` is atomic on POSIX and Windows for paths on one volume,
so an interrupted write leaves either the old file or nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports 'wb' and 'w', not {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file owner-only; give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") if mode == "w" else os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def writable_folder(out) -> Path:
    """Create the output folder ``out`` and prove it is writable, before any time is spent filling it."""
    from .errors import FastnnError

    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".fastnn-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FastnnError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


@contextlib.contextmanager
def output_folder(out) -> Iterator[Path]:
    """:func:`writable_folder` for the length of a run, which runs inside the ``with``.

    If the run fails, the folders this created (``out`` and any missing parents) are
    removed again while they are empty: bad input found while loading leaves no empty report folder
    behind.  Anything the run wrote into it (a checkpoint) is kept.
    """
    path = Path(out)
    created = [p for p in (path, *path.parents) if not p.exists()]  # the leaf first
    path = writable_folder(path)
    try:
        yield path
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()  # refuses a folder that is not empty
            except OSError:
                break
        raise
