"""The Docker runtime (placeholder until it lands; see issue 4)."""

from __future__ import annotations

from stack.errors import RuntimeUnavailable
from stack.paths import Paths
from stack.settings import Settings


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: Settings, paths: Paths, *, host: str | None = None) -> None:
        self.settings, self.paths, self.host = settings, paths, host

    def check(self) -> None:
        raise RuntimeUnavailable("the docker runtime is not available in this build yet")
