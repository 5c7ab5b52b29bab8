"""Prometheus: a TSDB snapshot through the admin API (reached on the project's internal network,
never published), copied out as a tar stream, then removed.

Each snapshot's name is written to a ledger beside the settings before it is copied, so that one
left behind by a backup killed outright (SIGKILL, power loss) is removed by the next backup, and no
snapshot that `stack` did not take is ever touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from stack.backup.archive import ArchiveWriter
from stack.backup.errors import BackupError
from stack.backup.spool import SectionSpool
from stack.backup.steps import Step, StepContext, expect_ok, state_path
from stack.fileio import atomic_write
from stack.paths import Paths

SECTION = "prometheus/snapshot"
_SNAPSHOT_NAME = re.compile(r"^[0-9A-Za-z_-]+$")


def _ledger(paths: Paths) -> Path:
    return paths.state_dir / "backup" / "prometheus-snapshots.json"


def pending_snapshots(paths: Paths) -> list[str]:
    """Snapshots taken by `stack backup` and not known to be removed yet."""
    try:
        names = json.loads(_ledger(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [name for name in names if isinstance(name, str) and _SNAPSHOT_NAME.match(name)]


def _write_ledger(paths: Paths, names: list[str]) -> None:
    atomic_write(_ledger(paths), json.dumps(sorted(set(names))), mode=0o600)


class PrometheusStep(Step):
    component = "prometheus"

    def _remove(self, ctx: StepContext, name: str) -> str | None:
        """Remove one snapshot; None when it is gone, else why not (what the container printed)."""
        snapshot = f"{state_path(self.component)}/snapshots/{name}"
        removed = ctx.runtime.exec(self.component, ["rm", "-rf", snapshot], timeout=120)
        if removed.ok:
            _write_ledger(ctx.paths, [n for n in pending_snapshots(ctx.paths) if n != name])
            return None
        printed = [line.strip() for line in (removed.stderr or removed.stdout).splitlines() if line.strip()]
        return printed[-1] if printed else f"rm exited {removed.returncode}"

    def backup(self, ctx: StepContext, writer: ArchiveWriter) -> None:
        for leftover in pending_snapshots(ctx.paths):
            if self._remove(ctx, leftover) is None:
                ctx.notes.append(f"prometheus: removed snapshot {leftover} left by an interrupted backup")
        ctx.on_phase("snapshot")
        name: str | None = None
        snapshot = ""
        try:
            # Taken and written to the ledger as one step: a Ctrl-C or SIGTERM while Prometheus
            # writes the snapshot waits until the ledger knows it, and is raised inside this `try`,
            # so that the snapshot is removed now (or, after a SIGKILL, by the next backup).
            with ctx.critical():
                # skip_head=false: the in-memory head is written as a block too, so the last two hours are in.
                reply = ctx.http(self.component, "/api/v1/admin/tsdb/snapshot", method="POST", timeout=600)
                data = expect_ok(
                    reply, self.component, "TSDB snapshot", hint="the admin API must be on (--web.enable-admin-api)"
                )
                taken = str((data or {}).get("data", {}).get("name", ""))
                if not _SNAPSHOT_NAME.match(taken):
                    raise BackupError(f"prometheus: unexpected snapshot name {taken!r}")
                _write_ledger(ctx.paths, [*pending_snapshots(ctx.paths), taken])
                name = taken
                snapshot = f"{state_path(self.component)}/snapshots/{name}"
            ctx.on_phase("copying snapshot")
            stream = ctx.runtime.copy_out(self.component, snapshot)
            with stream:
                writer.add_tar_stream(SECTION, stream, strip=1, where=f"prometheus snapshot {name}")
        finally:
            if name is not None:
                # Not cut short by a second Ctrl-C, and `rm` in its own process group.
                with ctx.critical():
                    why = self._remove(ctx, name)
                if why is not None:
                    ctx.notes.append(
                        f"prometheus: could not remove snapshot {snapshot} ({why}); the next backup retries"
                    )

    def restore_offline(self, ctx: StepContext, spool: SectionSpool) -> None:
        stream = spool.open(SECTION, ctx.on_bytes)
        if stream is None:
            return
        ctx.on_phase("copying blocks in")
        # Replaced, not merged: blocks written after the backup would otherwise survive beside it.
        with stream:
            ctx.runtime.replace_state(self.component, state_path(self.component), stream)

    def restore_mode(self, selected: set[str], spool: SectionSpool) -> str:
        return "offline"
