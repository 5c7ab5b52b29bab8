"""The `frontend` endpoint on the real Collector (the stack's own otelcol-contrib build): CORS
preflights from the web app's origin and from others, and recorded Faro web SDK payloads
(tests/support/data/faro/) arriving at a recording OTLP sink in the expected shape."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from tenacity import Retrying, retry_if_exception_message, stop_after_attempt

from stack.components.collector import FRONTEND_RECEIVER
from stack.net.ports import free_port
from stack.resources import repo_root
from stack.settings import parse_settings
from tests.support import DATA, realcollector
from tests.support.otlp_sink import Sink, otlp_sink

FARO = DATA / "faro"
APP = "https://shop.example.com"


@dataclass
class Frontend:
    url: str
    apps_url: str
    sink: Sink
    log: str


def _start(stack: contextlib.ExitStack, workdir: Path) -> Frontend:
    settings = parse_settings(
        {
            "components": {
                "otel-collector": {"frontend": {"enabled": True, "cors_origins": [APP, "http://localhost:5173"]}}
            }
        }
    )
    ports = realcollector.Ports.free()
    config = realcollector.local_config(settings, ports)
    port = free_port()
    config["receivers"][FRONTEND_RECEIVER]["protocols"]["http"]["endpoint"] = f"127.0.0.1:{port}"
    sink = stack.enter_context(otlp_sink(grpc_port=ports.tempo_grpc, http_port=ports.loki_http))
    collector = stack.enter_context(realcollector.run(config, ports, workdir))
    return Frontend(f"http://127.0.0.1:{port}", collector.otlp_http, sink, collector.log)


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frontend]:
    workdir = tmp_path_factory.mktemp("frontend")
    # Free ports are picked before the Collector binds them; on a machine other test runs share, one
    # may be taken in between: start again on new ones.
    port_taken = retry_if_exception_message(match=r"(?s).*address already in use")
    for attempt in Retrying(stop=stop_after_attempt(3), retry=port_taken, reraise=True):
        with attempt:
            stack = contextlib.ExitStack()
            try:
                started = _start(stack, workdir)
            except BaseException:
                stack.close()
                raise
    with stack:
        yield started


def test_the_collector_starts_with_the_frontend_on_and_no_warning(frontend: Frontend) -> None:
    # zap's console encoder: tab-separated levels; deprecated settings log a warning too.
    assert not re.search(r"\t(warn|error|dpanic|panic|fatal)\t|deprecat", frontend.log, re.IGNORECASE), frontend.log
    assert "Everything is ready" in frontend.log


def _preflight(url: str, origin: str) -> requests.Response:
    return requests.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )


def test_the_web_apps_origin_passes_the_preflight(frontend: Frontend) -> None:
    reply = _preflight(f"{frontend.url}/v1/logs", APP)
    assert reply.status_code in (200, 204), reply.text
    assert reply.headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    assert "content-type" in reply.headers["Access-Control-Allow-Headers"].lower()


def test_another_origin_gets_no_cors_grant(frontend: Frontend) -> None:
    reply = _preflight(f"{frontend.url}/v1/logs", "https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_the_apps_own_otlp_endpoint_grants_no_browser(frontend: Frontend) -> None:
    reply = _preflight(f"{frontend.apps_url}/v1/logs", APP)
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_faro_errors_and_web_vitals_arrive_as_log_records(frontend: Frontend) -> None:
    reply = requests.post(
        f"{frontend.url}/v1/logs",
        data=(FARO / "logs.json").read_bytes(),
        headers={"Content-Type": "application/json", "Origin": APP},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["Access-Control-Allow-Origin"] == APP
    records = frontend.sink.wait_for(
        lambda: [r for r in frontend.sink.log_records() if r.resource.get("service.name") == "shop-web"]
    )
    assert len(records) == 3
    [error] = [record for record in records if "exception.type" in record.attributes]
    [vitals] = [record for record in records if "measurement.type" in record.attributes]
    [console] = [record for record in records if record.body]
    # What the errors pack groups by (Loki: exception_type, exception_message, service_version, ...).
    assert error.attributes["exception.type"] == "TypeError"
    assert error.attributes["exception.message"] == "Cannot read properties of undefined (reading 'total')"
    assert error.resource["service.version"] == "1.4.2"
    assert error.resource["deployment.environment.name"] == "production"
    assert error.resource["telemetry.sdk.language"] == "webjs"
    assert error.resource["browser.name"] == "Firefox"
    assert error.trace_id == "5b8efff798038103d269b633813fc60c"
    frames = error.attributes["faro.error.stacktrace"]["frames"]
    assert frames[0]["function"] == "renderTotal"
    # Faro 2's transport sends errors and measurements with no body: Loki shows an empty line.
    assert not error.body and not vitals.body
    assert (
        vitals.attributes["measurement.type"],
        vitals.attributes["measurement.name"],
        vitals.attributes["measurement.value"],
    ) == ("web-vitals", "lcp", 2450.3)
    assert console.body == "cart: price list is stale, refetching"


def test_the_errors_pack_reads_what_faro_sends(frontend: Frontend) -> None:
    """The labels the errors pack's browser panels and groups read are in the recorded payload, as Loki
    names them (attribute names with dots made underscores)."""
    requests.post(
        f"{frontend.url}/v1/logs",
        data=(FARO / "logs.json").read_bytes(),
        headers={"Content-Type": "application/json", "Origin": APP},
        timeout=10,
    )
    records = frontend.sink.wait_for(
        lambda: [r for r in frontend.sink.log_records() if "exception.type" in r.attributes]
    )
    names = {name.replace(".", "_") for name in {**records[0].resource, **records[0].attributes}}
    for needed in ("service_name", "service_version", "exception_type", "exception_message", "telemetry_sdk_language"):
        assert needed in names, needed
    assert "browser_name" in names
    by_environment = _panel_query("Exceptions by environment")
    grouped = set(re.search(r"sum by \(([^)]*)\)", by_environment)[1].replace(" ", "").split(","))
    assert grouped & names - {"service_name"}, f"the environment panel groups by {grouped}, Faro sends {names}"


def _panel_query(title: str) -> str:
    board = json.loads((repo_root() / "provisioning" / "dashboards" / "errors" / "stack-errors.json").read_text())
    [panel] = [panel for panel in board["panels"] if panel.get("title") == title]
    return panel["targets"][0]["expr"]


def test_the_pages_spans_arrive_as_traces(frontend: Frontend) -> None:
    reply = requests.post(
        f"{frontend.url}/v1/traces",
        data=(FARO / "traces.json").read_bytes(),
        headers={"Content-Type": "application/json", "Origin": APP},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    spans = frontend.sink.wait_for(
        lambda: [s for s in frontend.sink.spans() if s.resource.get("service.name") == "shop-web"]
    )
    assert [(s.name, s.trace_id) for s in spans] == [("HTTP POST", "5b8efff798038103d269b633813fc60c")]


def test_an_oversized_request_is_refused(frontend: Frontend) -> None:
    payload = json.loads((FARO / "logs.json").read_text())
    payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"][2]["body"]["stringValue"] = "x" * (2 * 1024 * 1024)
    reply = requests.post(
        f"{frontend.url}/v1/logs",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json", "Origin": APP},
        timeout=10,
    )
    assert reply.status_code >= 400
