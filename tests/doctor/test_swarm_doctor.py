"""`stack doctor` findings about the swarm, from what a manager's Engine API says (recorded shapes)."""

from __future__ import annotations

from typing import Any

from stack.doctor.swarm import swarm_findings
from stack.settings import parse_settings

SETTINGS = parse_settings({"runtime": "swarm"})


def node(
    ident: str, *, role: str = "manager", reachable: bool = True, backend: bool = False, state: str = "ready"
) -> dict:
    spec: dict[str, Any] = {"Role": role, "Labels": {"stack.role": "backend"} if backend else {}}
    found: dict[str, Any] = {"ID": ident, "Spec": spec, "Description": {"Hostname": f"host-{ident}"}}
    found["Status"] = {"State": state}
    if role == "manager":
        found["ManagerStatus"] = {"Reachability": "reachable" if reachable else "unreachable"}
    return found


class Facts:
    def __init__(self, nodes: list[dict], *, state: str = "active", manager: bool = True, this: str = "a") -> None:
        self._nodes = nodes
        self._info = {"Swarm": {"LocalNodeState": state, "ControlAvailable": manager, "NodeID": this}}

    def engine_info(self) -> dict[str, Any]:
        return self._info

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes


def ids(facts: Facts) -> list[str]:
    return [finding.id for finding in swarm_findings(SETTINGS, facts)]


def test_a_healthy_one_node_swarm_has_no_finding() -> None:
    assert ids(Facts([node("a", backend=True)])) == []


def test_an_engine_outside_a_swarm_or_a_worker_is_the_only_finding() -> None:
    assert ids(Facts([], state="inactive")) == ["swarm-inactive"]
    assert ids(Facts([], manager=False)) == ["swarm-not-manager"]


def test_two_managers_have_no_more_tolerance_than_one() -> None:
    findings = swarm_findings(SETTINGS, Facts([node("a", backend=True), node("b")]))
    assert [f.id for f in findings] == ["swarm-even-managers"]
    assert "tolerate the loss of 0" in findings[0].title


def test_managers_without_quorum_are_high() -> None:
    facts = Facts([node("a", backend=True), node("b", reachable=False), node("c", reachable=False)])
    findings = swarm_findings(SETTINGS, facts)
    assert findings[0].id == "swarm-no-quorum" and findings[0].severity == "high"
    assert "only 1 of 3 managers" in findings[0].title


def test_the_backend_label_missing_or_on_two_nodes_is_high() -> None:
    missing = swarm_findings(SETTINGS, Facts([node("a"), node("b", role="worker")]))
    assert [f.id for f in missing] == ["swarm-backend-label-missing"]
    assert "docker node update --label-add stack.role=backend" in missing[0].fix
    assert ids(Facts([node("a", backend=True), node("b", role="worker", backend=True)])) == [
        "swarm-backend-label-ambiguous"
    ]


def test_a_worker_backend_breaks_discovery_unless_the_socket_is_off() -> None:
    facts = Facts([node("a"), node("b", role="worker", backend=True)])
    assert ids(facts) == ["swarm-backend-not-manager", "swarm-backend-elsewhere"]
    no_socket = parse_settings({"runtime": "swarm", "swarm": {"docker_socket": ""}})
    assert [f.id for f in swarm_findings(no_socket, facts)] == ["swarm-backend-elsewhere"]


def test_a_node_down_is_named() -> None:
    findings = swarm_findings(SETTINGS, Facts([node("a", backend=True), node("w", role="worker", state="down")]))
    assert [f.id for f in findings] == ["swarm-node-down"]
    assert "host-w is down" in findings[0].title
