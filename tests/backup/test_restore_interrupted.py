"""`stack restore --yes` signalled in its critical section, as a real child process, on the process
runtime with Debian's real Prometheus and Alertmanager: the step under way finishes (Prometheus gets
its state back and is started again), the restore stops right after with exit 130, and the one line
says where each component is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.runtime.process.test_process_cli import project  # noqa: F401  (the fixture)
from tests.runtime.process.test_process_runtime import open_runtime, processes_under
from tests.support.backup_helpers import query_range, write_known_series

# Runs the real CLI; the only change: Prometheus' offline restore says when it has begun (a marker
# file) and lingers a moment, so that the test's signal lands inside the critical section.
CHILD = """
import sys, time
from pathlib import Path
from stack.backup.prometheus import PrometheusStep
from stack.cli import main

marker = Path(sys.argv[1])
original = PrometheusStep.restore_offline

def restore_offline(self, ctx, spool):
    marker.write_text("stopped")
    time.sleep(2)
    original(self, ctx, spool)

PrometheusStep.restore_offline = restore_offline
main(sys.argv[2:])
"""


def _silence_comments(project_dir: Path) -> list[str]:
    runtime = open_runtime(project_dir)
    return [s["comment"] for s in json.loads(runtime.http("alertmanager", "http", "/api/v2/silences").body)]


@pytest.mark.parametrize(
    "how",
    [
        # A terminal's Ctrl-C goes to the whole foreground process group.
        ("SIGINT", lambda child: os.killpg(child.pid, signal.SIGINT)),
        # A service manager or `kill` sends SIGTERM to the process.
        ("SIGTERM", lambda child: os.kill(child.pid, signal.SIGTERM)),
    ],
    ids=["sigint-to-the-group", "sigterm"],
)
def test_a_signal_in_the_critical_section_finishes_it_then_stops(project: Path, how: tuple) -> None:  # noqa: F811
    name, send = how
    runtime = open_runtime(project)
    known = write_known_series(runtime.root / "prometheus" / "data", project)
    assert invoke("up").exit_code == 0
    now = datetime.now(UTC)
    silence = {
        "matchers": [{"name": "alertname", "value": "Interrupted", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=2)).isoformat(),
        "createdBy": "test",
        "comment": "in the backup",
    }
    runtime.http(
        "alertmanager",
        "http",
        "/api/v2/silences",
        method="POST",
        body=json.dumps(silence).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert invoke("backup").exit_code == 0
    archive = next((project / "backups").iterdir())
    assert invoke("down", "--volumes", "--yes").exit_code == 0
    assert invoke("up").exit_code == 0
    assert _silence_comments(project) == []

    marker = project / "restore-began"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACK_")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker), "restore", str(archive), "--yes"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a shell's foreground job has
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the restore never reached Prometheus"
        time.sleep(0.02)
    send(child)
    _out, err = child.communicate(timeout=120)

    assert child.returncode == 130, err
    assert f"Warning: {name} received: finishing the step under way first" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"Error: restore interrupted ({name}): prometheus: restored, started again; ")
    assert "alertmanager: not restored (its data is as before)" in last
    assert "Traceback" not in err
    # Prometheus has its state back and runs; Alertmanager was left as it was.
    assert {s.name: s.state for s in runtime.ps()}["prometheus"] == "running"
    series = query_range(runtime, "stack_backup_probe", known.start, known.end, known.step)
    assert series == {"a": known.values("a"), "b": known.values("b")}
    assert _silence_comments(project) == []
    # Nothing left that the next run cannot use: the same restore, run again, finishes it.
    again = invoke("restore", str(archive), "--yes")
    assert again.exit_code == 0, again.stderr
    assert _silence_comments(project) == ["in the backup"]
    assert invoke("down").exit_code == 0
    assert processes_under(project) == []
