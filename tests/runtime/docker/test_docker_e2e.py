"""End to end on the suite's Docker engine (tests/support/engine.py): `stack up` -> every component ready ->
Grafana provisioned -> a span sent over OTLP is found in Tempo -> `stack down --volumes --yes`.

Grafana, Loki and Tempo run as stand-ins (tests/support/standins/) and the test's name says so; a test that
needs the real three skips, naming the images the engine lacks (nothing is pulled in the tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.enginestack import full_stack_images, full_stack_settings
from tests.support.images import grafana_standin_image, loki_standin_image, tempo_standin_image

# Read at import: the project_dir fixture clears STACK_* variables before a test body runs.
REQUIRE_DOCKER = os.environ.get("STACK_REQUIRE_DOCKER") == "1"


def engine_problem() -> str | None:
    """Why the machine's own default engine cannot run the stack, or None when it can (for the tests of
    what users see without one; the docker-marked tests use the suite's engine, tests/support/engine.py)."""
    if not shutil.which("docker"):
        return "the docker CLI is not installed"
    version = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, check=False
    )
    if version.returncode != 0:
        return f"no Docker engine answers: {version.stderr.strip().splitlines()[-1] if version.stderr else '?'}"
    compose = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False)
    if compose.returncode != 0:
        return "the docker compose plugin is not installed"
    return None


def require_engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    if REQUIRE_DOCKER:
        pytest.fail(f"STACK_REQUIRE_DOCKER=1 but {problem}")
    pytest.skip(problem)


def test_without_an_engine_up_is_one_clear_line(tmp_path: Path) -> None:
    """What `make up` shows on a machine without Docker: the real CLI, the real engine check."""
    if shutil.which("docker") and engine_problem() is None:
        pytest.skip("a Docker engine answers here")
    # As from a user's shell: under `make test` (CI) the parent make's MAKELEVEL would turn the hint
    # into `make up RUNTIME=process` (stack/invocation.py).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STACK_") and k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    }
    done = subprocess.run(
        [sys.executable, "-m", "stack", "up"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ")
    assert "stack up --runtime process" in lines[0]
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def _send_span(otlp_http: str, trace_id: str) -> None:
    now = time.time_ns()
    payload = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "e2e-test"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "0102030405060708",
                                "name": "e2e-span",
                                "kind": 2,
                                "startTimeUnixNano": str(now - 5_000_000),
                                "endTimeUnixNano": str(now),
                            }
                        ]
                    }
                ],
            }
        ]
    }
    reply = requests.post(f"{otlp_http}/v1/traces", json=payload, timeout=10)
    assert reply.status_code == 200, reply.text


@pytest.mark.docker
def test_the_stack_end_to_end_with_standins_for_grafana_loki_and_tempo(project_dir: Path, engine: Engine) -> None:
    """The real Prometheus, Alertmanager and Collector; Grafana, Loki and Tempo are stand-ins
    (tests/support/standins/): what is real is the Docker path between them, not those three."""
    images = {
        **full_stack_images(engine),
        "grafana": grafana_standin_image(engine),
        "loki": loki_standin_image(engine),
        "tempo": tempo_standin_image(engine),
    }
    ports = full_stack_settings(engine, project_dir, images=images)
    try:
        result = invoke("up", "--timeout", "300")
        assert result.exit_code == 0, result.output
        status = invoke("status", "--json")
        assert status.exit_code == 0, status.output
        assert all(c["ready"] for c in json.loads(status.stdout)["components"])
        creds = json.loads(invoke("credentials", "--json").stdout)
        grafana = f"http://127.0.0.1:{ports['grafana']}"
        auth = (creds["user"], creds["password"])
        uids = {d["uid"] for d in requests.get(f"{grafana}/api/datasources", auth=auth, timeout=10).json()}
        assert {"prometheus", "loki", "tempo", "alertmanager"} <= uids
        # Grafana-managed alerts go to the stack's Alertmanager only (alerting.grafana_alerts default).
        sent_to = requests.get(f"{grafana}/api/v1/ngalert/admin_config", auth=auth, timeout=10).json()
        assert sent_to["alertmanagersChoice"] == "external"
        from stack.grafana.dashboards import selected_dashboards
        from stack.paths import Paths
        from stack.project import load

        wanted = selected_dashboards(load(Paths.discover(project_dir / "stack.yaml")), project_dir)
        listed = requests.get(f"{grafana}/api/search", params={"type": "dash-db"}, auth=auth, timeout=10).json()
        assert wanted and {d.uid for d in wanted} <= {d["uid"] for d in listed}
        trace_id = os.urandom(16).hex()
        _send_span(f"http://127.0.0.1:{ports['http']}", trace_id)
        deadline = time.monotonic() + 60
        found = False
        while time.monotonic() < deadline and not found:
            reply = requests.get(f"http://127.0.0.1:{ports['tempo']}/api/traces/{trace_id}", timeout=10)
            found = reply.status_code == 200
            time.sleep(2)
        # Sent by the real Collector to Tempo's OTLP/gRPC port over the project's network.
        assert found, f"trace {trace_id} not found in Tempo"
        # Idempotent: a second `up` recreates nothing.
        again = invoke("up", "--timeout", "120")
        assert again.exit_code == 0, again.output
        assert " 0 writes)" in again.stderr
    finally:
        down = invoke("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
