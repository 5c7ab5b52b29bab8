"""Backup and restore of the real stack on a Docker engine: `stack up` -> a dashboard made in Grafana
and Prometheus' own series -> `stack backup` -> `stack down --volumes --yes` -> `stack up` (empty) ->
`stack restore --yes` -> both are back.

On the suite's engine (tests/support/engine.py); skipped, naming them, while the engine lacks an image for a
component (Grafana, Loki and Tempo have no binary here). Prometheus and Alertmanager alone are backed
up and restored on the real engine in tests/backup/test_engine_backup.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from stack.backup.retention import archives_of
from stack.net.ports import free_port
from stack.paths import Paths
from stack.project import load
from stack.runtime.select import get_runtime
from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.enginestack import absent_images, full_stack_images


def _prometheus_up_samples(paths: Paths, start: int, end: int) -> list[list[object]]:
    runtime = get_runtime(load(paths), paths)
    query = f"/api/v1/query_range?query=up{{job=%22prometheus%22}}&start={start}&end={end}&step=15"
    reply = runtime.http("prometheus", "http", query, timeout=10)
    result = json.loads(reply.body)["data"]["result"]
    return result[0]["values"] if result else []


@pytest.mark.docker
def test_backup_and_restore_the_real_stack(project_dir: Path, paths: Paths, engine: Engine) -> None:
    images = full_stack_images(engine)
    absent = absent_images(engine, list(images.values()))
    if absent:
        pytest.skip(f"no image on the test engine for {', '.join(absent)} (nothing is pulled in the tests)")
    grafana_port = free_port()
    (project_dir / "stack.yaml").write_text(
        f"project: stack-backup-e2e-{os.getpid()}\n"
        "components:\n"
        f"  grafana: {{image: {images['grafana']}, port: {grafana_port}}}\n"
        f"  prometheus: {{image: {images['prometheus']}, scrape_interval: 5s}}\n"
        f"  loki: {{image: {images['loki']}, port: null}}\n"
        f"  tempo: {{image: {images['tempo']}, port: null}}\n"
        f"  alertmanager: {{image: {images['alertmanager']}, port: null}}\n"
        f"  otel-collector: {{image: {images['otel-collector']}, port: null, otlp_grpc_port: null, "
        "otlp_http_port: null}\n"
    )
    grafana = f"http://127.0.0.1:{grafana_port}"
    try:
        assert invoke("up", "--timeout", "300").exit_code == 0
        auth = tuple(json.loads(invoke("credentials", "--json").stdout)[key] for key in ("user", "password"))
        folder = requests.post(f"{grafana}/api/folders", json={"uid": "e2e", "title": "E2E"}, auth=auth, timeout=10)
        assert folder.ok, folder.text
        dashboard = {"uid": "e2e-board", "title": "E2E board", "panels": []}
        saved = requests.post(
            f"{grafana}/api/dashboards/db", json={"dashboard": dashboard, "folderUid": "e2e"}, auth=auth, timeout=10
        )
        assert saved.ok, saved.text
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline
            and len(_prometheus_up_samples(paths, int(time.time()) - 60, int(time.time()) - 15)) < 2
        ):
            time.sleep(2)
        until = int(time.time()) - 15
        before = _prometheus_up_samples(paths, until - 60, until)
        assert before

        backed_up = invoke("backup")
        assert backed_up.exit_code == 0, backed_up.output
        (archive,) = archives_of(paths.backups_dir, load(paths).project)
        assert invoke("backup", "verify", str(archive)).exit_code == 0

        assert invoke("down", "--volumes", "--yes").exit_code == 0
        assert invoke("up", "--timeout", "300").exit_code == 0
        gone = requests.get(f"{grafana}/api/dashboards/uid/e2e-board", auth=auth, timeout=10)
        assert gone.status_code == 404

        restored = invoke("restore", str(archive), "--yes")
        assert restored.exit_code == 0, restored.output
        back = requests.get(f"{grafana}/api/dashboards/uid/e2e-board", auth=auth, timeout=10)
        assert back.status_code == 200
        assert back.json()["meta"]["folderUid"] == "e2e"
        assert _prometheus_up_samples(paths, until - 60, until) == before
    finally:
        assert invoke("down", "--volumes", "--yes").exit_code == 0
