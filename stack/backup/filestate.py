"""Loki and Tempo: flush what they hold in memory to disk, then copy their whole state directory."""

from __future__ import annotations

from stack.backup.archive import ArchiveWriter
from stack.backup.spool import SectionSpool
from stack.backup.steps import Step, StepContext, state_path


class FlushAndCopyStep(Step):
    """Flush through the API (`POST /flush`), then the state directory as a tar stream."""

    def __init__(self, component: str) -> None:
        self.component = component

    @property
    def section(self) -> str:
        return f"{self.component}/data"

    def backup(self, ctx: StepContext, writer: ArchiveWriter) -> None:
        ctx.on_phase("flush")
        reply = ctx.http(self.component, "/flush", method="POST", timeout=120)
        if not 200 <= reply.status < 300:
            # Data still in memory is in the WAL, which is copied too: a failed flush is worth a
            # note, not a failed backup.
            ctx.notes.append(f"{self.component}: flush answered HTTP {reply.status}; its WAL is in the backup")
        ctx.on_phase("copying data")
        stream = ctx.runtime.copy_out(self.component, state_path(self.component))
        with stream:
            writer.add_tar_stream(self.section, stream, strip=1, where=f"{self.component} state")

    def restore_offline(self, ctx: StepContext, spool: SectionSpool) -> None:
        stream = spool.open(self.section, ctx.on_bytes)
        if stream is None:
            return
        ctx.on_phase("copying data in")
        with stream:
            ctx.runtime.replace_state(self.component, state_path(self.component), stream)
