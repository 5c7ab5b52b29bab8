"""Where the bundled `compose/`, `configs/` and `provisioning/` trees are.

From a source checkout or an editable install they are the repository's own top-level folders;
a wheel carries them as `stack/_bundled/<name>`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def bundled(name: str) -> Path:
    """The directory of the bundled tree `name` (`compose`, `configs` or `provisioning`)."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled directory {name!r} is missing from the installation")


def repo_root() -> Path:
    """The source checkout (used by tests and docs generators, not at run time)."""
    return _PACKAGE.parent
