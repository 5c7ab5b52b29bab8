"""Choose the runtime a command talks to: Docker (local or `ssh://` host), a Swarm stack, or local processes.

Runtimes are imported only here and only when chosen, so that code above the runtime interface
(readiness, provisioning, backup) never imports Docker libraries.
"""

from __future__ import annotations

from stack.errors import SettingsError
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.settings import Settings

RUNTIME_NAMES = ("docker", "process", "swarm")


def get_runtime(settings: Settings, paths: Paths, *, name: str | None = None, host: str | None = None) -> Runtime:
    """The runtime `name` (default: `runtime:` in stack.yaml), on `host` for Docker (`ssh://...` or a context)."""
    chosen = name or settings.runtime
    if host:
        from stack.hosttarget import docker_host_of  # `user@server` (as in make HOST=...) means SSH

        host = docker_host_of(host)
    if chosen == "docker":
        from stack.runtime.docker.runtime import DockerRuntime

        return DockerRuntime(settings, paths, host=host)
    if chosen == "swarm":
        from stack.runtime.swarm.runtime import SwarmRuntime

        return SwarmRuntime(settings, paths, host=host)
    if chosen == "process":
        if host:
            raise SettingsError("--host works with the docker runtime only", hint="drop --runtime process")
        from stack.runtime.process.runtime import ProcessRuntime

        return ProcessRuntime(settings, paths)
    raise SettingsError(f"unknown runtime {chosen!r}", hint=f"use one of: {', '.join(RUNTIME_NAMES)}")
