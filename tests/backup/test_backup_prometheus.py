"""Round trip on a real Prometheus: known series in, backup, data wiped, restore, same series out."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pytest

from stack.backup.create import create_backup
from stack.backup.errors import BackupError
from stack.backup.restore import restore_backup
from stack.backup.verify import verify_backup
from stack.paths import Paths
from stack.settings import Settings
from tests.support.backup_helpers import (
    LATE_METRIC,
    prometheus_service,
    query_range,
    wait_for,
    write_known_series,
    write_late_series,
)
from tests.support.local_runtime import LocalRuntime


@pytest.fixture
def prom(tmp_path: Path):  # type: ignore[no-untyped-def]
    service = prometheus_service(tmp_path)
    known = write_known_series(service.data_dir, tmp_path)
    runtime = LocalRuntime(service)
    runtime.up()
    try:
        yield runtime, service, known
    finally:
        runtime.down()


def test_prometheus_round_trip(prom, paths: Paths, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime, service, known = prom
    settings = Settings()
    before = query_range(runtime, "stack_backup_probe", known.start, known.end, known.step)
    assert before == {"a": known.values("a"), "b": known.values("b")}
    # Scraped samples live only in the head: the snapshot must carry them too.
    wait_for(lambda: query_range(runtime, "up", int(time.time()) - 60, int(time.time()) - 3, 1).get("self"))
    # A scrape in flight right now may land after the query: compare a window that is settled.
    scraped_until = int(time.time()) - 3
    head_before = query_range(runtime, "up", scraped_until - 30, scraped_until, 1)["self"]

    result = create_backup(runtime, settings, paths, only=["prometheus"])

    assert result.path.parent == paths.backups_dir and result.path.name.endswith(".tar.zst")
    assert [c.component for c in result.components] == ["prometheus"]
    assert result.components[0].size > 0
    # The snapshot taken inside Prometheus is gone again.
    assert not any((service.data_dir / "snapshots").iterdir())
    assert verify_backup(result.path).manifest.components["prometheus"].sections == ["snapshot"]

    runtime.stop(["prometheus"])
    shutil.rmtree(service.data_dir)
    runtime.start(["prometheus"])
    assert query_range(runtime, "stack_backup_probe", known.start, known.end, known.step) == {}

    restored = restore_backup(runtime, settings, paths, result.path, only=["prometheus"])

    assert restored.plan.offline == ["prometheus"]
    assert runtime.stopped[-1] == ["prometheus"]
    after = query_range(runtime, "stack_backup_probe", known.start, known.end, known.step)
    assert after == before
    head_after = query_range(runtime, "up", scraped_until - 30, scraped_until, 1)["self"]
    assert head_after == head_before


def test_restore_replaces_what_was_written_after_the_backup(prom, paths: Paths, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime, service, known = prom
    settings = Settings()
    before = query_range(runtime, "stack_backup_probe", known.start, known.end, known.step)
    assert before == {"a": known.values("a"), "b": known.values("b")}
    result = create_backup(runtime, settings, paths, only=["prometheus"])

    # After the backup: a new series lands in the data directory (a block of its own, as promtool
    # or compaction would write it), and Prometheus serves it beside the backed-up ones.
    runtime.stop(["prometheus"])
    late_start, late_end = write_late_series(service.data_dir, tmp_path)
    runtime.start(["prometheus"])
    assert query_range(runtime, LATE_METRIC, late_start, late_end, 60) != {}

    restore_backup(runtime, settings, paths, result.path, only=["prometheus"])

    assert runtime.replaced == [("prometheus", "/prometheus")]
    assert query_range(runtime, "stack_backup_probe", known.start, known.end, known.step) == before
    assert query_range(runtime, LATE_METRIC, late_start, late_end, 60) == {}
    # Gone from the disk too, not only hidden: no block, no directory moved aside is left behind.
    assert not any(LATE_METRIC.encode() in f.read_bytes() for f in service.data_dir.rglob("index"))
    assert not [p for p in service.data_dir.parent.iterdir() if ".previous-" in p.name]


class _BreaksMidStream(LocalRuntime):
    """The runtime's tar stream dies half-way (engine gone, connection dropped)."""

    def copy_out(self, service: str, path: str):  # type: ignore[no-untyped-def]
        whole = super().copy_out(service, path).read()

        class Broken(io.BytesIO):
            def read(self, size: int = -1) -> bytes:
                if self.tell() >= len(whole) // 2:
                    raise ConnectionError("connection reset by peer")
                return super().read(min(size if size >= 0 else len(whole), len(whole) // 2 - self.tell()))

        return Broken(whole)


def test_failed_backup_leaves_no_archive_and_no_snapshot(tmp_path: Path, paths: Paths) -> None:
    service = prometheus_service(tmp_path)
    write_known_series(service.data_dir, tmp_path)
    runtime = _BreaksMidStream(service)
    runtime.up()
    try:
        with pytest.raises(BackupError, match=r"copying out failed \(connection reset by peer\)"):
            create_backup(runtime, Settings(), paths, only=["prometheus"])
        assert list(paths.backups_dir.iterdir()) == []
        assert list((service.data_dir / "snapshots").iterdir()) == []
    finally:
        runtime.down()


def test_a_snapshot_left_by_a_killed_backup_is_removed_by_the_next(prom, paths: Paths) -> None:  # type: ignore[no-untyped-def]
    runtime, service, _ = prom
    # What a backup killed right after its snapshot leaves: the snapshot, and its name in the ledger.
    reply = runtime.http("prometheus", "http", "/api/v1/admin/tsdb/snapshot", method="POST")
    leftover = json.loads(reply.body)["data"]["name"]
    ledger = paths.state_dir / "backup" / "prometheus-snapshots.json"
    ledger.parent.mkdir(parents=True)
    ledger.write_text(json.dumps([leftover]))
    # A snapshot somebody else took is not ours to delete.
    theirs = json.loads(runtime.http("prometheus", "http", "/api/v1/admin/tsdb/snapshot", method="POST").body)
    assert sorted(p.name for p in (service.data_dir / "snapshots").iterdir()) == sorted(
        [leftover, theirs["data"]["name"]]
    )

    result = create_backup(runtime, Settings(), paths, only=["prometheus"])

    assert [p.name for p in (service.data_dir / "snapshots").iterdir()] == [theirs["data"]["name"]]
    assert f"prometheus: removed snapshot {leftover} left by an interrupted backup" in result.notes
    assert json.loads(ledger.read_text()) == []
