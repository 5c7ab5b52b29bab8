"""What an interrupted backup or restore leaves behind, cleaned: real child processes, signalled.

- Ctrl-C or SIGTERM while Prometheus writes its snapshot (Debian's real Prometheus, process runtime): the
  snapshot is removed before the command exits 130, and nothing else is left.
- SIGKILL with a private temporary directory in use (a restore's spooled archive, a grafana.db
  copy): the next run sweeps it; a live process's directory is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stack.backup.tempdirs import private_tempdir
from tests.conftest import invoke
from tests.runtime.process.test_process_cli import project  # noqa: F401  (the fixture)
from tests.runtime.process.test_process_runtime import open_runtime

# The real CLI; the only change: once Prometheus has written the snapshot, its reply lingers (as a
# large snapshot's does) and says so with a marker file, so that the test's Ctrl-C lands there.
CHILD = """
import sys, time
from pathlib import Path
from stack.backup.steps import StepContext
from stack.cli import main

marker = Path(sys.argv[1])
original = StepContext.http

def http(self, service, path, **kwargs):
    reply = original(self, service, path, **kwargs)
    if path.endswith("/admin/tsdb/snapshot"):
        marker.write_text("snapshot written, reply on its way")
        time.sleep(2)
    return reply

StepContext.http = http
main(sys.argv[2:])
"""


@pytest.mark.parametrize(
    "how",
    [
        # A terminal's Ctrl-C goes to the whole foreground process group.
        lambda child: os.killpg(child.pid, signal.SIGINT),
        # A service manager or `kill` sends SIGTERM to the process; backup handles it as Ctrl-C.
        lambda child: os.kill(child.pid, signal.SIGTERM),
    ],
    ids=["sigint-to-the-group", "sigterm"],
)
def test_a_signal_during_the_prometheus_snapshot_leaves_no_snapshot(project: Path, how: Callable[..., None]) -> None:  # noqa: F811
    assert invoke("up").exit_code == 0
    runtime = open_runtime(project)
    snapshots = runtime.root / "prometheus" / "data" / "snapshots"
    marker = project / "snapshot-began"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACK_")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker), "backup"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    how(child)
    _out, err = child.communicate(timeout=120)

    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == "Interrupted."
    # Prometheus wrote the snapshot after all (the request was under way): it is gone again.
    assert not snapshots.exists() or list(snapshots.iterdir()) == []
    ledger = project / ".stack-state" / "backup" / "prometheus-snapshots.json"
    assert not ledger.exists() or json.loads(ledger.read_text()) == []
    backups = project / "backups"
    assert not backups.exists() or list(backups.iterdir()) == []
    # And the next backup works, with no note about leftovers.
    result = invoke("backup")
    assert result.exit_code == 0, result.stderr
    assert "left by an interrupted backup" not in result.stderr
    assert invoke("down").exit_code == 0


HOLDER = """
import sys, time
from stack.backup.tempdirs import private_tempdir
with private_tempdir(sys.argv[1]) as scratch:
    (scratch / "grafana.db").write_bytes(b"\\0" * 1024 * 1024)
    print(scratch, flush=True)
    time.sleep(60)
"""


def _holder(prefix: str) -> tuple[subprocess.Popen[str], Path]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, prefix], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_a_sigkilled_runs_temporary_directory_is_swept_by_the_next_run() -> None:
    prefix = f"stack-test-leftovers-{os.getpid()}-"
    killed, left = _holder(prefix)
    alive, in_use = _holder(prefix)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        assert (left / "grafana.db").stat().st_size == 1024 * 1024  # what SIGKILL leaves
        with private_tempdir(prefix) as mine:
            assert not left.exists()
            assert (in_use / "grafana.db").exists()  # its process still runs: not touched
            assert mine.name.startswith(f"{prefix}{os.getpid()}-")
        assert not mine.exists()
    finally:
        alive.kill()
        alive.wait(timeout=10)
    with private_tempdir(prefix):
        assert not in_use.exists()
