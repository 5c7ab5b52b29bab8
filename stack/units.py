"""Durations and sizes as users write them in stack.yaml (`15d`, `72h`, `512M`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
# Prometheus' own duration syntax: units in descending order, each at most once.
# Digits are bounded (20 is past any int64) so that a number of thousands of digits is "not a
# duration" rather than a slow or failing int conversion.
_N = r"(\d{1,20})"
_DURATION = re.compile(rf"^(?:{_N}y)?(?:{_N}w)?(?:{_N}d)?(?:{_N}h)?(?:{_N}m)?(?:{_N}s)?(?:{_N}ms)?$")
_SIZE = re.compile(r"^(\d{1,20}(?:\.\d{1,20})?)\s*([kmgt]?)(i?b?)$", re.IGNORECASE)
_SIZE_FACTOR = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration such as `15d`, `1h30m` or `500ms`.

    Raises ValueError with a message fit for the user.
    """
    value = str(text).strip()
    match = _DURATION.match(value)
    if not value or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration")
    units = ("y", "w", "d", "h", "m", "s", "ms")
    return sum(int(n) * _DURATION_UNITS[u] for n, u in zip(match.groups(), units, strict=True) if n)


def parse_since(text: str) -> datetime:
    """`10m` (a duration back from now) or an RFC 3339 time, as `--since` takes them.

    Raises ValueError with a message fit for the user.
    """
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration nor a time (e.g. 10m, 2h, 2026-11-28T15:00:00Z)") from None
    return moment if moment.tzinfo else moment.astimezone()


def go_duration(seconds: float) -> str:
    """A duration in Go's syntax (no days: Tempo and Go flags reject `d`), e.g. `72h`."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def parse_size(text: str | int) -> int:
    """Bytes in a size such as `512M`, `1G`, `1.5GiB` or a plain number of bytes (binary units)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a size")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * _SIZE_FACTOR[unit])


def format_mib(size: int) -> str:
    """A size as whole mebibytes in the `512M` form Docker and Compose accept."""
    return f"{max(1, round(size / 1024**2))}M"
