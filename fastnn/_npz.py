"""Reading ``.npz`` archives that may be hostile: bounded work, no pickles, nothing read unasked.

``numpy.load`` trusts an archive: it parses however large a zip directory the
file claims, and allocates whatever shape an array's header declares before
reading a byte of data.  :func:`open_archive` instead checks, before any array
data is read:

* that the file is a zip archive (a bare ``.npy`` or a pickle is refused unread);
* from the zip's end record, that its directory lists at most ``max_members``
  entries in at most ``max_directory_bytes`` (so parsing it is bounded);
* that every member is an ``.npy`` file stored plainly or deflated, unencrypted,
  whose header declares a dtype without Python objects and exactly as many data
  bytes as the zip entry holds (which are also no more than the file's size).

:meth:`Archive.read` then reads one member, with ``allow_pickle=False``.  The
caller decides which members to read and how large each may be (the declared
:class:`Member` sizes), so a file can make fastnn allocate no more than the
caller allows.  Every problem is an :class:`ArchiveError` saying what is wrong.
"""

from __future__ import annotations

import contextlib
import struct
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

_EOCD = b"PK\x05\x06"  # end of central directory record
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", _EOCD)  # an archive with members, an empty archive
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: What reading damaged zip or .npy bytes raises (ArchiveError is a ValueError).
_DAMAGE = (OSError, ValueError, EOFError, zipfile.BadZipFile, struct.error, zlib.error)


class ArchiveError(ValueError):
    """The file is not an archive this module reads; the message says why."""


class Member(NamedTuple):
    """What a member's ``.npy`` header declares (read without reading its data)."""

    shape: tuple
    dtype: np.dtype
    nbytes: int


def _directory_extent(fh, file_size: int) -> tuple[int, int]:
    """``(entries, bytes)`` of the zip directory, from the end record (zip64 too)."""
    tail_len = min(file_size, _EOCD_SIZE + _MAX_COMMENT)
    fh.seek(file_size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(_EOCD)  # the rule zipfile itself uses to find the record
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise ArchiveError("not a zip archive, or truncated (no end-of-directory record)")
    entries, size, offset = struct.unpack("<HII", tail[at + 10 : at + 20])
    if entries == 0xFFFF or size == 0xFFFFFFFF or offset == 0xFFFFFFFF:  # zip64: the real counts elsewhere
        locator = tail[at - 20 : at] if at >= 20 else b""
        if not locator.startswith(_EOCD64_LOCATOR):
            raise ArchiveError("damaged zip64 end-of-directory record")
        (record_at,) = struct.unpack("<Q", locator[8:16])
        fh.seek(min(record_at, file_size))
        record = fh.read(56)
        if len(record) < 56 or not record.startswith(_EOCD64):
            raise ArchiveError("damaged zip64 end-of-directory record")
        entries, size = struct.unpack("<QQ", record[32:48])
    return entries, size


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype, int]:
    """The shape, dtype and header length an ``.npy`` member declares (reads its header only)."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ArchiveError(f"member {info.filename!r} is .npy format {version}, which is not read")
        return shape, dtype, fh.tell()


class Archive:
    """An open, checked ``.npz`` archive: ``members`` maps each name (without ``.npy``) to its
    declared :class:`Member`; :meth:`read` reads one.  Use as a context manager."""

    def __init__(self, fh, zf: zipfile.ZipFile, members: dict):
        self._fh, self._zf, self.members = fh, zf, members

    def read(self, name: str) -> np.ndarray:
        """The member ``name`` as an array (its CRC checked, never unpickled)."""
        try:
            with self._zf.open(f"{name}.npy") as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)
        except _DAMAGE as exc:
            raise ArchiveError(f"member {name!r} cannot be read ({exc})") from None

    def close(self) -> None:
        self._zf.close()
        self._fh.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_archive(path, *, max_members: int, max_directory_bytes: int) -> Archive:
    """Open ``path`` as an ``.npz`` archive and check it (see the module) without reading any data.

    Raises :class:`ArchiveError` for anything but a well-formed archive within the
    bounds; ``FileNotFoundError``, ``IsADirectoryError`` and ``PermissionError`` pass through.
    """
    with contextlib.ExitStack() as on_error:
        fh = on_error.enter_context(open(path, "rb"))
        archive = _checked(fh, max_members, max_directory_bytes)
        on_error.pop_all()  # checked: the archive owns the file now
    return archive


def _checked(fh, max_members: int, max_directory_bytes: int) -> Archive:
    magic = fh.read(len(_NPY_MAGIC))
    if magic.startswith(_NPY_MAGIC):
        raise ArchiveError("a single NumPy array (.npy), not an .npz archive")
    if not magic.startswith(_ZIP_MAGICS):
        raise ArchiveError("not an .npz archive (and never unpickled)")
    file_size = fh.seek(0, 2)
    entries, directory = _directory_extent(fh, file_size)
    if entries > max_members or directory > max_directory_bytes:
        raise ArchiveError(
            f"its directory lists {entries} members in {directory} bytes, over the "
            f"limit of {max_members} members in {max_directory_bytes} bytes"
        )
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except _DAMAGE as exc:
        raise ArchiveError(f"damaged zip archive ({exc})") from None
    try:
        members = _declared(zf, file_size, max_members)
    except _DAMAGE as exc:
        zf.close()
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"damaged archive member ({exc})") from None
    return Archive(fh, zf, members)


def _declared(zf: zipfile.ZipFile, file_size: int, max_members: int) -> dict:
    infos = zf.infolist()
    if len(infos) > max_members:  # the end record may under-count; the directory does not lie
        raise ArchiveError(f"it holds {len(infos)} members, over the limit of {max_members}")
    members = {}
    for info in infos:
        name = info.filename
        if not name.endswith(".npy") or name[:-4] in members:
            raise ArchiveError(f"member {name!r} is not one .npy array of a NumPy archive")
        if info.flag_bits & 0x1 or info.compress_type not in _METHODS:
            raise ArchiveError(f"member {name!r} is encrypted or compressed in a way .npz files are not")
        if info.compress_size > file_size:
            raise ArchiveError(f"member {name!r} claims {info.compress_size} bytes in a {file_size}-byte file")
        shape, dtype, header_len = _header(zf, info)
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if dtype.hasobject:
            raise ArchiveError(f"member {name[:-4]!r} holds Python objects (pickles), which are never loaded")
        if nbytes != info.file_size - header_len:
            raise ArchiveError(
                f"member {name[:-4]!r} declares {dtype} {shape}, which its "
                f"{info.file_size - header_len} data bytes do not hold"
            )
        members[name[:-4]] = Member(tuple(shape), dtype, nbytes)
    return members
