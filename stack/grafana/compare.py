"""Whether what Grafana stores already holds what provisioning would write."""

from __future__ import annotations

from typing import Any


def contains(existing: Any, desired: Any) -> bool:
    """Whether `existing` (what Grafana stores) already holds everything in `desired`: keys Grafana
    adds on its own (defaults, ids) are no reason to write, and a `null` it drops is no difference."""
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(
            contains(existing[key], value) if key in existing else value is None for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(existing, list)
            and len(existing) == len(desired)
            and all(contains(e, d) for e, d in zip(existing, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(existing, bool):
        return existing is desired
    return bool(existing == desired)
