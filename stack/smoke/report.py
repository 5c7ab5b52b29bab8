"""What `stack smoke` reports: one check per backend, passed, failed or skipped (and why)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from stack.errors import StackError


class Result(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SmokeCheck:
    check: str
    component: str
    result: Result
    seconds: float | None = None  # send to queryable
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result.value}


@dataclass(frozen=True)
class SmokeReport:
    smoke_id: str
    trace_id: str
    checks: list[SmokeCheck]

    @property
    def ok(self) -> bool:
        return all(check.result is not Result.FAILED for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "smoke_id": self.smoke_id,
            "trace_id": self.trace_id,
            "checks": [check.as_dict() for check in self.checks],
        }


class SmokeError(StackError):
    """Nothing could be sent (the Collector is disabled, down or unreachable)."""
