"""What only some runtimes can do, as Protocols: callers ask `isinstance(runtime, Ability)` and get a
typed runtime back, instead of probing attributes by name.

Every runtime follows `Runtime` (base.py); these are the extras. A runtime has an ability by having
the members, nothing to inherit or register (the process runtime has `Warns`, `ChecksStart`,
`RendersItself`, `StopTimeout` and `HasTopology`; Docker `PullsImages` and `ChecksWhileListing`;
Swarm those two as well, with `RendersItself` and `ShowsPlacement`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from stack.components.base import Topology
    from stack.runtime.base import ServiceState


@runtime_checkable
class PullsImages(Protocol):
    """Pulls images itself, with progress (Docker); others have nothing to pull."""

    def missing_images(self) -> list[str]: ...

    def pull_images(self, images: list[str], on_progress: Callable[[Any], None] | None = None) -> None: ...


@runtime_checkable
class Warns(Protocol):
    """Has findings that do not stop a start (the process runtime: binary versions), to be shown."""

    warnings: list[str]


@runtime_checkable
class ChecksStart(Protocol):
    """Can tell, before anything is written or started, what would stop the start (missing binaries)."""

    def check_start(self) -> None: ...


@runtime_checkable
class RendersItself(Protocol):
    """Writes what it runs itself (its own files, a stack file), so `up` renders no compose project."""

    renders_itself: bool


@runtime_checkable
class StopTimeout(Protocol):
    """Has a configured time to let each component stop before it is killed, in seconds."""

    stop_timeout: float


@runtime_checkable
class ShowsPlacement(Protocol):
    """Runs tasks on several nodes (Swarm) and can say which node runs what: {service: [task rows]}."""

    def placement(self) -> dict[str, list[dict[str, str]]]: ...


@runtime_checkable
class ChecksWhileListing(Protocol):
    """Can run `check()` and `ps()` at the same time, raising the check's error first as if run in
    turn (Docker: both are child processes, and `status` pays for both every time)."""

    def checked_ps(self) -> list[ServiceState]: ...


@runtime_checkable
class HasTopology(Protocol):
    """Renders for a topology of its own, not compose's service names (the process runtime: 127.0.0.1
    and the ports given at `up`): what it rendered is what provisioning must compare with."""

    @property
    def topology(self) -> Topology: ...
