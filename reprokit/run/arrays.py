"""A run's final arrays (weights, predictions), memory-mapped from its ``.npz`` file instead of loaded whole.

The run process writes its final arrays with ``np.savez`` (uncompressed): each
member of the zip file is an ``.npy`` file stored as it is, so its data lies
contiguously in the file and can be mapped. :func:`open_arrays` gives a
read-only mapping from name to a memory-mapped array; nothing is read until
it is used, and :func:`release` gives the pages of an array back after a
chunk of it was read, so comparing two 100 M-parameter models keeps the
parent's memory flat (file-backed pages count in its resident size while
they are mapped). A member that cannot be mapped (compressed, or of an object
dtype) is read whole, as ``np.load`` would.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["MappedArrays", "open_arrays", "release"]

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header: 30 bytes, name and extra lengths last
_LOCAL_MAGIC = b"PK\x03\x04"


class MappedArrays(Mapping[str, np.ndarray]):
    """The arrays of one ``.npz`` file by name (``weights/model/kernel``), each mapped on first use."""

    def __init__(
        self, path: Path, file: IO[bytes], archive: zipfile.ZipFile, members: Mapping[str, zipfile.ZipInfo]
    ) -> None:
        self._path, self._file, self._archive, self._members = path, file, archive, members
        self._mapped: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        found = self._mapped.get(key)
        if found is None:
            found = self._mapped[key] = self._load(self._members[key])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    @property
    def files(self) -> list[str]:
        """The names, as ``np.load``'s ``NpzFile.files`` gives them."""
        return list(self._members)

    def _load(self, info: zipfile.ZipInfo) -> np.ndarray:
        mapped = self._mapped_member(info) if info.compress_type == zipfile.ZIP_STORED else None
        if mapped is not None:
            return mapped
        with self._archive.open(info) as member:
            loaded: np.ndarray = npy_format.read_array(member, allow_pickle=False)
        return loaded

    def _mapped_member(self, info: zipfile.ZipInfo) -> np.ndarray | None:
        """The member's array mapped where it lies in the file (None: an object array, or no mappable data)."""
        self._file.seek(info.header_offset)
        header = self._file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
            return None
        *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        self._file.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
        version = npy_format.read_magic(self._file)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(self._file)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(self._file)
        else:
            return None  # a newer layout: read whole
        if dtype.hasobject:
            return None
        if int(np.prod(shape, dtype=np.int64)) == 0:
            return np.zeros(shape, dtype=dtype, order="F" if fortran else "C")
        mapped: np.ndarray = np.memmap(
            self._path, dtype=dtype, mode="r", offset=self._file.tell(), shape=shape, order="F" if fortran else "C"
        )
        return mapped


@contextlib.contextmanager
def open_arrays(path: Path) -> Iterator[MappedArrays]:
    """The arrays of the ``.npz`` file at ``path``, mapped lazily while the context lasts."""
    with open(path, "rb") as file, zipfile.ZipFile(file) as archive:
        members = {
            info.filename.removesuffix(".npy"): info for info in archive.infolist() if info.filename.endswith(".npy")
        }
        yield MappedArrays(path, file, archive, members)


def release(array: Any) -> None:
    """Gives back the pages of a memory-mapped ``array`` (or of the mapped array it views); else does nothing.

    The data stays readable: the pages are read from the file again if they are used again.
    """
    base = array
    while base is not None:
        handle = getattr(base, "_mmap", None)
        if isinstance(handle, mmap.mmap):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                handle.madvise(mmap.MADV_DONTNEED)
            return
        base = getattr(base, "base", None)
