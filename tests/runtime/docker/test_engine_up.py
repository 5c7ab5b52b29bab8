"""`stack up`, re-`up`, `status`, `logs` and `down` on the real test engine (tests/support/engine.py), with images
built from Debian's binaries (tests/support/images.py). Grafana, Loki and Tempo have no binary here, and
the Collector's image goes only to the tests that want a Collector (tests/components/test_collector_docker.py):
all four are disabled in these tests.

The read-only tests share one stack, started once for the module (each `up` costs seconds of the
suite's budget); the tests that change a stack start their own.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import Result

from stack.net.ports import free_port
from tests.support.engine import Engine
from tests.support.enginestack import EngineStack, prometheus_and_alertmanager, running_stack
from tests.support.images import binary_version

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Started:
    stack: EngineStack
    up: Result
    alertmanager_port: int

    def ok(self) -> EngineStack:
        assert self.up.exit_code == 0, self.up.output
        return self.stack


@pytest.fixture(scope="module")
def started(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    port = free_port()
    components = prometheus_and_alertmanager(docker_engine, alertmanager_port=port)
    with running_stack(docker_engine, tmp_path_factory.mktemp("up"), components, kind="up") as stack:
        yield Started(stack, stack.stack("up", "--timeout", "120"), port)


def test_up_waits_until_every_component_is_ready_and_prints_the_urls(started: Started) -> None:
    started.ok()
    assert f"Alertmanager  http://127.0.0.1:{started.alertmanager_port}" in started.up.output


def test_up_readiness_of_the_unpublished_prometheus_comes_from_its_healthcheck(started: Started) -> None:
    health = started.ok().containers()["prometheus"]["State"]["Health"]
    assert health["Status"] == "healthy"


def test_up_runs_nothing_inside_the_containers_but_their_own_healthchecks(started: Started) -> None:
    # Readiness must not depend on the tools inside someone else's image: the engine's events say
    # what was executed in the containers since they were created.
    containers = started.ok().containers().values()
    since = min(c["Created"] for c in containers)
    events = started.stack.engine.docker(
        "events",
        "--since",
        since,
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        "type=container",
        "--filter",
        "event=exec_create",
        "--format",
        "{{json .}}",
    )
    executed = {json.loads(line)["Action"].removeprefix("exec_create: ") for line in events.stdout.splitlines()}
    healthchecks = {" ".join(c["Config"]["Healthcheck"]["Test"][1:]) for c in containers}
    assert executed and executed <= healthchecks


def test_up_without_grafana_does_not_send_users_to_grafana_explore(started: Started) -> None:
    started.ok()
    assert "Grafana > Explore" not in started.up.output
    assert "Prometheus    not published" in started.up.output


def test_reup_of_an_unchanged_stack_recreates_and_restarts_nothing(started: Started) -> None:
    stack = started.ok()
    before = stack.starts()
    assert sorted(before) == ["alertmanager", "prometheus"]
    again = stack.stack("up", "--timeout", "120")
    assert again.exit_code == 0, again.output
    assert stack.starts() == before


def test_status_reads_the_versions_of_the_real_containers(started: Started) -> None:
    status = started.ok().stack("status", "--json")
    assert status.exit_code == 0, status.output
    versions = {c["name"]: (c["ready"], c["version"]) for c in json.loads(status.stdout)["components"]}
    assert versions == {
        "prometheus": (True, "v" + binary_version(["prometheus", "--version"])),
        "alertmanager": (True, "v" + binary_version(["prometheus-alertmanager", "--version"])),
    }


def test_logs_prints_the_component_lines(started: Started) -> None:
    logs = started.ok().stack("logs", "prometheus")
    assert logs.exit_code == 0, logs.output
    assert "Server is ready to receive web requests." in logs.stdout


def test_logs_follow_prints_new_lines_until_interrupted(started: Started) -> None:
    stack = started.ok()
    follow = subprocess.Popen(
        stack.argv("logs", "--follow", "--tail", "0", "alertmanager"),
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout or []], daemon=True).start()
    try:
        # Alertmanager logs a reload of its configuration; the request is retried until the follow has begun.
        url = f"http://127.0.0.1:{started.alertmanager_port}/-/reload"
        seen = ""
        for _ in range(20):
            assert requests.post(url, timeout=10).status_code == 200
            with contextlib.suppress(queue.Empty):
                seen = lines.get(timeout=1.5)
                break
        assert "onfiguration file" in seen, seen
    finally:
        follow.send_signal(signal.SIGINT)
        _, stderr = follow.communicate(timeout=30)
    assert "Traceback" not in stderr


def test_status_exits_1_when_one_component_is_stopped(started: Started) -> None:
    # Last of the shared-stack tests: it stops a container (and starts it again for the teardown).
    stack = started.ok()
    container = stack.containers()["alertmanager"]["Id"]
    stack.engine.docker("stop", container)
    try:
        status = stack.stack("status", "--json")
        assert status.exit_code == 1, status.output
        ready = {c["name"]: c["ready"] for c in json.loads(status.stdout)["components"]}
        assert ready == {"prometheus": True, "alertmanager": False}
    finally:
        stack.engine.docker("start", container)


def test_status_after_a_restart_waits_for_a_healthcheck_of_the_new_start(started: Started) -> None:
    # The engine keeps the previous run's "healthy" across a restart until its next check (5 s later).
    stack = started.ok()
    stack.engine.docker("restart", "--time", "5", stack.containers()["prometheus"]["Id"])
    status = stack.stack("status", "--json")
    assert status.exit_code == 1, status.output
    prometheus = next(c for c in json.loads(status.stdout)["components"] if c["name"] == "prometheus")
    assert (prometheus["ready"], prometheus["detail"]) == (False, "healthcheck starting")


def _silence(port: int) -> str:
    body = {
        "matchers": [{"name": "alertname", "value": "KeptAcrossDown", "isRegex": False}],
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "tests",
        "comment": "kept by down",
    }
    reply = requests.post(f"http://127.0.0.1:{port}/api/v2/silences", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["silenceID"])


def test_down_keeps_the_data_and_the_next_up_sees_it(engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    with running_stack(engine, tmp_path, prometheus_and_alertmanager(engine, alertmanager_port=port)) as stack:
        first = stack.stack("up", "--timeout", "120")
        assert first.exit_code == 0, first.output
        silence = _silence(port)
        # Alertmanager writes its silences to its volume on shutdown (and every 15 minutes).
        down = stack.stack("down")
        assert down.exit_code == 0, down.output
        assert stack.container_ids() == []
        again = stack.stack("up", "--timeout", "120")
        assert again.exit_code == 0, again.output
        found = requests.get(f"http://127.0.0.1:{port}/api/v2/silence/{silence}", timeout=10)
        assert found.status_code == 200 and found.json()["comment"] == "kept by down"


def test_down_volumes_yes_removes_containers_networks_and_volumes(engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    with running_stack(engine, tmp_path, prometheus_and_alertmanager(engine, alertmanager_port=port)) as stack:
        first = stack.stack("up", "--timeout", "120")
        assert first.exit_code == 0, first.output
        assert len(stack.volumes()) >= 2
        down = stack.stack("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
        assert (stack.container_ids(), stack.networks(), stack.volumes()) == ([], [], [])
