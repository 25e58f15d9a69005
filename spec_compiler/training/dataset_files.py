"""Data columns read from disk by rows, so a data set larger than memory trains in flat memory.

A column is one array of samples (the inputs or the labels) that is not held in memory:
`read(rows)` returns those samples as a fresh array. `.npy` files, the members of an
uncompressed `.npz` (what ``np.savez`` writes) and raw MNIST IDX files hold fixed-size
records after a header, so a batch is one ``os.preadv`` per run of consecutive rows into
one buffer. Nothing is memory-mapped: pages touched through ``np.load(mmap_mode="r")`` count
in the process's resident memory and grow it toward the file's size under random reads,
while a read into a fresh buffer leaves them in the kernel's page cache, outside it.

Columns pickle without their open file (DataLoader workers reopen it), and `np.asarray`
on one reads it whole (what code that wants the data in memory does).
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..errors import SpecError

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip member's local file header (30 bytes)


def data_error(source: str, message: str, hint: str | None = None) -> SpecError:
    """A mistake in the data: the message names the file (there is no span in a spec)."""
    return SpecError.at(None, f"{source}: {message}", hint)


class Column:
    """Samples on disk: `shape` (rows first) and `dtype` of what `read` returns."""

    shape: tuple
    dtype: np.dtype

    def read(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """The bytes the column takes once read whole."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read(np.asarray([key]))[0]
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        return self.read(np.asarray(key, dtype=np.int64))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.read(np.arange(len(self)))
        return whole if dtype is None else whole.astype(dtype, copy=False)


class RecordFile(Column):
    """Fixed-size records of `dtype` and per-row shape `shape[1:]` from byte `offset` on."""

    def __init__(self, path: str | Path, offset: int, dtype, shape: tuple):
        self.path, self.offset = str(path), int(offset)
        self.dtype, self.shape = np.dtype(dtype), tuple(int(d) for d in shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd: int | None = None
        self._pid = 0

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": 0}

    def __del__(self):
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        if not len(rows) or not self.row_bytes:
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for start, end in zip(np.concatenate(([0], breaks)), np.concatenate((breaks, [len(rows)]))):
            self._read_into(buffer[start * self.row_bytes:end * self.row_bytes],
                            self.offset + int(rows[start]) * self.row_bytes)
        return out

    def _read_into(self, view: memoryview, offset: int) -> None:
        done, fd = 0, self._file()
        while done < len(view):
            got = os.preadv(fd, [view[done:]], offset + done)
            if got <= 0:
                raise OSError(f"{self.path}: the file ends before its header says")
            done += got


class ScaledColumn(Column):
    """Another column's values as float32 times `factor` (IDX images: bytes to [0, 1])."""

    def __init__(self, base: Column, factor: float):
        self.base, self.factor = base, factor
        self.shape, self.dtype = base.shape, np.dtype(np.float32)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return self.base.read(rows).astype(np.float32) * np.float32(self.factor)


def _npy_header(handle, where: str) -> tuple[np.dtype, tuple, bool]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"{where}: unsupported .npy version {version}")
    return np.dtype(dtype), tuple(shape), bool(fortran)


def npy_column(path: Path, start: int = 0) -> RecordFile | None:
    """The .npy array at byte `start` of `path` as a RecordFile; None when its rows are not
    contiguous records (Fortran order, no rows, objects): then it is read whole."""
    with open(path, "rb") as handle:
        handle.seek(start)
        dtype, shape, fortran = _npy_header(handle, str(path))
        offset = handle.tell()
    if dtype.hasobject or not shape or (fortran and len(shape) > 1):
        return None
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if os.path.getsize(path) < expected:
        raise ValueError(f"{path}: the file is shorter than its header says")
    return RecordFile(path, offset, dtype, shape)


def npz_column(path: Path, member: str) -> RecordFile | None:
    """An array of an .npz stored without compression (np.savez) as a RecordFile; None for a
    compressed member (np.savez_compressed), which must be read whole."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        fields = ZIP_LOCAL_HEADER.unpack(handle.read(ZIP_LOCAL_HEADER.size))
    name_length, extra_length = fields[-2], fields[-1]
    return npy_column(path, info.header_offset + ZIP_LOCAL_HEADER.size + name_length + extra_length)


def idx_column(path: Path, header: bytes) -> RecordFile:
    """A raw (not gzipped) IDX file; `header` holds its first bytes (magic number and dims)."""
    ndim = header[3]
    dims = struct.unpack(f">{ndim}I", header[4:4 + 4 * ndim])
    return RecordFile(path, 4 + 4 * ndim, IDX_DTYPES[header[2]], dims)

