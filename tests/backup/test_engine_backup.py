"""`stack backup`, `backup verify` and `restore` on the real test engine (tests/support/engine.py), with images
built from Debian's binaries (tests/support/images.py). Grafana, Loki and Tempo have no binary here: they are
disabled in these tests.

Prometheus stays unpublished, as by default: its snapshot goes through the real admin API from inside
the project's network, and its data through the Engine API's archive calls.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import pytest

from stack.backup.retention import archives_of
from stack.paths import Paths
from stack.project import load
from stack.runtime.select import get_runtime
from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.enginestack import write_engine_settings


def add_scrape_job(engine: Engine, project: str, job: str) -> None:
    """A file_sd target file for `job` (Alertmanager's metrics under another job name), put into the
    running Prometheus' targets directory as docs/configuration.md tells users to: `docker cp`."""
    container = f"{project}-prometheus-1"
    text = json.dumps([{"targets": ["alertmanager:9093"], "labels": {"job": job}}])
    source = engine.root / f"{job}.json"
    source.write_text(text)
    source.chmod(0o644)
    engine.docker("cp", str(source), f"{container}:/etc/prometheus/targets/{job}.json")


def remove_scrape_job(engine: Engine, project: str, job: str) -> None:
    engine.docker("exec", "-u", "0", f"{project}-prometheus-1", "rm", "-f", f"/etc/prometheus/targets/{job}.json")


def up_samples(paths: Paths, job: str, start: float, end: float) -> list[list[object]]:
    """The samples of `up{job=JOB}` between start and end, asked of the unpublished Prometheus."""
    runtime = get_runtime(load(paths), paths)
    query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}', "start": start, "end": end, "step": "1"})
    reply = runtime.http("prometheus", "http", f"/api/v1/query_range?{query}", timeout=10)
    assert reply.status == 200, reply.text()
    result = json.loads(reply.body)["data"]["result"]
    return result[0]["values"] if result else []


def wait_for_samples(paths: Paths, job: str, since: float, count: int = 3) -> None:
    deadline = time.monotonic() + 90
    while len(up_samples(paths, job, since, time.time())) < count:
        assert time.monotonic() < deadline, f"no {count} samples of up{{job={job!r}}} within 90 s"
        time.sleep(1)


def volume_created(engine: Engine, project: str) -> str:
    inspected = json.loads(engine.docker("volume", "inspect", f"{project}_prometheus-data").stdout)
    return str(inspected[0]["CreatedAt"])


@pytest.mark.docker
def test_backup_verify_and_restore_replace_prometheus_data_on_the_real_engine(
    project_dir: Path, paths: Paths, engine: Engine
) -> None:
    project = write_engine_settings(project_dir, engine, "stack-engine-backup")
    try:
        up = invoke("up", "--timeout", "120")
        assert up.exit_code == 0, up.output
        started = time.time()
        add_scrape_job(engine, project, "before-backup")
        wait_for_samples(paths, "before-backup", started)
        # Everything up to here is in the snapshot; scrapes during the backup may or may not be.
        until = time.time() - 1
        before = up_samples(paths, "before-backup", started, until)
        assert len(before) >= 2

        backed_up = invoke("backup", "--json")
        assert backed_up.exit_code == 0, backed_up.output
        report = json.loads(backed_up.stdout)
        # The snapshot is taken through the real admin API and removed from the volume afterwards.
        assert report["notes"] == [], report["notes"]
        assert {c["component"] for c in report["components"]} >= {"prometheus", "alertmanager"}
        listed = engine.docker("exec", f"{project}-prometheus-1", "ls", "/prometheus/snapshots").stdout
        assert listed.split() == []
        backup_done = time.time()

        (archive,) = archives_of(paths.backups_dir, project)
        verified = invoke("backup", "verify", str(archive), "--json")
        assert verified.exit_code == 0, verified.output
        assert json.loads(verified.stdout)["components"]["prometheus"]["files"] > 0

        # Everything since the backup goes: a fresh volume, then a series only it holds.
        remove_scrape_job(engine, project, "before-backup")
        assert invoke("down", "--volumes", "--yes").exit_code == 0
        again = invoke("up", "--timeout", "120")
        assert again.exit_code == 0, again.output
        assert up_samples(paths, "before-backup", started, time.time()) == []
        add_scrape_job(engine, project, "after-backup")
        wait_for_samples(paths, "after-backup", backup_done)
        remove_scrape_job(engine, project, "after-backup")
        volume_before_restore = volume_created(engine, project)

        restored = invoke("restore", str(archive), "--yes")
        assert restored.exit_code == 0, restored.output
        assert volume_created(engine, project) != volume_before_restore  # replaced, not merged into
        assert up_samples(paths, "before-backup", started, until) == before
        assert up_samples(paths, "after-backup", backup_done, time.time()) == []
    finally:
        down = invoke("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
