"""`stack up` on the real test engine (tests/engine.py), with images built from Debian's binaries
(tests/images.py). Grafana, Loki and Tempo have no binary here: they are disabled in these tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.engine import Engine
from tests.images import alertmanager_image, prometheus_image
from tests.realbin import free_port


def write_settings(project_dir: Path, engine: Engine, *, alertmanager_port: int) -> str:
    project = f"stack-engine-{os.getpid()}"
    (project_dir / "stack.yaml").write_text(
        f"project: {project}\n"
        "components:\n"
        f"  prometheus: {{image: {prometheus_image(engine)}, scrape_interval: 5s}}\n"
        f"  alertmanager: {{image: {alertmanager_image(engine)}, port: {alertmanager_port}}}\n"
        "  otel-collector: {enabled: false}\n"
        "  loki: {enabled: false}\n"
        "  tempo: {enabled: false}\n"
        "  grafana: {enabled: false}\n"
    )
    return project


def container_starts(engine: Engine, project: str) -> dict[str, str]:
    """Each running container's id and start time: what a recreation would change."""
    ids = engine.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
    inspected = json.loads(engine.docker("inspect", *ids).stdout)
    return {c["Id"]: c["State"]["StartedAt"] for c in inspected}


@pytest.mark.docker
def test_up_on_the_real_engine_starts_prometheus_and_alertmanager_then_reup_recreates_nothing(
    project_dir: Path, engine: Engine
) -> None:
    port = free_port()
    project = write_settings(project_dir, engine, alertmanager_port=port)
    try:
        result = invoke("up", "--timeout", "120")
        assert result.exit_code == 0, result.output
        assert f"http://127.0.0.1:{port}" in result.output
        before = container_starts(engine, project)
        assert len(before) == 2
        status = invoke("status", "--json")
        assert status.exit_code == 0, status.output
        assert all(c["ready"] for c in json.loads(status.stdout)["components"])
        again = invoke("up", "--timeout", "120")
        assert again.exit_code == 0, again.output
        assert container_starts(engine, project) == before
    finally:
        down = invoke("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
