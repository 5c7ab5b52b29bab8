"""The process runtime (placeholder until it lands; see issue 7)."""

from __future__ import annotations

from stack.errors import RuntimeUnavailable
from stack.paths import Paths
from stack.settings import Settings


class ProcessRuntime:
    name = "process"

    def __init__(self, settings: Settings, paths: Paths) -> None:
        self.settings, self.paths = settings, paths

    def check(self) -> None:
        raise RuntimeUnavailable("the process runtime is not available in this build yet")
