"""What a backup leaves behind: nothing when killed half-way, exactly N archives with --keep, and
what the CLI prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stack.backup.archive import ArchiveWriter
from stack.backup.create import create_backup
from stack.backup.retention import archives_of
from stack.backup.verify import verify_backup
from stack.cli import cli
from stack.paths import Paths
from stack.secrets import SecretStore
from stack.settings import Settings
from tests.conftest import REPO, invoke
from tests.support.local_runtime import LocalRuntime

# A backup whose component streams its state slowly (a big Loki directory over a slow link), so
# that it can be killed while the archive is being written.
SLOW_BACKUP = textwrap.dedent(
    """
    import io, sys, tarfile, threading, time, os
    from pathlib import Path
    from stack.backup.create import create_backup
    from stack.backup.events import Events
    from stack.paths import Paths
    from stack.runtime.base import HttpReply, ServiceState
    from stack.settings import Settings

    class SlowRuntime:
        name = "slow"
        def check(self): pass
        def ps(self): return [ServiceState("loki", "running", image="grafana/loki:3.7.8")]
        def http(self, service, port, path, **kw): return HttpReply(204, b"", {})
        def copy_out(self, service, path):
            read_fd, write_fd = os.pipe()
            def produce():
                with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                    for i in range(10_000):
                        data = os.urandom(256 * 1024)
                        info = tarfile.TarInfo(f"loki/chunks/{i:05d}")
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
                        time.sleep(0.01)
            threading.Thread(target=produce, daemon=True).start()
            return os.fdopen(read_fd, "rb")

    class Announce(Events):
        total = 0
        def transferred(self, size):
            self.total += size
            if self.total > 8 * 1024 * 1024 and not getattr(self, "said", False):
                self.said = True
                print("writing", flush=True)

    if os.environ.get("NO_O_TMPFILE"):
        del os.O_TMPFILE  # as on a file system or OS without it
    paths = Paths.discover(sys.argv[1])
    create_backup(SlowRuntime(), Settings(), paths, only=["loki"], events=Announce())
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("o_tmpfile", [True, False], ids=["O_TMPFILE", "hidden temporary file"])
def test_backup_killed_half_way_leaves_no_archive(tmp_path: Path, o_tmpfile: bool) -> None:
    script = tmp_path / "slow_backup.py"
    script.write_text(SLOW_BACKUP)
    settings_file = tmp_path / "stack.yaml"
    env = {**os.environ, "PYTHONPATH": str(REPO), **({} if o_tmpfile else {"NO_O_TMPFILE": "1"})}
    process = subprocess.Popen(
        [sys.executable, str(script), str(settings_file)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "writing"
        backups = tmp_path / "backups"
        assert backups.is_dir()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    left = [path.name for path in backups.iterdir()]
    if o_tmpfile:
        # Not an archive, not a partial one, not a hidden temporary file: nothing at all.
        assert left == []
    else:
        # No archive under any name a user or `--keep` would take for one; the hidden file of the
        # dead writer goes with the next backup into that directory.
        assert len(left) == 1 and left[0].startswith(".") and f".tar.zst.{process.pid}." in left[0]
        assert archives_of(backups, "observability") == []
        with ArchiveWriter(backups / "next.tar.zst"):
            pass
        assert list(backups.iterdir()) == []


def test_keep_keeps_exactly_n(paths: Paths, project_dir: Path) -> None:
    SecretStore.for_paths(paths).put("grafana-admin-password", "s3cret")
    backups = paths.backups_dir
    backups.mkdir()
    foreign = [backups / "notes.txt", backups / "other-20200101T000000Z.tar.zst"]
    for path in foreign:
        path.write_text("not ours")
    made = []
    for _ in range(5):
        result = create_backup(LocalRuntime(), Settings(), paths, only=["secrets"], keep=3)
        made.append(result.path)
        time.sleep(0.01)
    kept = archives_of(backups, "observability")
    assert kept == made[-3:]
    assert len(kept) == 3
    assert all(path.exists() for path in foreign)

    result = create_backup(LocalRuntime(), Settings(), paths, only=["secrets"], keep=1)
    assert archives_of(backups, "observability") == [result.path]
    assert result.pruned == made[-3:]


def test_secrets_only_with_the_flag_and_archive_is_private(paths: Paths, project_dir: Path) -> None:
    SecretStore.for_paths(paths).put("grafana-admin-password", "s3cret")
    result = create_backup(LocalRuntime(), Settings(), paths, only=["secrets"])
    assert result.includes_secrets
    assert result.path.stat().st_mode & 0o777 == 0o600
    verified = invoke("backup", "verify", str(result.path), "--json")
    assert verified.exit_code == 0, verified.output
    assert '"includes_secrets": true' in verified.stdout


def test_cli_backup_and_restore_end_to_end(
    paths: Paths, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.backup_helpers import prometheus_service, query_range, write_known_series

    service = prometheus_service(tmp_path / "prom")
    (tmp_path / "prom").mkdir()
    known = write_known_series(service.data_dir, tmp_path / "prom")
    runtime = LocalRuntime(service)
    # The seam: the runtime the commands open (Docker or processes in real use).
    monkeypatch.setattr("stack.commands.options.get_runtime", lambda *args, **kwargs: runtime)
    (project_dir / "stack.yaml").write_text("components:\n  loki: {enabled: false}\n  tempo: {enabled: false}\n")
    runtime.up()
    try:
        result = invoke("backup", "--only", "prometheus", "--keep", "2")
        assert result.exit_code == 0, result.output
        assert "Wrote " in result.stdout and "prometheus" in result.stdout
        scripted = invoke("backup", "--only", "prometheus", "--keep", "1", "--json")
        assert scripted.exit_code == 0, scripted.output
        report = json.loads(scripted.stdout)
        assert [c["component"] for c in report["components"]] == ["prometheus"]
        assert report["components"][0]["sections"] == ["snapshot"] and len(report["pruned"]) == 1
        (archive,) = archives_of(paths.backups_dir, "observability")
        assert str(archive) == report["path"]
        # The generated secrets stay out unless asked for.
        assert report["includes_secrets"] is False
        assert not [m for m in verify_backup(archive).manifest.members if m.name.startswith("secrets/")]
        SecretStore.for_paths(paths).put("grafana-admin-password", "kept-private")
        secret = invoke(
            "backup", "--only", "prometheus", "--include-secrets", "--json", "-o", str(tmp_path / "s.tar.zst")
        )
        assert secret.exit_code == 0, secret.output
        assert json.loads(secret.stdout)["includes_secrets"] is True
        held = [m.name for m in verify_backup(tmp_path / "s.tar.zst").manifest.members]
        assert "secrets/files/grafana-admin-password" in held
        assert "kept-private" not in secret.output
        (tmp_path / "s.tar.zst").unlink()

        refused = invoke("restore", str(archive), "--only", "loki", "--yes")
        assert refused.exit_code == 2
        assert "holds no loki data" in refused.stderr

        declined = CliRunner().invoke(cli, ["restore", str(archive)], input="n\n")
        assert declined.exit_code == 1
        assert "Will stop, replace the state of, and restart: prometheus (what they recorded since " in declined.stderr
        assert "nothing was changed" in declined.stderr
        assert runtime.stopped == []

        runtime.down(volumes=True)
        runtime.up()
        # An upgrade happened since the backup: the restore says so before it replaces anything.
        (project_dir / "stack.yaml").write_text(
            "components:\n  loki: {enabled: false}\n  tempo: {enabled: false}\n"
            "  prometheus: {image: 'prom/prometheus:v3.15.0'}\n"
        )
        restored = invoke("restore", str(archive), "--yes")
        assert restored.exit_code == 0, restored.output
        assert (
            "Warning: prometheus: the archive was made with prom/prometheus:v3.14.0, "
            "this stack runs prom/prometheus:v3.15.0" in restored.stderr
        )
        assert "Restored prometheus" in restored.stdout
        assert query_range(runtime, "stack_backup_probe", known.start, known.end, known.step)["a"] == known.values("a")
    finally:
        runtime.down()


def test_backup_of_a_stopped_component_is_refused(paths: Paths, project_dir: Path, tmp_path: Path) -> None:
    from tests.support.backup_helpers import prometheus_service

    runtime = LocalRuntime(prometheus_service(tmp_path))
    result_error = None
    try:
        create_backup(runtime, Settings(), paths, only=["prometheus"])
    except Exception as exc:
        result_error = exc
    assert result_error is not None
    assert "prometheus is not running (exited)" in str(result_error)
    assert not paths.backups_dir.exists() or list(paths.backups_dir.iterdir()) == []
