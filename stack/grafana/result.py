"""What a provisioning run did: counts per kind of object, requests and writes, notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "skipped": self.skipped}


@dataclass
class ProvisionResult:
    grafana: str
    version: str = ""
    folders: Counts = field(default_factory=Counts)
    datasources: Counts = field(default_factory=Counts)
    dashboards: Counts = field(default_factory=Counts)
    # Grafana's "send alerts to" setting (one item, when the stack manages it).
    alerting: Counts = field(default_factory=Counts)
    requests: int = 0
    writes: int = 0
    notes: list[str] = field(default_factory=list)

    def totals(self) -> Counts:
        total = Counts()
        for part in (self.folders, self.datasources, self.dashboards, self.alerting):
            total.created += part.created
            total.updated += part.updated
            total.unchanged += part.unchanged
            total.skipped += part.skipped
        return total

    def summary(self) -> str:
        total = self.totals()
        text = (
            f"{total.created} created, {total.updated} updated, {total.unchanged} unchanged"
            f" ({self.folders_line()}; {self.requests} requests, {self.writes} writes)"
        )
        return text + (f", {total.skipped} skipped" if total.skipped else "")

    def folders_line(self) -> str:
        def count(part: Counts) -> int:
            return part.created + part.updated + part.unchanged + part.skipped

        line = (
            f"{count(self.folders)} folders, {count(self.datasources)} datasources, {count(self.dashboards)} dashboards"
        )
        return line + (", alert delivery" if count(self.alerting) else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "grafana": self.grafana,
            "version": self.version,
            "folders": self.folders.as_dict(),
            "datasources": self.datasources.as_dict(),
            "dashboards": self.dashboards.as_dict(),
            "alerting": self.alerting.as_dict(),
            "requests": self.requests,
            "writes": self.writes,
            "notes": self.notes,
        }
