"""`stack smoke`: the real Collector and the real Prometheus (metric, exemplar); Tempo, Loki and
Grafana are stand-ins of their query APIs (tests/support/query_standins.py) fed by what the Collector sent."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.net.ports import free_port
from stack.runtime.base import HttpReply
from stack.settings import Settings, parse_settings
from stack.smoke import Result, SmokeError, SmokeReport, smoke
from tests.conftest import invoke
from tests.support import realbin, realcollector
from tests.support.fake_grafana import fake_grafana
from tests.support.query_standins import GrafanaWithHealth, loki_standin, tempo_standin


@dataclass
class PortsRuntime:
    """Only what `smoke` asks of a runtime: HTTP to a component's port, and a URL for it."""

    ports: dict[tuple[str, str], int] = field(default_factory=dict)
    name: str = "test-ports"

    def base_url(self, service: str, port: str) -> str | None:
        found = self.ports.get((service, port))
        return f"http://127.0.0.1:{found}" if found else None

    def http(
        self,
        service: str,
        port: str,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5,
    ) -> HttpReply:
        url = self.base_url(service, port)
        if url is None:
            raise ConnectionError(f"{service} has no {port} port here")
        try:
            reply = requests.request(method, url + path, data=body, headers=dict(headers or {}), timeout=timeout)
        except requests.ConnectionError as exc:
            raise ConnectionError(str(exc)) from None
        return HttpReply(reply.status_code, reply.content, dict(reply.headers))


@dataclass
class Stack:
    settings: Settings
    runtime: PortsRuntime
    grafana: GrafanaWithHealth

    def smoke(self, timeout: float = 20, password: str = "s3cret-admin") -> SmokeReport:
        token = __import__("base64").b64encode(f"admin:{password}".encode()).decode()
        headers = {"Authorization": "Basic " + token}
        return smoke(self.settings, self.runtime, timeout=timeout, grafana_headers=lambda: headers)


SETTINGS: dict[str, Any] = {"components": {"alertmanager": {"enabled": False}}}


@contextlib.contextmanager
def running_stack(
    tmp_path: Path,
    data: dict[str, Any] | None = None,
    *,
    tempo_answer: str | None = None,
    loki_drop: bool = False,
    loki_answer: str | None = None,
) -> Iterator[Stack]:
    settings = parse_settings(data or SETTINGS)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "5s"}}))
    with contextlib.ExitStack() as stack:
        prometheus = stack.enter_context(realbin.prometheus(config, tmp_path / "prometheus"))
        tempo = stack.enter_context(tempo_standin(answer_with=tempo_answer))
        loki = stack.enter_context(loki_standin(drop=loki_drop, answer_with=loki_answer))
        grafana = stack.enter_context(fake_grafana(GrafanaWithHealth()))
        ports = realcollector.Ports.free(
            prometheus=prometheus.port,
            tempo_grpc=int(tempo.grpc_address.rsplit(":", 1)[1]),
            loki_http=int(loki.http_url.rsplit(":", 1)[1]),
        )
        collector = stack.enter_context(
            realcollector.run(realcollector.local_config(settings, ports), ports, tmp_path / "collector")
        )
        runtime = PortsRuntime(
            {
                ("otel-collector", "otlp_http"): collector.ports.otlp_http,
                ("otel-collector", "health"): collector.ports.health,
                ("prometheus", "http"): prometheus.port,
                ("tempo", "http"): int(tempo.http_url.rsplit(":", 1)[1]),
                ("loki", "http"): int(loki.http_url.rsplit(":", 1)[1]),
                ("grafana", "http"): int(grafana.url.rsplit(":", 1)[1]),
            }
        )
        for uid, url in (("prometheus", prometheus.url), ("loki", loki.http_url), ("tempo", tempo.http_url)):
            grafana.provisioned_datasource({"uid": uid, "name": uid.title(), "type": uid, "url": url})
        assert collector.server.process.poll() is None
        yield Stack(settings, runtime, grafana)


def _by_check(report: SmokeReport) -> dict[str, Any]:
    return {check.check: check for check in report.checks}


def test_every_signal_arrives_and_is_found(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        report = stack.smoke()
    checks = _by_check(report)
    assert report.ok, report.as_dict()
    assert set(checks) == {
        "trace by id",
        "log by trace id",
        "metric",
        "exemplar's trace id",
        "datasource Prometheus",
        "datasource Loki",
        "datasource Tempo",
    }
    for check in report.checks:
        assert check.result is Result.PASSED, check
        assert check.seconds is not None and 0 <= check.seconds < 20
    assert checks["exemplar's trace id"].detail == f"exemplar -> trace {report.trace_id}"
    assert checks["metric"].detail.endswith("(job stack-smoke)")


def test_a_disabled_component_is_skipped_and_says_why(tmp_path: Path) -> None:
    data = {
        "components": {"alertmanager": {"enabled": False}, "tempo": {"enabled": False}, "grafana": {"enabled": False}}
    }
    with running_stack(tmp_path, data) as stack:
        report = stack.smoke()
    checks = _by_check(report)
    assert report.ok
    assert checks["trace by id"].result is Result.SKIPPED
    assert checks["trace by id"].detail == "tempo is disabled in stack.yaml"
    assert checks["datasources"].detail == "grafana is disabled in stack.yaml"
    assert checks["metric"].result is Result.PASSED


def test_nothing_arriving_fails_in_one_line(tmp_path: Path) -> None:
    with running_stack(tmp_path, loki_drop=True) as stack:
        report = stack.smoke(timeout=2)
    check = _by_check(report)["log by trace id"]
    assert not report.ok
    assert check.result is Result.FAILED
    assert check.detail == f"not there after 2 s: no log line with trace_id {report.trace_id}"
    assert _by_check(report)["trace by id"].result is Result.PASSED


def test_the_wrong_trace_coming_back_fails_at_once(tmp_path: Path) -> None:
    other = "0af7651916cd43dd8448eb211c80319c"
    with running_stack(tmp_path, tempo_answer=other) as stack:
        started = time.monotonic()
        report = stack.smoke(timeout=10)
        took = time.monotonic() - started
    check = _by_check(report)["trace by id"]
    assert check.result is Result.FAILED
    assert check.detail == f"asked for trace {report.trace_id}, Tempo answered with {other}"
    assert took < 8, "a wrong trace is a failure at once, not after the timeout"


def test_another_log_line_under_the_trace_id_fails_at_once(tmp_path: Path) -> None:
    with running_stack(tmp_path, loki_answer="someone else's line") as stack:
        started = time.monotonic()
        report = stack.smoke(timeout=10)
        took = time.monotonic() - started
    check = _by_check(report)["log by trace id"]
    assert check.result is Result.FAILED
    assert check.detail == (f'the log line with trace_id {report.trace_id} is not the one sent: "someone else\'s line"')
    assert took < 8, "a wrong log line is a failure at once, not after the timeout"


def test_grafana_refusing_the_credentials_fails_every_datasource_at_once(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        started = time.monotonic()
        report = stack.smoke(timeout=10, password="not-the-password")
        took = time.monotonic() - started
    datasources = [check for check in report.checks if check.component == "grafana"]
    assert {check.check for check in datasources} == {"datasource Prometheus", "datasource Loki", "datasource Tempo"}
    for check in datasources:
        assert check.result is Result.FAILED
        assert check.detail == "Grafana refused the credentials (HTTP 401)"
    assert not report.ok
    assert _by_check(report)["metric"].result is Result.PASSED
    assert took < 8


def test_the_collector_down_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    runtime = PortsRuntime({("otel-collector", "otlp_http"): port})
    with pytest.raises(SmokeError) as caught:
        smoke(parse_settings(SETTINGS), runtime, timeout=2)
    line = caught.value.one_line()
    assert line.startswith(f"the Collector at http://127.0.0.1:{port} did not accept the smoke ")
    assert "hint: is it running?" in line


def test_the_cli_prints_a_table_and_json_and_exits_1_on_failure(
    tmp_path: Path, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = project_dir / ".stack-secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "grafana-admin-password").write_text("s3cret-admin")
    (secrets / "grafana-admin-password").chmod(0o600)
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(SETTINGS))
    with running_stack(tmp_path) as stack:
        monkeypatch.setattr("stack.commands.options.get_runtime", lambda *a, **k: stack.runtime)
        table = invoke("smoke", "--timeout", "20")
        assert table.exit_code == 0, table.output
        for text in ("trace by id", "log by trace id", "exemplar's trace id", "datasource Tempo", " ms"):
            assert text in table.output
        as_json = invoke("smoke", "--json")
        assert as_json.exit_code == 0, as_json.output
        document = json.loads(as_json.stdout)
        assert document["ok"] is True and len(document["trace_id"]) == 32
        assert {check["result"] for check in document["checks"]} == {"passed"}
        stack.runtime.ports[("tempo", "http")] = free_port()  # Tempo gone
        failed = invoke("smoke", "--timeout", "1", "--json")
        assert failed.exit_code == 1
        [tempo] = [check for check in json.loads(failed.stdout)["checks"] if check["check"] == "trace by id"]
        assert tempo["result"] == "failed" and tempo["detail"].startswith("not there after 1 s: no answer")


def test_the_cli_says_the_collector_is_down_in_one_line_and_exits_1(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(SETTINGS))
    port = free_port()
    runtime = PortsRuntime({("otel-collector", "otlp_http"): port})
    monkeypatch.setattr("stack.commands.options.get_runtime", lambda *a, **k: runtime)
    result = invoke("smoke", "--timeout", "2")
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: the Collector at http://127.0.0.1:{port} did not accept the smoke ")
