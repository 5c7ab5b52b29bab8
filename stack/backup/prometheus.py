"""Prometheus: a TSDB snapshot through the admin API (reached on the project's internal network,
never published), copied out as a tar stream, then removed."""

from __future__ import annotations

import re

from stack.backup.archive import ArchiveWriter, SectionSpool
from stack.backup.errors import BackupError
from stack.backup.steps import Step, StepContext, expect_ok, state_path

SECTION = "prometheus/snapshot"
_SNAPSHOT_NAME = re.compile(r"^[0-9A-Za-z_-]+$")


class PrometheusStep(Step):
    component = "prometheus"

    def backup(self, ctx: StepContext, writer: ArchiveWriter) -> None:
        ctx.on_phase("snapshot")
        # skip_head=false: the in-memory head is written as a block too, so the last two hours are in.
        reply = ctx.http(self.component, "/api/v1/admin/tsdb/snapshot", method="POST", timeout=600)
        data = expect_ok(
            reply, self.component, "TSDB snapshot", hint="the admin API must be on (--web.enable-admin-api)"
        )
        name = str((data or {}).get("data", {}).get("name", ""))
        if not _SNAPSHOT_NAME.match(name):
            raise BackupError(f"prometheus: unexpected snapshot name {name!r}")
        snapshot = f"{state_path(self.component)}/snapshots/{name}"
        try:
            ctx.on_phase("copying snapshot")
            stream = ctx.runtime.copy_out(self.component, snapshot)
            with stream:
                writer.add_tar_stream(SECTION, stream, strip=1, where=f"prometheus snapshot {name}")
        finally:
            removed = ctx.runtime.exec(self.component, ["rm", "-rf", snapshot], timeout=120)
            if not removed.ok:
                ctx.notes.append(f"prometheus: could not remove snapshot {snapshot}: {removed.output[:200]}")

    def restore_offline(self, ctx: StepContext, spool: SectionSpool) -> None:
        stream = spool.open(SECTION, ctx.on_bytes)
        if stream is None:
            return
        ctx.on_phase("copying blocks in")
        # The snapshot's blocks join whatever the data directory still holds: Prometheus merges
        # overlapping blocks, so nothing newer than the backup is lost.
        with stream:
            ctx.runtime.copy_in(self.component, state_path(self.component), stream)

    def restore_mode(self, selected: set[str], spool: SectionSpool) -> str:
        return "offline"
