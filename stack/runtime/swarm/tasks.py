"""Swarm's services and tasks read into the runtime interface's ServiceState, and the states that
matter while Swarm replaces a service's tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stack.errors import StackError
from stack.imageref import ImageRef
from stack.runtime.base import ServiceState
from stack.runtime.docker.states import parse_time

NAMESPACE_LABEL = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"
# A task that fails or is refused: its service will not become ready by waiting.
FAILED_STATES = frozenset({"failed", "rejected"})


# Update states of a service (`UpdateStatus.State`) while Swarm replaces its tasks, and after it gave up.
UPDATING = frozenset({"updating", "rollback_started"})
# ... and what Swarm did when it gave up, as the error says it.
FAILED_UPDATES = {
    "paused": "paused it",
    "rollback_completed": "rolled it back",
    "rollback_paused": "paused its rollback",
}
UPDATE_TIMEOUT = 300.0
# A changed service whose update status stays as it was this long replaced no task (a label change).
UPDATE_GRACE = 5.0


def update_state(service: dict[str, Any] | None) -> str:
    return str(((service or {}).get("UpdateStatus") or {}).get("State", ""))


class SwarmError(StackError):
    """The engine is no swarm manager, a label is missing, a service does not converge."""


def service_state(name: str, service: dict[str, Any] | None, tasks: list[dict[str, Any]]) -> ServiceState:
    """One component as Swarm sees it: `running` when every task it wants runs, else the state of the
    task that does not, with Swarm's error (a port taken on a node, no node that fits...)."""
    if service is None:
        return ServiceState(name=name, state="missing")
    image = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")
    image = ImageRef.parse(image).tagged or None
    wanted = [task for task in tasks if task.get("DesiredState") == "running"]
    running = [task for task in wanted if task.get("Status", {}).get("State") == "running"]
    replicas = service.get("Spec", {}).get("Mode", {}).get("Replicated", {}).get("Replicas")
    expected = replicas if replicas is not None else max(1, len(wanted))
    if running and len(running) >= expected:
        started = min((parse_time(task["Status"].get("Timestamp")) for task in running), key=_sort_key)
        return ServiceState(name=name, state="running", started_at=started, image=image)
    if replicas == 0:
        return ServiceState(name=name, state="exited", exit_code=0, image=image)
    latest = sorted(tasks, key=lambda task: task.get("UpdatedAt", ""), reverse=True)
    for task in latest:
        status = task.get("Status", {})
        error = status.get("Err") or ""
        state = status.get("State", "unknown")
        if state in FAILED_STATES or (state == "pending" and error):
            exit_code = status.get("ContainerStatus", {}).get("ExitCode")
            node = task.get("NodeID", "")[:12]
            where = f" on node {node}" if node else ""
            if state in FAILED_STATES and _failures(task, tasks, parse_time(service.get("UpdatedAt"))) < 2:
                # Swarm replaces a failed task (restart_policy), and a start can fail once for the
                # engine's own reasons (moby/moby#48783: "unable to remount dir as readonly"): only
                # the same slot failing again is a service that will not converge.
                return ServiceState(
                    name=name, state="starting", image=image, error=f"restarted by Swarm after: {error or state}{where}"
                )
            return ServiceState(
                name=name,
                state="failed" if state == "pending" else state,
                exit_code=exit_code,
                image=image,
                error=f"{error or state}{where}",
            )
        if task.get("DesiredState") == "running":
            return ServiceState(name=name, state=state, image=image)
    return ServiceState(name=name, state="starting", image=image)


def _slot(task: dict[str, Any]) -> Any:
    """Which of the service's places a task fills: its slot (replicated) or its node (global)."""
    return task.get("Slot") or task.get("NodeID")


def _failures(task: dict[str, Any], tasks: list[dict[str, Any]], since: datetime | None) -> int:
    """How many tasks of `task`'s slot failed since the service was last deployed (`since`): a
    deploy is a fresh start, and Swarm keeps the tasks of earlier ones in its history."""
    found = 0
    for other in tasks:
        if _slot(other) != _slot(task) or other.get("Status", {}).get("State") not in FAILED_STATES:
            continue
        created = parse_time(other.get("CreatedAt"))
        if since is None or created is None or created >= since:
            found += 1
    return found


def _sort_key(value: Any) -> Any:
    return (value is None, value)
