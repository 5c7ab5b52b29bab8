"""End to end on a real Docker engine: the signals are wired. A trace, a log line and a metric sent
over OTLP arrive in Tempo, Loki and Prometheus; Tempo's span metrics reach Prometheus; the stack's
own container logs reach Loki; every rendered rule evaluates without error and Alertmanager runs
the rendered routing.

On the suite's engine (tests/support/engine.py); skipped, naming them, while the engine lacks an image for a
component (nothing is pulled in the tests).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.enginestack import full_stack_settings

SERVICE = "signals-e2e"


def _attributes(**values: str) -> list[dict[str, Any]]:
    return [{"key": key.replace("_", "."), "value": {"stringValue": value}} for key, value in values.items()]


def _send(otlp_http: str, trace_id: str) -> None:
    now = time.time_ns()
    resource = {"attributes": _attributes(service_name=SERVICE)}
    span = {
        "traceId": trace_id,
        "spanId": "0a0b0c0d0e0f0102",
        "name": "GET /checkout",
        "kind": 2,
        "startTimeUnixNano": str(now - 20_000_000),
        "endTimeUnixNano": str(now),
        "status": {"code": 2},
    }
    traces = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
    log = {
        "timeUnixNano": str(now),
        "severityText": "ERROR",
        "body": {"stringValue": "payment declined"},
        "traceId": trace_id,
        "spanId": "0a0b0c0d0e0f0102",
    }
    logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [log]}]}]}
    point = {"asDouble": 7.0, "timeUnixNano": str(now)}
    gauge = {"name": "e2e.queue.depth", "gauge": {"dataPoints": [point]}}
    metrics = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [gauge]}]}]}
    for path, payload in (("/v1/traces", traces), ("/v1/logs", logs), ("/v1/metrics", metrics)):
        reply = requests.post(f"{otlp_http}{path}", json=payload, timeout=10)
        assert reply.status_code == 200, (path, reply.text)


def _eventually(probe: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(3)
    pytest.fail(f"{what}: not seen within {timeout:.0f} s")


@pytest.mark.docker
def test_signals_arrive_where_they_belong(project_dir: Path, engine: Engine) -> None:
    slos = f"slos:\n  - name: e2e\n    objective: 99\n    sli: {{kind: availability, selector: 'job=\"{SERVICE}\"'}}\n"
    ports = full_stack_settings(engine, project_dir, slos)
    try:
        result = invoke("up", "--timeout", "300")
        assert result.exit_code == 0, result.output
        creds = json.loads(invoke("credentials", "--json").stdout)
        grafana = f"http://127.0.0.1:{ports['grafana']}"
        auth = (creds["user"], creds["password"])

        def prometheus(path: str, **params: str) -> Any:
            # Prometheus is not published: ask it through Grafana's datasource proxy.
            url = f"{grafana}/api/datasources/proxy/uid/prometheus{path}"
            return requests.get(url, params=params, auth=auth, timeout=10).json()["data"]

        trace_id = os.urandom(16).hex()
        _send(f"http://127.0.0.1:{ports['http']}", trace_id)
        tempo = f"http://127.0.0.1:{ports['tempo']}"
        _eventually(lambda: requests.get(f"{tempo}/api/traces/{trace_id}", timeout=10).status_code == 200, "trace")
        loki = f"http://127.0.0.1:{ports['loki']}/loki/api/v1/query_range"

        def log_lines(query: str) -> list[Any]:
            reply = requests.get(loki, params={"query": query, "limit": "20"}, timeout=10).json()
            return reply.get("data", {}).get("result", [])

        streams = _eventually(lambda: log_lines(f'{{service_name="{SERVICE}"}} |= "payment declined"'), "OTLP log")
        # The trace id is structured metadata: Grafana's derived field opens the trace from it.
        assert any(trace_id in json.dumps(stream) for stream in streams)
        _eventually(lambda: log_lines('{container_name="prometheus"}'), "Docker container logs")
        _eventually(
            lambda: prometheus("/api/v1/query", query=f'e2e_queue_depth{{job="{SERVICE}"}}')["result"], "metric"
        )
        spanmetrics = f'traces_spanmetrics_calls_total{{service="{SERVICE}"}}'
        _eventually(lambda: prometheus("/api/v1/query", query=spanmetrics)["result"], "span metrics")
        collector = 'up{job="otel-collector"} == 1'
        _eventually(lambda: prometheus("/api/v1/query", query=collector)["result"], "Collector's own metrics")
        rules = [rule for group in prometheus("/api/v1/rules")["groups"] for rule in group["rules"]]
        assert rules
        assert {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] == "err"} == {}
        status = requests.get(f"http://127.0.0.1:{ports['alertmanager']}/api/v2/status", timeout=10).json()
        assert "inhibit_rules" in status["config"]["original"]
    finally:
        down = invoke("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
