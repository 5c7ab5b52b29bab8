"""What each component declares for the rest of the code (issue 15): the code that starts, waits
for and lists the stack asks the component instead of naming it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import stack.runtime
from stack.components import REGISTRY
from stack.components.grafana import ADMIN_PASSWORD_SECRET
from stack.lifecycle import endpoints, provisioned
from stack.render import render_project
from stack.secrets import GRAFANA_PASSWORD_ENV
from stack.settings import Settings, parse_settings


class PortUrls:
    """A runtime whose every port has a URL naming the component and the port."""

    def base_url(self, service: str, port: str) -> str | None:
        return f"http://{service}/{port}"


def test_grafana_is_ready_only_once_its_database_is() -> None:
    grafana = REGISTRY["grafana"]
    ready = grafana.ready_answer(json.dumps({"database": "ok", "version": "12.1.0"}).encode())
    assert (ready.ready, ready.version) == (True, "12.1.0")
    assert grafana.ready_answer(b'{"database": "failing"}').detail == "database failing"
    assert not grafana.ready_answer(b"<html>").ready
    # The others take a 200 as ready.
    assert REGISTRY["prometheus"].ready_answer(b"Prometheus Server is Ready.").ready


def test_endpoints_are_listed_as_the_components_declare_them() -> None:
    listed = [(endpoint.name, endpoint.url) for endpoint in endpoints(Settings(), PortUrls())]
    assert listed[0] == ("Grafana", "http://grafana/http")
    assert listed[-3:] == [
        ("OTLP gRPC (apps)", "http://otel-collector/otlp_grpc"),
        ("OTLP HTTP (apps)", "http://otel-collector/otlp_http"),
        ("OTLP HTTP (browsers, Faro)", "http://otel-collector/frontend"),
    ]
    declared = sorted(spec.rank for component in REGISTRY.values() for spec in component.endpoints)
    assert len(listed) == len(declared) and len(set(declared)) == len(declared)
    # status shows where applications send to, not the Collector's health port.
    assert REGISTRY["otel-collector"].shown_port() == "otlp_http"
    assert REGISTRY["loki"].shown_port() == REGISTRY["loki"].readiness.port


def test_grafana_admin_password_is_the_grafana_components_secret() -> None:
    compose = render_project(Settings()).compose
    assert {"source": ADMIN_PASSWORD_SECRET, "target": ADMIN_PASSWORD_SECRET} in compose["services"]["grafana"][
        "secrets"
    ]
    assert compose["secrets"][ADMIN_PASSWORD_SECRET] == {"environment": GRAFANA_PASSWORD_ENV}
    without = render_project(parse_settings({"components": {"grafana": {"enabled": False}}})).compose
    assert ADMIN_PASSWORD_SECRET not in without.get("secrets", {})


def test_only_grafana_is_provisioned_after_up() -> None:
    assert provisioned(["prometheus", "grafana"])
    assert not provisioned(["prometheus", "loki", "secrets"])


def test_the_runtimes_name_no_component() -> None:
    # What a component needs of a runtime (its secrets, its own build, where it may run on Swarm, whether
    # it runs there at all) is said in its module and asked through the registry, so that adding or
    # changing a component does not touch the runtimes (issue 15, item 1).

    named = []
    for path in sorted(Path(stack.runtime.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in REGISTRY:
                named.append(f"{path.name}:{node.lineno} {node.value}")
    assert named == []
