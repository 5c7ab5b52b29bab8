"""`runtime: swarm` on three nodes: the session's engine as the manager (and backend node) and two
worker engines in network namespaces made here (tests/support/swarm_nodes.py). The real Collector (the stack's
own build, tests/support/images.py) runs on every node; each node's host metrics reach Prometheus with that
node's name, and Prometheus finds every node's Collector through Swarm discovery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.net.ports import free_port
from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.images import collector_image
from tests.support.swarm_nodes import Node, multi_node_swarm
from tests.support.swarm_support import eventually, query, swarm_settings

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def workers(docker_engine: Engine) -> Iterator[list[Node]]:
    with multi_node_swarm(docker_engine, 2) as nodes:
        for node in nodes:
            collector_image(node.engine)
        yield nodes


def test_the_collector_runs_on_every_node_and_each_nodes_host_metrics_carry_its_name(
    project_dir: Path, engine: Engine, workers: list[Node]
) -> None:
    prometheus_port = free_port()
    swarm_settings(
        project_dir,
        engine,
        collector_image=collector_image(engine),
        alertmanager_port=free_port(),
        collector_port=free_port(),
        prometheus_port=prometheus_port,
        collector_extra=", host_metrics: true",
    )
    manager = engine.docker("info", "--format", "{{.Name}}").stdout.strip()
    names = {manager, *(node.name for node in workers)}
    try:
        up = invoke("up", "--timeout", "180")
        assert up.exit_code == 0, up.output

        def every_collector_scraped() -> None:
            found = query(prometheus_port, 'up{job="otel-collector"} == 1')
            assert {sample["metric"]["node"] for sample in found} == names

        eventually(every_collector_scraped, timeout=120)
        status = invoke("status", "--json")
        tasks = json.loads(status.stdout)["tasks"]
        assert sorted(row["node"] for row in tasks["otel-collector"]) == sorted(names)
        assert [row["node"] for row in tasks["prometheus"]] == [manager]

        def every_nodes_host_metrics() -> None:
            found = query(prometheus_port, 'count by (host_name) ({__name__=~"system_memory_usage.*"})')
            assert {sample["metric"].get("host_name") for sample in found} == names

        eventually(every_nodes_host_metrics, timeout=120)
    finally:
        down = invoke("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
