"""The process runtime runs the real Collector (the stack's build, found in the cache), beside the
real Prometheus: ready on its health port, its own metrics scraped, an app's metric remote-written."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stack.collector_build import built_binary
from stack.net.ports import free_port
from stack.polling import poll_until
from tests.conftest import invoke
from tests.runtime.process.test_process_runtime import _settings_text, open_runtime, processes_under
from tests.support import otel_app, realcollector
from tests.support.realbin import binary


@pytest.fixture
def project(project_dir: Path) -> Iterator[Path]:
    binary("prometheus")
    realcollector.binary()
    data = yaml.safe_load(_settings_text(free_port()))
    data["components"]["alertmanager"] = {"enabled": False}
    data["components"]["otel-collector"] = {
        "enabled": True,
        "otlp_grpc_port": free_port(),
        "otlp_http_port": free_port(),
        "port": free_port(),
        "host_metrics": True,
    }
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(data))
    yield project_dir
    open_runtime(project_dir).down(volumes=True, timeout=5)
    assert processes_under(project_dir) == []


def test_the_process_runtime_runs_the_real_collector_from_the_cache(project: Path) -> None:
    runtime = open_runtime(project)
    found = runtime.binaries()["otel-collector"]
    assert Path(found.path) == built_binary()
    assert found.version == "0.160.0" and not found.version_differs
    started = time.monotonic()
    runtime.up()
    # Started and settled in moments: the watch waited out its 15 s cap for the frontend port, which
    # the Collector does not listen on while the frontend is off.
    assert time.monotonic() - started < 10
    states = {state.name: state.state for state in runtime.ps()}
    assert states == {"otel-collector": "running", "prometheus": "running"}
    assert runtime.http("otel-collector", "health", "/").status == 200

    def scraped() -> bool:
        reply = json.loads(runtime.http("prometheus", "http", "/api/v1/targets").body)
        health = {target["labels"]["job"]: target["health"] for target in reply["data"]["activeTargets"]}
        return health.get("otel-collector") == "up"

    assert poll_until(scraped, 30, interval=0.2), "Prometheus does not scrape the Collector's own metrics"

    settings = runtime.settings.component("otel-collector")
    otel_app.record_metrics(
        "http",
        f"http://127.0.0.1:{settings.otlp_http_port}",
        {"service.name": "worker"},
        [lambda meter: meter.create_counter("jobs.done").add(3)],
    )

    def arrived() -> bool:
        query = "/api/v1/query?query=" + "jobs_done_total"
        return bool(json.loads(runtime.http("prometheus", "http", query).body)["data"]["result"])

    assert poll_until(arrived, 30, interval=0.2), "the app's metric did not reach Prometheus"

    def host_metrics() -> bool:
        query = "/api/v1/query?query=" + "system_memory_usage_bytes"
        result = json.loads(runtime.http("prometheus", "http", query).body)["data"]["result"]
        return any(series["metric"].get("job") == "host" for series in result)

    # Host metrics are read every 30 s; the first scrape comes at start-up.
    assert poll_until(host_metrics, 45, interval=0.5), "no host metrics from the process's own /proc"
    log = "\n".join(runtime.logs("otel-collector"))
    assert "Everything is ready" in log
    assert "\twarn\t" not in log and "deprecat" not in log.lower()


def test_stack_smoke_on_the_process_runtime_finds_the_metric_and_its_exemplar(project: Path) -> None:
    """The real path: `stack up --runtime process`, then `stack smoke` (Tempo, Loki, Grafana are off here)."""
    up = invoke("up", "--timeout", "60")
    assert up.exit_code == 0, up.output
    result = invoke("smoke", "--json", "--timeout", "20")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    checks = {check["check"]: check for check in report["checks"]}
    assert checks["metric"]["result"] == "passed"
    assert checks["exemplar's trace id"]["result"] == "passed"
    assert checks["exemplar's trace id"]["detail"] == f"exemplar -> trace {report['trace_id']}"
    for skipped in ("trace by id", "log by trace id", "datasources"):
        assert checks[skipped]["result"] == "skipped", checks[skipped]
        assert checks[skipped]["detail"].endswith("is disabled in stack.yaml")
