"""Version strings as programs print them, read one way (packaging's `Version`) everywhere.

Engines, Compose, Grafana and Alertmanager print versions that are not always PEP 440
(`2.40.3-desktop.1`, `v28.5.2`): what cannot be read whole is read by the release numbers it starts
with, which is what every minimum-version check compares.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

# The oldest Compose whose inline `configs: content:` stack renders (local runtime and deploy alike).
MIN_COMPOSE = Version("2.23.1")

_LEADING_RELEASE = re.compile(r"v?(\d+(?:\.\d+)*)")
_RELEASE_IN_TEXT = re.compile(r"\bv?(\d+\.\d+\.\d+)")


def parse_version(text: str | None) -> Version | None:
    """`v2.23.1` -> 2.23.1, `2.40.3-desktop.1` -> 2.40.3; None when `text` holds no version."""
    text = (text or "").strip()
    try:
        return Version(text)
    except InvalidVersion:
        pass
    leading = _LEADING_RELEASE.match(text)
    return Version(leading.group(1)) if leading else None


def release(text: str | None) -> str | None:
    """The x.y.z a version starts with: `v3.14.0` -> `3.14.0`, `3.1.0-alpine` -> `3.1.0`; None when it
    has fewer than three numbers (`2.8`) or reads as no version (`latest`)."""
    version = parse_version(text)
    if version is None or len(version.release) < 3:
        return None
    return ".".join(str(number) for number in version.release[:3])


def version_in(text: str) -> str | None:
    """The first x.y.z in a program's `--version` output (`prometheus, version 2.42.0+ds` -> `2.42.0`)."""
    found = _RELEASE_IN_TEXT.search(text)
    return found.group(1) if found else None


def at_least(text: str | None, minimum: Version) -> bool:
    """True when `text` reads as a version no older than `minimum` (False when it does not read)."""
    version = parse_version(text)
    return version is not None and version >= minimum
