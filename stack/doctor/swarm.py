"""`stack doctor` on Swarm: findings about the swarm itself (manager quorum, the backend label, nodes
that are down), from what the manager's Engine API says."""

from __future__ import annotations

from typing import Any, Protocol

from stack.doctor.findings import Finding, Severity
from stack.errors import StackError
from stack.settings import Settings


class SwarmFacts(Protocol):
    """What the findings read (the Swarm runtime offers it)."""

    def engine_info(self) -> dict[str, Any]: ...

    def nodes(self) -> list[dict[str, Any]]: ...


def _hostname(node: dict[str, Any]) -> str:
    return str(node.get("Description", {}).get("Hostname") or node.get("ID", "?")[:12])


def swarm_findings(settings: Settings, facts: SwarmFacts) -> list[Finding]:
    """The swarm's problems, worst first; an engine that is no manager is the only finding then."""
    try:
        info = facts.engine_info()
    except StackError as exc:
        return [Finding("swarm-engine", Severity.HIGH, f"no engine answers: {exc.message}", exc.hint or "")]
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        return [
            Finding(
                "swarm-inactive",
                Severity.HIGH,
                "the engine is not part of a swarm",
                "run `docker swarm init` on it, or point --host at a swarm manager",
            )
        ]
    if not swarm.get("ControlAvailable"):
        return [
            Finding(
                "swarm-not-manager",
                Severity.HIGH,
                "the engine is a swarm worker: stacks are deployed and watched through a manager",
                "point --host (or DOCKER_HOST) at a manager (`docker node ls` there shows which)",
            )
        ]
    nodes = facts.nodes()
    found: list[Finding] = []
    found += _quorum(nodes)
    found += _backend(settings, nodes, str(swarm.get("NodeID", "")))
    for node in nodes:
        state = node.get("Status", {}).get("State")
        if state != "ready":
            found.append(
                Finding(
                    "swarm-node-down",
                    Severity.MEDIUM,
                    f"node {_hostname(node)} is {state or 'in an unknown state'}: its Collector does not run",
                    "bring the node back, or `docker node rm` it if it is gone for good",
                    detail=str(node.get("Status", {}).get("Message", "")),
                )
            )
    return found


def _quorum(nodes: list[dict[str, Any]]) -> list[Finding]:
    managers = [node for node in nodes if node.get("Spec", {}).get("Role") == "manager"]
    reachable = [node for node in managers if node.get("ManagerStatus", {}).get("Reachability") == "reachable"]
    found = []
    if len(reachable) <= len(managers) // 2:
        found.append(
            Finding(
                "swarm-no-quorum",
                Severity.HIGH,
                f"only {len(reachable)} of {len(managers)} managers are reachable: the swarm has no quorum "
                "and accepts no change (no deploy, no rescheduling)",
                "bring the managers back; if they are lost for good: docker swarm init --force-new-cluster",
            )
        )
    elif len(managers) % 2 == 0:
        tolerated = (len(managers) - 1) // 2
        found.append(
            Finding(
                "swarm-even-managers",
                Severity.MEDIUM,
                f"{len(managers)} managers tolerate the loss of {tolerated}, no more than {len(managers) - 1} would",
                "run an odd number of managers (1, 3 or 5): docker node promote / docker node demote",
            )
        )
    return found


def _backend(settings: Settings, nodes: list[dict[str, Any]], this_node: str) -> list[Finding]:
    label = settings.swarm.backend_label
    key, _, value = label.partition("=")
    backend = [node for node in nodes if node.get("Spec", {}).get("Labels", {}).get(key) == value]
    if not backend:
        return [
            Finding(
                "swarm-backend-label-missing",
                Severity.HIGH,
                f"no node has the label {label}: the backends have nowhere to run",
                f"docker node update --label-add {label} <node>",
            )
        ]
    if len(backend) > 1:
        return [
            Finding(
                "swarm-backend-label-ambiguous",
                Severity.HIGH,
                f"{len(backend)} nodes have the label {label} ({', '.join(map(_hostname, backend))}): a backend "
                "moved to another of them starts with an empty volume there",
                f"keep the label on one node: docker node update --label-rm {key} <node>",
            )
        ]
    node = backend[0]
    found = []
    if settings.swarm.docker_socket and node.get("Spec", {}).get("Role") != "manager":
        found.append(
            Finding(
                "swarm-backend-not-manager",
                Severity.HIGH,
                f"the backend node {_hostname(node)} is a worker: Prometheus' Swarm discovery needs a manager's API",
                f'docker node promote {_hostname(node)}, or set swarm.docker_socket: "" in stack.yaml',
                component="prometheus",
            )
        )
    if node.get("ID") != this_node:
        found.append(
            Finding(
                "swarm-backend-elsewhere",
                Severity.LOW,
                f"the backends run on {_hostname(node)}, not on the engine stack talks to: backup, restore "
                "and readiness of unpublished ports need that node's engine",
                f"run stack with --host pointing at {_hostname(node)}'s engine",
            )
        )
    return found
