"""The byte streams a backup archive passes through: hashing, bounding, counting, and tar headers.

Shared by the writer (`archive`), the reader (`reader`) and the restore spool (`spool`).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from typing import IO, Any

from stack.backup.errors import BadArchive

COPY_BUFSIZE = 1024 * 1024

ProgressFn = Callable[[int], None]


def no_progress(_: int) -> None:
    pass


class HashingReader:
    """Hashes and counts what passes through."""

    def __init__(self, raw: IO[bytes], on_bytes: ProgressFn) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        self.on_bytes(len(data))
        return data


class BoundedReader:
    """Refuses to produce more than `limit` bytes (decompression bombs)."""

    def __init__(self, raw: Any, limit: int, where: str) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0
        self.where = where

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size is not None and size >= 0 else COPY_BUFSIZE)
        self.count += len(data)
        if self.count > self.limit:
            raise BadArchive(
                f"{self.where}: decompresses beyond {self.limit // 1024**2} MiB, more than a stack backup "
                f"of this size can hold",
                hint="it is corrupted or not a stack backup",
            )
        return data


class BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = bytes(self.data[self.offset : end])
        self.offset += len(chunk)
        return chunk


def copy_info(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """A fresh header for `name`; owners are kept (a container's user must own its restored state)."""
    out = tarfile.TarInfo(name)
    out.size = info.size if info.isreg() else 0
    out.mode = info.mode
    out.mtime = info.mtime
    out.uid, out.gid, out.uname, out.gname = info.uid, info.gid, info.uname, info.gname
    out.type = info.type if not info.isreg() else tarfile.REGTYPE
    out.linkname = info.linkname
    return out


class CountingRaw(io.RawIOBase):
    def __init__(self, raw: IO[bytes], on_bytes: ProgressFn) -> None:
        self.raw = raw
        self.on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.on_bytes(count or 0)
        return count or 0

    def close(self) -> None:
        self.raw.close()
        super().close()
