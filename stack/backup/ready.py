"""Waiting for restored components to be ready again, through the shared readiness module."""

from __future__ import annotations

from stack.backup.errors import BackupError
from stack.health import diagnose, wait_until_ready
from stack.runtime.base import Runtime


def wait_ready(runtime: Runtime, components: list[str], *, timeout: float = 180) -> None:
    """Return once every component answers its readiness probe; BackupError with the diagnosis of
    the first one that does not."""
    if not components:
        return
    report = wait_until_ready(runtime, components, timeout=timeout)
    if report.ok:
        return
    failed = report.failed[0]
    diagnosis = diagnose(runtime, failed, report.states.get(failed.component))
    hint = diagnosis.hints[0] if diagnosis.hints else f"see `stack logs {failed.component}`"
    raise BackupError(f"{failed.component} is not ready after the restore: {failed.detail}", hint=hint)
