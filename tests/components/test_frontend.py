"""The `frontend` switch of the Collector: browser telemetry (Faro web SDK, OTLP transport) on an
OTLP/HTTP endpoint of its own, with CORS for the configured origins only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stack import lifecycle
from stack.deploy.flow import tunnel_ports
from stack.errors import SettingsError
from stack.paths import Paths
from stack.render import render_project
from stack.runtime.docker import DockerRuntime
from stack.runtime.process.plan import plan_processes
from stack.runtime.process.ports import assign_ports
from stack.runtime.process.runtime import ProcessRuntime
from stack.settings import Settings, parse_settings

ORIGINS = ["https://app.example.com", "http://localhost:5173"]


def _on(**frontend: Any) -> Settings:
    return parse_settings(
        {"components": {"otel-collector": {"frontend": {"enabled": True, "cors_origins": ORIGINS, **frontend}}}}
    )


def _collector(settings: Settings) -> dict[str, Any]:
    return yaml.safe_load(render_project(settings).configs["otel-collector"][0].content)


def _ports(settings: Settings) -> dict[int, str]:
    service = render_project(settings).compose["services"]["otel-collector"]
    return {port["target"]: port["host_ip"] for port in service["ports"]}


def test_off_by_default_nothing_listens_for_browsers() -> None:
    config = _collector(Settings())
    assert "otlp/frontend" not in config["receivers"]
    assert 4320 not in _ports(Settings())


def test_on_an_otlp_http_endpoint_with_cors_for_the_configured_origins_feeds_logs_and_traces() -> None:
    config = _collector(_on())
    http = config["receivers"]["otlp/frontend"]["protocols"]["http"]
    assert http["endpoint"] == "0.0.0.0:4320"
    assert http["cors"]["allowed_origins"] == ORIGINS
    assert http["max_request_body_size"] == 1024 * 1024
    assert set(config["receivers"]["otlp/frontend"]["protocols"]) == {"http"}
    pipelines = config["service"]["pipelines"]
    assert "otlp/frontend" in pipelines["logs"]["receivers"]
    assert "otlp/frontend" in pipelines["traces"]["receivers"]
    assert "otlp/frontend" not in pipelines["metrics"]["receivers"]
    # The apps' own OTLP endpoint answers no CORS.
    assert "cors" not in config["receivers"]["otlp"]["protocols"]["http"]


def test_published_on_127_0_0_1_by_default_and_on_its_own_address_when_given() -> None:
    assert _ports(_on()) == {4317: "127.0.0.1", 4318: "127.0.0.1", 13133: "127.0.0.1", 4320: "127.0.0.1"}
    public = _ports(_on(address="0.0.0.0", port=8443))
    # Only the browsers' endpoint faces the network; the apps' endpoints stay on bind_address.
    assert public == {4317: "127.0.0.1", 4318: "127.0.0.1", 13133: "127.0.0.1", 4320: "0.0.0.0"}
    service = render_project(_on(address="0.0.0.0", port=8443)).compose["services"]["otel-collector"]
    assert [p["published"] for p in service["ports"] if p["target"] == 4320] == ["8443"]


def test_the_deploy_tunnel_forwards_it_only_when_it_listens_on_bind_address() -> None:
    assert 4320 in tunnel_ports(_on())
    assert 4320 not in tunnel_ports(_on(address="0.0.0.0"))


def test_without_loki_browsers_still_send_traces() -> None:
    settings = parse_settings(
        {
            "components": {
                "loki": {"enabled": False},
                "otel-collector": {"frontend": {"enabled": True, "cors_origins": ORIGINS}},
            }
        }
    )
    pipelines = _collector(settings)["service"]["pipelines"]
    assert "logs" not in pipelines
    assert "otlp/frontend" in pipelines["traces"]["receivers"]


@pytest.mark.parametrize(
    ("frontend", "message"),
    [
        (
            {"enabled": True},
            "components.otel-collector.frontend: the frontend endpoint needs cors_origins, the origins your web "
            "app is served from (hint: e.g. cors_origins: [https://app.example.com])",
        ),
        (
            {"enabled": True, "cors_origins": ["*"]},
            "components.otel-collector.frontend.cors_origins[0]: '*' is not a web origin: scheme://host[:port] "
            "with no path, e.g. https://app.example.com (https://*.example.com for every subdomain; a bare * is "
            "refused)",
        ),
        (
            {"enabled": True, "cors_origins": ["https://app.example.com/"]},
            "components.otel-collector.frontend.cors_origins[0]: 'https://app.example.com/' is not a web origin",
        ),
        (
            {"enabled": True, "cors_origins": ORIGINS, "port": 3000},
            "components.grafana.port: port 3000 is also published by components.otel-collector.frontend.port "
            "(hint: choose another port)",
        ),
        (
            {"enabled": True, "cors_origins": ORIGINS, "address": "example.com"},
            "components.otel-collector.frontend.address: 'example.com' is not an IP address",
        ),
    ],
    ids=["no origins", "wildcard", "path", "port taken", "address"],
)
def test_bad_frontend_settings_are_one_line_errors(frontend: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"components": {"otel-collector": {"frontend": frontend}}})
    line = caught.value.one_line()
    assert "\n" not in line
    assert message in line, line


def test_wildcard_subdomains_are_origins() -> None:
    config = _collector(_on(cors_origins=["https://*.example.com"]))
    assert config["receivers"]["otlp/frontend"]["protocols"]["http"]["cors"]["allowed_origins"] == [
        "https://*.example.com"
    ]


def test_local_processes_listen_for_browsers_on_the_frontend_port_and_address() -> None:
    settings = _on(address="0.0.0.0", port=14320)
    ports = assign_ports(settings, {}, set())
    binaries = {name: (f"/opt/bin/{name}", ()) for name in settings.enabled()}
    plans = plan_processes(settings, Path("/srv/root"), Path("/srv/secrets"), ports, binaries, {"PATH": "/usr/bin"})
    listen = {name: (host, port) for name, host, port in plans["otel-collector"].listen}
    assert listen["frontend"] == ("0.0.0.0", 14320)
    assert listen["otlp_http"][0] == "127.0.0.1"
    config = yaml.safe_load(next(iter(plans["otel-collector"].files.values())))
    assert config["receivers"]["otlp/frontend"]["protocols"]["http"]["endpoint"].endswith(":14320")


def test_its_url_is_listed_with_the_others_and_names_its_own_address(tmp_path: Path) -> None:
    settings = _on(address="10.0.0.5", port=8443)
    paths = Paths.discover(tmp_path / "stack.yaml")
    for runtime in (DockerRuntime(settings, paths), ProcessRuntime(settings, paths)):
        urls = {endpoint.name: endpoint.url for endpoint in lifecycle.endpoints(settings, runtime)}
        assert urls["OTLP HTTP (browsers, Faro)"] == "http://10.0.0.5:8443", type(runtime).__name__
        assert urls["OTLP HTTP (apps)"].endswith(":4318")
    off = {endpoint.name for endpoint in lifecycle.endpoints(Settings(), DockerRuntime(Settings(), paths))}
    assert "OTLP HTTP (browsers, Faro)" not in off
