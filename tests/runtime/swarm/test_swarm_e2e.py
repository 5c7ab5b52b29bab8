"""`runtime: swarm` on a one-node swarm made on the session's real engine (`swarm init` there, `swarm
leave --force` after): deploy, the global Collector, Swarm discovery, converge, status, logs, backup,
restore, down, and the failure paths as one line.

The Collector is the stack's own build (tests/support/images.py); Prometheus and Alertmanager are the real
Debian binaries. Grafana, Loki and Tempo have no image here: they are off.
Prometheus' port is published, on 127.0.0.1, so that the test can query it directly.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.backup.retention import archives_of
from stack.net.ports import free_port
from stack.paths import Paths
from stack.project import load
from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.images import alertmanager_image, collector_image
from tests.support.swarm_support import eventually, one_node_swarm, query, swarm_settings

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def swarm_node(docker_engine: Engine) -> Iterator[str]:
    with one_node_swarm(docker_engine) as node:
        yield node


def running_tasks(engine: Engine, project: str) -> dict[str, set[str]]:
    """The running task ids of each service of the stack: what an update would change."""
    names = engine.docker(
        "service", "ls", "--format", "{{.Name}}", "--filter", f"label=com.docker.stack.namespace={project}"
    )
    found = {}
    for name in names.stdout.split():
        ids = engine.docker("service", "ps", "-q", "--filter", "desired-state=running", name).stdout.split()
        found[name.removeprefix(f"{project}_")] = set(ids)
    return found


def test_an_engine_that_is_no_swarm_manager_is_one_line(project_dir: Path, engine: Engine) -> None:
    # First in this module: the engine is not a swarm node yet.
    assert engine.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"
    swarm_settings(
        project_dir, engine, collector_image="unused:1", alertmanager_port=free_port(), collector_port=free_port()
    )
    for command in (["up"], ["status"], ["down", "--yes"]):
        result = invoke(*command)
        assert result.exit_code == 1, result.output
        assert "is not part of a swarm" in result.output and "docker swarm init" in result.output
        assert "Traceback" not in result.output


def test_swarm_up_discovery_converge_status_logs_backup_restore_down(
    project_dir: Path, paths: Paths, engine: Engine, swarm_node: str
) -> None:
    prometheus_port, alertmanager_port, health_port = free_port(), free_port(), free_port()
    settings = {
        "collector_image": collector_image(engine),
        "alertmanager_port": alertmanager_port,
        "collector_port": health_port,
        "prometheus_port": prometheus_port,
    }
    project = swarm_settings(project_dir, engine, **settings)
    hostname = engine.docker("info", "--format", "{{.Name}}").stdout.strip()
    try:
        up = invoke("up", "--timeout", "120")
        assert up.exit_code == 0, up.output
        tasks = running_tasks(engine, project)
        assert set(tasks) == {"otel-collector", "prometheus", "alertmanager"}
        mode = engine.docker("service", "inspect", f"{project}_otel-collector", "--format", "{{json .Spec.Mode}}")
        assert "Global" in mode.stdout

        def discovered() -> None:
            found = query(prometheus_port, 'up{job="otel-collector"} == 1')
            assert [sample["metric"]["node"] for sample in found] == [hostname]

        eventually(discovered)

        status = invoke("status", "--json")
        assert status.exit_code == 0, status.output
        report = json.loads(status.stdout)
        assert all(component["ready"] for component in report["components"])
        assert [row["node"] for row in report["tasks"]["otel-collector"]] == [hostname]
        doctor = json.loads(invoke("doctor", "--json").stdout)
        assert "swarm" in doctor["checked"]
        assert [f["id"] for f in doctor["findings"] if f["id"].startswith("swarm-")] == []
        logs = invoke("logs", "prometheus", "--tail", "50")
        assert logs.exit_code == 0, logs.output
        assert "Server is ready to receive web requests" in logs.output

        again = invoke("up", "--timeout", "120")
        assert again.exit_code == 0, again.output
        assert running_tasks(engine, project) == tasks

        overrides = ", overrides: {processors: {memory_limiter: {check_interval: 2s}}}"
        swarm_settings(project_dir, engine, **settings, collector_extra=overrides)
        changed = invoke("up", "--timeout", "120")
        assert changed.exit_code == 0, changed.output
        after = running_tasks(engine, project)
        assert after["prometheus"] == tasks["prometheus"] and after["alertmanager"] == tasks["alertmanager"]
        assert after["otel-collector"] and after["otel-collector"] != tasks["otel-collector"]

        eventually(lambda: query(prometheus_port, 'count_over_time(up{job="prometheus"}[1m]) > 3') or _fail())
        backed_up = invoke("backup")
        assert backed_up.exit_code == 0, backed_up.output
        (archive,) = archives_of(paths.backups_dir, load(paths).project)
        restored = invoke("restore", str(archive), "--yes")
        assert restored.exit_code == 0, restored.output
        eventually(lambda: query(prometheus_port, 'up{job="prometheus"}') or _fail())

        down = invoke("down", "--yes")
        assert down.exit_code == 0, down.output
        assert running_tasks(engine, project) == {}
        volumes = engine.docker("volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={project}")
        assert f"{project}_prometheus-data" in volumes.stdout.split()
    finally:
        final = invoke("down", "--volumes", "--yes")
        assert final.exit_code == 0, final.output
    volumes = engine.docker("volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={project}")
    assert volumes.stdout.split() == []


def _fail() -> None:
    raise AssertionError("not yet")


def test_a_port_taken_on_the_node_is_one_line(project_dir: Path, engine: Engine, swarm_node: str) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    swarm_settings(
        project_dir,
        engine,
        collector_image=collector_image(engine),
        alertmanager_port=port,
        collector_port=free_port(),
    )
    try:
        up = invoke("up", "--timeout", "60")
        assert up.exit_code != 0
        assert "alertmanager" in up.output and "failed" in up.output
        assert "address already in use" in up.output or "port" in up.output
        assert "Traceback" not in up.output
    finally:
        taken.close()
        assert invoke("down", "--volumes", "--yes").exit_code == 0


def test_the_backend_label_missing_is_one_line(project_dir: Path, engine: Engine, swarm_node: str) -> None:
    swarm_settings(
        project_dir,
        engine,
        collector_image=collector_image(engine),
        alertmanager_port=free_port(),
        collector_port=free_port(),
        backend_label="stack.role=nowhere",
    )
    up = invoke("up", "--timeout", "30")
    assert up.exit_code == 1, up.output
    assert "no swarm node has the label stack.role=nowhere" in up.output
    assert "docker node update --label-add stack.role=nowhere" in up.output


def test_a_service_that_never_converges_fails_up_with_its_task_error(
    project_dir: Path, engine: Engine, swarm_node: str
) -> None:
    # A route to a receiver that does not exist: Alertmanager refuses its config and exits, every time.
    swarm_settings(
        project_dir,
        engine,
        collector_image=collector_image(engine),
        alertmanager_port=free_port(),
        collector_port=free_port(),
        alertmanager_extra=", overrides: {route: {receiver: nowhere}}",
    )
    try:
        up = invoke("up", "--timeout", "90")
        assert up.exit_code == 1, up.output
        # Swarm started it again (its restart policy) before it counts as failed, with the task's error
        # and the reason in its log.
        said = " ".join(up.output.split())
        assert "alertmanager is not ready: failed: task: non-zero exit (1) on node" in said
        assert 'undefined receiver \\"nowhere\\" used in route' in said
        assert "Traceback" not in up.output
    finally:
        assert invoke("down", "--volumes", "--yes").exit_code == 0


def test_a_failed_update_is_rolled_back_and_named(project_dir: Path, engine: Engine, swarm_node: str) -> None:
    settings = {
        "collector_image": collector_image(engine),
        "alertmanager_port": free_port(),
        "collector_port": free_port(),
    }
    project = swarm_settings(project_dir, engine, **settings)
    try:
        up = invoke("up", "--timeout", "120")
        assert up.exit_code == 0, up.output
        # A config Alertmanager refuses: the new task exits, Swarm rolls the service back.
        swarm_settings(project_dir, engine, **settings, alertmanager_extra=", overrides: {route: {receiver: nowhere}}")
        changed = invoke("up", "--timeout", "120")
        assert changed.exit_code == 1, changed.output
        said = " ".join(changed.output.split())
        assert "the update of alertmanager failed and Swarm rolled it back" in said, changed.output
        assert "the previous version runs on" in said and "Traceback" not in said
        state = engine.docker("service", "inspect", f"{project}_alertmanager", "--format", "{{.UpdateStatus.State}}")
        assert state.stdout.strip() == "rollback_completed"
        # The previous version runs on (its rolled-back task may still be starting), and becomes ready.

        def alertmanager_ready() -> None:
            status = json.loads(invoke("status", "--json").stdout)
            assert {row["name"]: row["ready"] for row in status["components"]}["alertmanager"] is True

        eventually(alertmanager_ready, timeout=60)
    finally:
        assert invoke("down", "--volumes", "--yes").exit_code == 0


def test_an_app_service_that_opts_in_by_label_is_scraped_through_swarm_discovery(
    project_dir: Path, engine: Engine, swarm_node: str
) -> None:
    prometheus_port = free_port()
    project = swarm_settings(
        project_dir,
        engine,
        collector_image=collector_image(engine),
        alertmanager_port=free_port(),
        collector_port=free_port(),
        prometheus_port=prometheus_port,
    )
    hostname = engine.docker("info", "--format", "{{.Name}}").stdout.strip()
    app = f"{project}-app"
    try:
        up = invoke("up", "--timeout", "120")
        assert up.exit_code == 0, up.output
        # An app as docs/scaling.md says to run one: on the stack's network, with the scrape labels
        # (Alertmanager's image stands in: it serves /metrics on 9093).
        engine.docker(
            "service", "create", "--detach", "--no-resolve-image", "--name", app,
            "--network", f"{project}_default",
            "--label", "dev.stack.scrape=true", "--label", "dev.stack.port=9093",
            alertmanager_image(engine),
        )  # fmt: skip

        def scraped() -> None:
            found = query(prometheus_port, f'up{{job="{app}"}} == 1')
            assert [sample["metric"]["node"] for sample in found] == [hostname]

        # Swarm discovery refreshes every 60 s (Prometheus' default).
        eventually(scraped, timeout=150)
    finally:
        engine.docker("service", "rm", app, check=False)
        assert invoke("down", "--volumes", "--yes").exit_code == 0
