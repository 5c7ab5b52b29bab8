"""The runtime interface: what every runtime (docker, process, remote) offers the rest of the tool."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from stack.errors import StackError
from stack.net.http import HttpReply
from stack.tools import ToolResult


@dataclass(frozen=True)
class ServiceState:
    """One component as the runtime sees it."""

    name: str
    # running | restarting | exited | created | paused | dead | missing (never created)
    state: str
    # healthy | unhealthy | starting | None (no healthcheck)
    health: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: datetime | None = None
    image: str | None = None
    # Why it does not run, in the scheduler's words (Swarm: a port taken on a node, no node that fits).
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class ContainerHealth:
    """A container's own healthcheck verdict, counting only the checks run since its current start."""

    # healthy | unhealthy | starting
    status: str
    # What the last check printed (its error, when it failed).
    output: str = ""


@runtime_checkable
class ReportsHealth(Protocol):
    """A runtime whose engine runs the components' healthchecks itself (Docker): readiness of a port
    that is not published reads that verdict rather than running a probe inside someone else's image."""

    def container_health(self, service: str) -> ContainerHealth | None:
        """The verdict since the current start, or None when there is no healthcheck or no container."""
        ...


_ADDRESS_IN_USE = re.compile(r":(\d+): bind: address already in use")


class StartupFailure(StackError):
    """A component exited while the runtime started it: its exit code and the last lines of its log.

    Plain data: whoever shows it builds the diagnosis (health.startup_diagnosis).
    """

    def __init__(self, component: str, exit_code: int | None, log: Path, tail: list[str]) -> None:
        code = f"code {exit_code}" if exit_code is not None else "an unknown code"
        last = next((line.strip() for line in reversed(tail) if line.strip()), "its log is empty")
        super().__init__(
            f"{component} exited during start-up with {code}: {last}",
            hint=f"its last {len(tail)} log lines are in {log} (`stack logs {component}`)",
        )
        # Not `exit_code`: that is the CLI's own exit status, which a StackError carries.
        self.component, self.component_exit_code, self.log, self.tail = component, exit_code, log, tail
        taken = next((m for line in tail if (m := _ADDRESS_IN_USE.search(line))), None)
        self.taken_port = int(taken.group(1)) if taken else None


@runtime_checkable
class Runtime(Protocol):
    """Everything the rest of the tool may ask of a runtime.

    Errors are `StackError` subclasses (`RuntimeUnavailable` when the engine or binaries are
    missing) carrying the command and its stderr, never a raw library exception.
    """

    name: str

    def check(self) -> None:
        """Raise RuntimeUnavailable, with how to fix it, when this runtime cannot be used here."""
        ...

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        """Create and start the services (all when None) of the rendered project; do not wait."""
        ...

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        """Stop and remove the services; delete their state only when `volumes`."""
        ...

    def stop(self, services: list[str], *, timeout: float = 30) -> None: ...

    def start(self, services: list[str]) -> None: ...

    def ps(self) -> list[ServiceState]:
        """The state of every service of the project (missing ones included)."""
        ...

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        """Log lines of one service (or all, prefixed with the service name)."""
        ...

    def http(
        self,
        service: str,
        port: str,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5,
    ) -> HttpReply:
        """An HTTP request to a component's port (a PortSpec name), however the runtime reaches it:
        a published port, a tunnel, or a request made from inside the project's network (so that
        unpublished APIs, such as Prometheus' admin API, stay unpublished).

        Raises ConnectionError (or TimeoutError) when nothing answers.
        """
        ...

    def base_url(self, service: str, port: str) -> str | None:
        """A URL this machine can open directly for the port (for users and API clients), or None."""
        ...

    def copy_out(self, service: str, path: str) -> IO[bytes]:
        """A tar stream of `path` inside the service's state (works on shell-less images)."""
        ...

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Unpack a tar stream into `path` inside the service's state."""
        ...

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Make the state directory `path` (one of the component's `state` paths) hold exactly what
        the tar stream holds: nothing that was there before remains. The service must be stopped.

        Where the runtime can, a failure while unpacking puts the previous state back (the error
        is raised still); where it cannot, the error says that the previous state is gone.
        """
        ...

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        """Run a command in the service's context (its container, or beside its process)."""
        ...
