"""Files and JSON that others wrote, read bounded; files written so that nothing is ever half-written."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

# The deepest JSON the stack reads from others: a Grafana dashboard nests about a dozen levels, an
# archive's manifest four. The same bound as stack.yaml's (yamlio.MAX_DEPTH).
MAX_JSON_DEPTH = 64


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Write `data` to `path` through a temporary file in the same directory, then rename.

    The file gets `mode` before any content is written, so a secret is never readable by others,
    not even for a moment.
    """
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable_dir(path: Path) -> str | None:
    """Return why `path` cannot be used as an output directory, or None when it can."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return "no existing parent directory"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


class UnreadableFile(ValueError):
    """A file the user named that is not a regular file, or is larger than it can sensibly be."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path`, refusing devices, FIFOs and anything over `limit`.

    The type is checked on the opened descriptor (O_NONBLOCK, so a FIFO cannot block the open), and
    at most `limit + 1` bytes are ever read, so `/dev/zero` or a growing file cannot hang us.
    OSError for a file that cannot be opened; UnreadableFile (one clause, no path) for the rest.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("is not a regular file")
        if info.st_size > limit:
            raise UnreadableFile(f"is larger than {size_text(limit)}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFile(f"is larger than {size_text(limit)}")
    return data


def size_text(limit: int) -> str:
    return f"{limit // 1024**2} MiB" if limit % 1024**2 == 0 else f"{limit // 1024} KiB"


class JsonTooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH levels (a ValueError, like every other bad JSON)."""


def parse_json(data: str | bytes) -> Any:
    """JSON someone else wrote (a dashboard file, an archive's manifest or documents), as json.loads
    reads it, with nesting bounded: every failure is a ValueError.

    The decoder recurses once per level, so a few thousand `[` raised RecursionError, which is no
    ValueError and reached the user as a crash (exit 3); and whatever walks the model afterwards
    recurses too. Refused past MAX_JSON_DEPTH, checked without recursion.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    level: list[Any] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise JsonTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels")
        inner: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                inner.extend(child for child in item.values() if isinstance(child, dict | list))
            elif isinstance(item, list):
                inner.extend(child for child in item if isinstance(child, dict | list))
        level = inner
    return value
