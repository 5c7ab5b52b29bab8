"""docs/metrics.md read as the contract it is: which labels the catalog lists for each metric, and
which metrics and labels a PromQL expression uses (for the dashboard and rule pack tests)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS_CATALOG = Path(__file__).parents[2] / "docs" / "metrics.md"
# Labels no catalog row needs to promise: the target's, the histogram's, and Prometheus' own ALERTS.
UNIVERSAL_LABELS = {"job", "instance", "le", "__name__"}
BUILTIN_METRICS = {"ALERTS": {"alertname", "alertstate", "severity", "service"}}


def catalog_labels(text: str) -> dict[str, set[str]]:
    """docs/metrics.md as metric -> the words in backticks of its `labels` cells (label names and
    the values the catalog gives for them), over every table row naming the metric."""
    found: dict[str, set[str]] = {}
    column: int | None = None
    previous: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] in ("metric", "series"):
            column = cells.index("labels") if "labels" in cells else None
            continue
        if column is None or column >= len(cells):
            continue
        cell = cells[column]
        words = previous if cell == "as above" else set(re.findall(r"\w+", " ".join(re.findall(r"`([^`]+)`", cell))))
        for name in re.findall(r"`([a-zA-Z_:][\w:]*)`", cells[0]):
            found.setdefault(name, set()).update(words)
        previous = words
    return found


def labels_used(expr: str) -> set[str]:
    """Label names a PromQL expression groups, matches or joins on."""
    names = set(re.findall(r'[{,]\s*(\w+)\s*(?:=~|!~|!=|=)\s*"', expr))
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        names |= {name.strip() for name in group.split(",") if name.strip()}
    return names


def metrics_read(expr: str, catalog: dict[str, set[str]]) -> list[str]:
    """The catalogued (or built-in) metrics an expression reads, histograms by their base name."""
    tokens = set(re.findall(r"[a-zA-Z_:][\w:]*", expr))
    return [
        name
        for name in [*catalog, *BUILTIN_METRICS]
        if name in tokens or {name + suffix for suffix in ("_bucket", "_count", "_sum")} & tokens
    ]
