"""Waiting for restored components to answer their readiness probe again.

Uses each component's own probe (stack.components) through the runtime; once the shared
readiness module (stack.health) lands, this defers to it.
"""

from __future__ import annotations

from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

from stack.backup.errors import BackupError
from stack.components import get_component
from stack.runtime.base import Runtime


def _ready(runtime: Runtime, component: str) -> bool:
    probe = get_component(component).readiness
    try:
        return runtime.http(component, probe.port, probe.path, timeout=3).status == 200
    except (ConnectionError, TimeoutError, OSError):
        return False


def wait_ready(runtime: Runtime, components: list[str], *, timeout: float = 180) -> None:
    """Return once every component answers its readiness probe; BackupError naming the first that does not."""
    for component in components:
        waiter = retry(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.5),
            retry=retry_if_result(lambda ok: not ok),
        )(_ready)
        try:
            waiter(runtime, component)
        except RetryError:
            raise BackupError(
                f"{component} did not become ready within {timeout:.0f} s after the restore",
                hint=f"see `stack logs {component}`",
            ) from None
