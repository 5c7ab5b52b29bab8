"""A doctor finding and the report that gathers them: plain data, rendered by the CLI layer.

Every finding has a stable id (for `--skip` and scripts), a severity and a fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    title: str
    fix: str
    component: str | None = None
    detail: str = ""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    # Checks that ran and checks that could not (with why): a clean report says what it covered.
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    target: str = "settings"

    @property
    def high(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.HIGH]

    def counts(self) -> dict[str, int]:
        return {str(s): sum(1 for f in self.findings if f.severity is s) for s in Severity}

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.id, f.component or ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": not self.high,
            "counts": self.counts(),
            "findings": [{**asdict(f), "severity": str(f.severity)} for f in self.sorted()],
            "checked": self.checked,
            "skipped": self.skipped,
        }
