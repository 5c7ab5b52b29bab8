"""`stack backup` and `stack restore` end to end on the process runtime (real Prometheus and
Alertmanager processes from Debian's packages): scraped series and a silence survive a wipe."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from stack.backup.retention import archives_of
from stack.health import wait_until_ready
from stack.net.ports import free_port
from stack.paths import Paths
from stack.project import load
from stack.runtime.process.runtime import ProcessRuntime
from stack.runtime.select import get_runtime
from stack.settings import COMPONENT_NAMES
from tests.conftest import invoke
from tests.support.backup_helpers import LATE_METRIC, query_range, write_late_series
from tests.support.realbin import binary


def _runtime(directory: Path) -> ProcessRuntime:
    paths = Paths.discover(directory / "stack.yaml")
    runtime = get_runtime(load(paths), paths)
    assert isinstance(runtime, ProcessRuntime)
    return runtime


@pytest.fixture
def project(project_dir: Path) -> Iterator[Path]:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    components = {name: {"enabled": False} for name in COMPONENT_NAMES}
    # Ports from the OS, never 9090/9093 (other test runs on this machine may hold them).
    components["prometheus"] = {"scrape_interval": "1s", "port": free_port()}
    components["alertmanager"] = {"port": free_port()}
    settings = {"project": "backup-proc", "runtime": "process", "components": components}
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(settings))
    yield project_dir
    _runtime(project_dir).down(volumes=True, timeout=5)


def _up_samples(runtime: ProcessRuntime, start: int, end: int) -> list[list[object]]:
    query = f"/api/v1/query_range?query=up{{job=%22prometheus%22}}&start={start}&end={end}&step=1"
    result = json.loads(runtime.http("prometheus", "http", query).body)["data"]["result"]
    return result[0]["values"] if result else []


def _silences(runtime: ProcessRuntime) -> list[str]:
    found = json.loads(runtime.http("alertmanager", "http", "/api/v2/silences").body)
    return [s["comment"] for s in found if s["status"]["state"] == "active"]


def test_backup_wipe_restore_on_the_process_runtime(project: Path) -> None:
    runtime = _runtime(project)
    runtime.up()
    assert wait_until_ready(runtime, ["prometheus", "alertmanager"], timeout=60).ok
    now = datetime.now(UTC)
    silence = {
        "matchers": [{"name": "alertname", "value": "Maintenance", "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=2)).isoformat(),
        "createdBy": "tests",
        "comment": "planned maintenance",
    }
    runtime.http(
        "alertmanager",
        "http",
        "/api/v2/silences",
        method="POST",
        body=json.dumps(silence).encode(),
        headers={"Content-Type": "application/json"},
    )
    until, before = _settled_up_samples(runtime)

    backed_up = invoke("backup")
    assert backed_up.exit_code == 0, backed_up.output
    (archive,) = archives_of(project / "backups", "backup-proc")

    runtime.down(volumes=True, timeout=5)
    runtime = _runtime(project)
    runtime.up()
    assert wait_until_ready(runtime, ["prometheus", "alertmanager"], timeout=60).ok
    assert _up_samples(runtime, until - 20, until) == []
    assert _silences(runtime) == []

    restored = invoke("restore", str(archive), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "Restored prometheus, alertmanager" in restored.stdout
    assert _up_samples(runtime, until - 20, until) == before
    assert _silences(runtime) == ["planned maintenance"]


def _settled_up_samples(runtime: ProcessRuntime) -> tuple[int, list[list[object]]]:
    """A few scrapes of `up`, then the samples of a 20 s window that is settled (a scrape in flight
    right now may land after the query): (its end, the samples)."""
    deadline = time.monotonic() + 30
    while len(_up_samples(runtime, int(time.time()) - 60, int(time.time()) - 3)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    until = int(time.time()) - 3
    before = _up_samples(runtime, until - 20, until)
    assert before
    return until, before


def test_restore_on_the_process_runtime_removes_what_was_written_after_the_backup(project: Path) -> None:
    runtime = _runtime(project)
    runtime.up()
    assert wait_until_ready(runtime, ["prometheus", "alertmanager"], timeout=60).ok
    until, before = _settled_up_samples(runtime)

    backed_up = invoke("backup")
    assert backed_up.exit_code == 0, backed_up.output
    (archive,) = archives_of(project / "backups", "backup-proc")

    # After the backup: a block with a new series joins the data directory and is served.
    runtime.stop(["prometheus"], timeout=5)
    late_start, late_end = write_late_series(runtime.root / "prometheus" / "data", project)
    runtime.start(["prometheus"])
    assert wait_until_ready(runtime, ["prometheus"], timeout=60).ok
    assert query_range(runtime, LATE_METRIC, late_start, late_end, 60) != {}

    restored = invoke("restore", str(archive), "--only", "prometheus", "--yes")
    assert restored.exit_code == 0, restored.output

    assert query_range(runtime, LATE_METRIC, late_start, late_end, 60) == {}
    assert _up_samples(runtime, until - 20, until) == before
    data = runtime.root / "prometheus" / "data"
    assert [p.name for p in data.parent.iterdir() if ".previous-" in p.name] == []
