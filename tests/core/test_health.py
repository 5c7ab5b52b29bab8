from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stack.health import FAILED, READY, TIMED_OUT, Readiness, diagnose, hints_for, probe, wait_until_ready
from stack.runtime.base import Runtime, ServiceState
from tests.support import realbin
from tests.support.httpservers import http_server, ready_after, silent_server
from tests.support.urlruntime import UrlRuntime

PROMETHEUS_YML = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
ALERTMANAGER_YML = "route:\n  receiver: default\nreceivers:\n  - name: default\n"


def test_url_runtime_is_a_runtime() -> None:
    assert isinstance(UrlRuntime({}), Runtime)


def test_real_prometheus_and_alertmanager_become_ready(tmp_path: Path) -> None:
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS_YML)
    (tmp_path / "alertmanager.yml").write_text(ALERTMANAGER_YML)
    (tmp_path / "p").mkdir()
    (tmp_path / "a").mkdir()
    with (
        realbin.prometheus(tmp_path / "prometheus.yml", tmp_path / "p") as prom,
        realbin.alertmanager(tmp_path / "alertmanager.yml", tmp_path / "a") as am,
    ):
        runtime = UrlRuntime({"prometheus": prom.url, "alertmanager": am.url})
        seen: list[list[Readiness]] = []
        report = wait_until_ready(runtime, ["prometheus", "alertmanager"], timeout=20, on_update=seen.append)
        assert report.ok, report.results
        assert [r.phase for r in report.results] == [READY, READY]
        assert ("prometheus", "GET", "/-/ready") in runtime.requests_made
        assert ("alertmanager", "GET", "/-/ready") in runtime.requests_made
        assert seen and seen[-1][0].phase == READY
        # Stopped: the same probe reports the refusal instead of raising.
        prom.stop()
        found = probe(runtime, "prometheus", timeout=1)
        assert not found.ready
        assert "refused" in found.detail.lower() or "connection" in found.detail.lower()


def test_a_component_answering_503_for_a_while_is_waited_for() -> None:
    with http_server(ready_after(3)) as loki:
        runtime = UrlRuntime({"loki": loki})
        report = wait_until_ready(runtime, ["loki"], timeout=15)
    [loki_row] = report.results
    assert loki_row.phase == READY
    assert loki_row.attempts == 4


def test_a_slow_component_is_ready_when_it_answers_within_the_probe_timeout() -> None:
    with http_server(lambda *_: (200, b"ready"), delay=0.5) as tempo:
        report = wait_until_ready(UrlRuntime({"tempo": tempo}), ["tempo"], timeout=15, probe_timeout=2)
    assert report.ok


def test_a_component_that_never_answers_times_out_with_the_reason() -> None:
    with silent_server() as tempo, http_server(lambda *_: (200, b"ready")) as loki:
        started = time.monotonic()
        report = wait_until_ready(
            UrlRuntime({"tempo": tempo, "loki": loki}), ["tempo", "loki"], timeout=2.5, probe_timeout=0.5
        )
        elapsed = time.monotonic() - started
    rows = {r.component: r for r in report.results}
    assert rows["loki"].phase == READY
    assert rows["tempo"].phase == TIMED_OUT
    assert rows["tempo"].detail.startswith("not ready after 2.5 s (last probe: no answer within 0.")
    assert not report.ok and report.failed == [rows["tempo"]]
    assert elapsed < 6


def test_a_component_whose_container_exits_fails_at_once() -> None:
    with silent_server() as grafana:
        runtime = UrlRuntime(
            {"grafana": grafana},
            states={"grafana": ServiceState("grafana", "exited", exit_code=1)},
            log_lines={"grafana": [f"line {n}" for n in range(50)] + ["Error: ✗ failed to parse config"]},
        )
        started = time.monotonic()
        report = wait_until_ready(runtime, ["grafana"], timeout=30, probe_timeout=0.5)
        assert time.monotonic() - started < 5
    [row] = report.results
    assert row.phase == FAILED
    assert row.detail == "exited with code 1"
    found = diagnose(runtime, row, report.states["grafana"])
    assert found.state == "exited with code 1"
    assert len(found.log_lines) == 30
    assert found.log_lines[-1] == "Error: ✗ failed to parse config"
    assert any("config was rejected" in hint for hint in found.hints)


def test_grafana_is_ready_only_when_its_database_is_ok() -> None:
    answers = iter([{"database": "failing"}, {"database": "ok", "version": "13.2.0"}])

    def health(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        assert path == "/api/health"
        return 200, json.dumps(next(answers, {"database": "ok", "version": "13.2.0"})).encode()

    with http_server(health) as grafana:
        runtime = UrlRuntime({"grafana": grafana})
        assert probe(runtime, "grafana").detail == "database failing"
        report = wait_until_ready(runtime, ["grafana"], timeout=10)
    assert report.ok
    assert report.results[0].version == "13.2.0"


@pytest.mark.parametrize(
    ("state", "lines", "expected"),
    [
        (ServiceState("tempo", "exited", exit_code=137, oom_killed=True), [], "raise components.tempo.memory"),
        (
            ServiceState("loki", "restarting", exit_code=1),
            ['level=error msg="error running loki" err="mkdir /loki/rules: permission denied"'],
            "permission denied on its data",
        ),
        (
            ServiceState("otel-collector", "exited", exit_code=1),
            ["Error: listen tcp 0.0.0.0:4317: bind: address already in use"],
            "a port is already in use",
        ),
        (
            ServiceState("tempo", "exited", exit_code=1),
            ["failed parsing config: failed to parse configFile /etc/tempo/config.yaml: yaml: unmarshal errors:"],
            "config was rejected",
        ),
    ],
)
def test_hints_for_the_usual_causes(state: ServiceState, lines: list[str], expected: str) -> None:
    assert any(expected in hint for hint in hints_for(state.name, state, "", lines))


def test_a_single_restart_during_start_up_is_not_a_failure() -> None:
    class Restarting(UrlRuntime):
        polls = 0

        def ps(self) -> list[ServiceState]:
            self.polls += 1
            state = "restarting" if self.polls == 1 else "running"
            return [ServiceState("loki", state, exit_code=1 if state == "restarting" else 0)]

    with http_server(ready_after(4)) as loki:
        runtime = Restarting({"loki": loki})
        report = wait_until_ready(runtime, ["loki"], timeout=20, state_every=0.2)
    assert report.ok
    assert runtime.polls >= 2
