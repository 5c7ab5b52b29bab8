"""What backing up and restoring one component means: the shared shape of the per-component steps."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from stack.backup.archive import ArchiveWriter
from stack.backup.errors import BackupError
from stack.backup.spool import SectionSpool
from stack.components import get_component
from stack.paths import Paths
from stack.runtime.base import HttpReply, Runtime
from stack.settings import Settings


def _nothing(_: str) -> None:
    pass


@dataclass
class StepContext:
    runtime: Runtime
    settings: Settings
    paths: Paths
    # Called with a short description of what is happening now ("snapshot", "copying data").
    on_phase: Callable[[str], None] = _nothing
    # Called with byte counts as state flows back into a component.
    on_bytes: Callable[[int], None] = lambda _: None
    notes: list[str] = field(default_factory=list)
    # A section a signal cannot cut (stack.interrupts); no-op unless a command installed a guard.
    critical: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext

    def http(self, service: str, path: str, *, method: str = "GET", body: Any = None, timeout: float = 30) -> HttpReply:
        """A request to the component's main (`http`) port; JSON bodies are encoded."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            return self.runtime.http(service, "http", path, method=method, body=data, headers=headers, timeout=timeout)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise BackupError(
                f"{service}: {method} {path}: no answer ({exc})", hint="is the stack up? `stack status`"
            ) from None


def state_path(component: str) -> str:
    """Where the component keeps its state (its data volume's path inside the container)."""
    return get_component(component).state["data"]


def expect_ok(reply: HttpReply, service: str, what: str, *, hint: str | None = None) -> Any:
    """The JSON body of a 2xx reply; BackupError naming the call otherwise."""
    if not 200 <= reply.status < 300:
        raise BackupError(f"{service}: {what} failed: HTTP {reply.status} {reply.text()[:200]}", hint=hint)
    if not reply.body:
        return None
    try:
        return json.loads(reply.body)
    except ValueError:
        raise BackupError(f"{service}: {what}: the reply is not JSON") from None


class Step:
    """One component's backup and restore. Subclasses set `component` and override what they do."""

    component: str
    # Restoring it means stopping the service and replacing files of its state.
    offline: bool = True

    def backup(self, ctx: StepContext, writer: ArchiveWriter) -> None:
        raise NotImplementedError

    def restore_offline(self, ctx: StepContext, spool: SectionSpool) -> None:
        """Put the state back while the service is stopped."""

    def restore_online(self, ctx: StepContext, spool: SectionSpool) -> None:
        """Put the state back through the running service's API."""

    def after_restore(self, ctx: StepContext, mode: str) -> None:
        """Once everything restored is ready again (e.g. reconcile credentials)."""

    def restore_mode(self, selected: set[str], spool: SectionSpool) -> str:
        """`offline` (stop, replace files, start) or `online` (through the API, no stop)."""
        return "offline" if self.offline else "online"
