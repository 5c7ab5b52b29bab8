"""`stack up` on the real test engine with Grafana's STAND-IN (grafana/grafana:standin, tests/support/images.py:
tests/support/fake_grafana.py in a container laid out as the official image), beside the real Prometheus and
Alertmanager. Grafana has no binary here (AGPL): what is tested for real is the Docker path to it
(the secret mounted by compose, the published port, readiness, provisioning over HTTP through the
engine's network), not Grafana itself. Loki, Tempo and the Collector are disabled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from click.testing import Result

from stack.grafana.dashboards import selected_dashboards
from stack.net.ports import free_port
from stack.paths import Paths
from stack.project import load
from tests.support.engine import Engine
from tests.support.enginestack import EngineStack, prometheus_and_alertmanager, running_stack
from tests.support.images import grafana_standin_image

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Started:
    stack: EngineStack
    up: Result
    grafana: str

    def ok(self) -> EngineStack:
        assert self.up.exit_code == 0, self.up.output
        return self.stack

    def get(self, path: str, **params: str) -> Any:
        creds = json.loads(self.ok().stack("credentials", "--json").stdout)
        auth = (creds["user"], creds["password"])
        reply = requests.get(f"{self.grafana}{path}", params=params, auth=auth, timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()


@pytest.fixture(scope="module")
def started(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    port = free_port()
    components = prometheus_and_alertmanager(docker_engine, alertmanager_port=free_port())
    components["grafana"] = {"image": grafana_standin_image(docker_engine), "port": port}
    with running_stack(docker_engine, tmp_path_factory.mktemp("grafana"), components, kind="grafana") as stack:
        yield Started(stack, stack.stack("up", "--timeout", "120"), f"http://127.0.0.1:{port}")


def test_up_with_the_grafana_standin_provisions_datasources_and_alert_delivery(started: Started) -> None:
    assert {"prometheus", "alertmanager"} <= {d["uid"] for d in started.get("/api/datasources")}
    # Grafana-managed alerts go to the stack's Alertmanager only (alerting.grafana_alerts default).
    assert started.get("/api/v1/ngalert/admin_config")["alertmanagersChoice"] == "external"


def test_up_with_the_grafana_standin_provisions_the_selected_dashboards(started: Started) -> None:
    stack = started.ok()
    wanted = selected_dashboards(load(Paths.discover(stack.settings_file)), stack.directory)
    listed = started.get("/api/search", type="dash-db")
    assert wanted and {d.uid for d in wanted} <= {d["uid"] for d in listed}


def test_up_with_the_grafana_standin_points_at_grafana_explore_for_prometheus(started: Started) -> None:
    started.ok()
    assert "query it in Grafana > Explore" in " ".join(started.up.output.split())


def test_reup_with_the_grafana_standin_writes_nothing_and_recreates_nothing(started: Started) -> None:
    stack = started.ok()
    before = stack.starts()
    again = stack.stack("up", "--timeout", "120")
    assert again.exit_code == 0, again.output
    assert " 0 writes)" in again.output
    assert stack.starts() == before
