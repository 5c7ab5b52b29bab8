"""`--keep N`: prune the oldest archives of this stack in a directory, never anything else."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from stack.backup.archive import SUFFIX


def archive_name(project: str, when: datetime) -> str:
    """`<project>-<UTC time>.tar.zst`: sorting the names sorts the archives by age."""
    return f"{project}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"


def _pattern(project: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(project)}-(\d{{8}}T\d{{6}}Z)(?:-(\d+))?{re.escape(SUFFIX)}$")


def archives_of(directory: Path, project: str) -> list[Path]:
    """This stack's archives in `directory` (by the name `stack backup` gives them), oldest first."""
    pattern = _pattern(project)
    found = []
    for path in directory.iterdir() if directory.is_dir() else []:
        match = pattern.match(path.name)
        if match and path.is_file():
            found.append((match.group(1), int(match.group(2) or 0), path))
    return [path for *_, path in sorted(found)]


def free_name(directory: Path, project: str, when: datetime) -> Path:
    """A generated name not taken yet: backups within one second get -1, -2, ... counting up from
    the highest one present, so that name order stays age order even after pruning."""
    base = archive_name(project, when)
    stamp = base[len(project) + 1 : -len(SUFFIX)]
    pattern = _pattern(project)
    counters = [
        int(match.group(2) or 0)
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := pattern.match(path.name)) and match.group(1) == stamp
    ]
    if not counters:
        return directory / base
    return directory / base.replace(SUFFIX, f"-{max(counters) + 1}{SUFFIX}")


def prune(directory: Path, project: str, keep: int, *, protect: Path) -> list[Path]:
    """Delete the oldest archives of `project` so that `keep` remain; `protect` (the new one) always stays."""
    archives = [path for path in archives_of(directory, project) if path.resolve() != protect.resolve()]
    room = max(keep - 1, 0)
    doomed = archives[: max(len(archives) - room, 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
