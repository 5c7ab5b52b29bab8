"""`stack backup verify`: structure, manifest and every checksum, without writing anything."""

from __future__ import annotations

from pathlib import Path

from stack.backup.reader import ReadReport, read_archive
from stack.backup.registry import ARCHIVE_ROOTS
from stack.backup.streams import ProgressFn


def _no_progress(_: int) -> None:
    pass


def verify_backup(path: Path, *, on_bytes: ProgressFn = _no_progress) -> ReadReport:
    """Read the archive end to end; BadArchive (one line) at the first problem."""
    return read_archive(path, allowed_roots=ARCHIVE_ROOTS, on_bytes=on_bytes)


def component_sizes(report: ReadReport) -> dict[str, tuple[int, int]]:
    """Per top-level part of the archive: (files, bytes)."""
    sizes: dict[str, tuple[int, int]] = {}
    for member in report.manifest.members:
        root = member.name.split("/")[0]
        files, size = sizes.get(root, (0, 0))
        sizes[root] = (files + (member.type == "file"), size + member.size)
    return sizes
