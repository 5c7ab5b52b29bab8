"""The logs of local components: `<root>/logs/<component>.log`, read whole, from a time, or followed."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from stack.errors import UsageError
from stack.units import parse_since

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


def read_log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (reading only its end)."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        block = min(size, max(65536, lines * 400))
        handle.seek(size - block)
        text = handle.read().decode("utf-8", errors="replace")
        return text.splitlines()[-lines:] if lines else []
    return []


def _since(text: str) -> datetime:
    """`10m` (a duration back from now) or an RFC 3339 time (the CLI has checked it already)."""
    try:
        return parse_since(text)
    except ValueError as exc:
        raise UsageError(f"--since {exc}") from None


def lines_after(lines: list[str], cutoff: datetime) -> list[str]:
    """The lines logged at or after `cutoff`; a line without a time goes with the line before it."""
    kept: list[str] = []
    keep = True
    for line in lines:
        found = _TIMESTAMP.search(line)
        if found:
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
                keep = (moment if moment.tzinfo else moment.astimezone()) >= cutoff
        if keep:
            kept.append(line)
    return kept


def _read_lines(path: Path, offset: int = 0) -> tuple[list[str], int]:
    """Complete lines from `offset` on, and the offset after the last complete one."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, 2) < offset:
                offset = 0  # a new run started a new file
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", errors="replace").splitlines(), offset + end


def read_logs(
    files: list[tuple[str, Path]],
    *,
    prefix: bool,
    tail: int | None = None,
    since: str | None = None,
    follow_while: Callable[[list[str]], bool] | None = None,
) -> Iterator[str]:
    """The lines of each (component, log file), `component | ` before each when `prefix`.

    With `follow_while`, new lines keep coming for as long as it says (asked with the components).
    """
    cutoff = _since(since) if since else None
    positions: dict[str, int] = {}
    for name, path in files:
        lines, positions[name] = _read_lines(path)
        if cutoff is not None:
            lines = lines_after(lines, cutoff)
        if tail is not None:
            lines = lines[-tail:] if tail else []
        for line in lines:
            yield f"{name} | {line}" if prefix else line
    if follow_while is None:
        return
    while True:
        for name, path in files:
            lines, positions[name] = _read_lines(path, positions.get(name, 0))
            for line in lines:
                yield f"{name} | {line}" if prefix else line
        if not follow_while([name for name, _ in files]):
            return
        time.sleep(0.2)
