"""`stack backup`: every selected component's state into one verified, atomically written archive."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stack import __version__
from stack.backup.archive import ArchiveWriter
from stack.backup.errors import BackupError
from stack.backup.events import Events
from stack.backup.manifest import ComponentEntry, Manifest
from stack.backup.registry import SECRETS, STEPS
from stack.backup.retention import free_name, prune
from stack.backup.secretfiles import backup_secrets
from stack.backup.selection import enabled_with_state
from stack.backup.steps import StepContext
from stack.errors import OutputError
from stack.fileio import check_writable_dir
from stack.interrupts import InterruptGuard
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.settings import Settings


@dataclass(frozen=True)
class ComponentReport:
    component: str
    sections: list[str]
    files: int
    size: int
    seconds: float


@dataclass(frozen=True)
class BackupResult:
    path: Path
    archive_size: int
    data_size: int
    seconds: float
    components: list[ComponentReport]
    includes_secrets: bool
    pruned: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def resolve_target(paths: Paths, settings: Settings, output: str | Path | None, when: datetime) -> Path:
    """The archive's path: a generated name in the backups directory, in `output` when it is a
    directory (existing, or written with a trailing slash), else `output` itself."""
    if output is None:
        directory = paths.backups_dir
    else:
        given = Path(output)
        if not (given.is_dir() or str(output).endswith("/")):
            if given.exists() and not given.is_file():
                raise OutputError(f"{given}: exists and is not a regular file")
            problem = check_writable_dir(given.parent)
            if problem:
                raise OutputError(f"{given}: cannot write the archive: {problem}")
            return given
        directory = given
    problem = check_writable_dir(directory)
    if problem:
        raise OutputError(f"{directory}: cannot write the archive: {problem}")
    return free_name(directory, settings.project, when)


def _check_running(runtime: Runtime, components: list[str]) -> dict[str, str | None]:
    states = {state.name: state for state in runtime.ps()}
    for name in components:
        state = states.get(name)
        if state is None or not state.running:
            described = state.state if state else "missing"
            raise BackupError(
                f"{name} is not running ({described}): a consistent backup needs it up",
                hint="start the stack with `stack up`, or leave it out with --only",
            )
    return {name: states[name].image for name in components}


def create_backup(
    runtime: Runtime,
    settings: Settings,
    paths: Paths,
    *,
    output: str | Path | None = None,
    keep: int | None = None,
    only: list[str] | None = None,
    include_secrets: bool = False,
    events: Events | None = None,
) -> BackupResult:
    """Back up the selected components (all enabled ones with state by default) into one archive.

    Nothing appears at the target path unless the whole backup succeeded; snapshots taken inside
    the components are removed whatever happens.
    """
    events = events or Events()
    started = time.monotonic()
    now = datetime.now(UTC)
    components = enabled_with_state(settings, only)
    with_secrets = include_secrets or (only is not None and SECRETS in only)
    if not components and not with_secrets:
        raise BackupError("nothing to back up: no enabled component keeps state")
    target = resolve_target(paths, settings, output, now)
    runtime.check()
    running_images = _check_running(runtime, components)

    reports: list[ComponentReport] = []
    notes: list[str] = []
    entries: dict[str, ComponentEntry] = {}
    # SIGTERM is handled as Ctrl-C is (cleanup runs), and the steps' critical sections hold both.
    guard = InterruptGuard(on_deferred=lambda signal_name: events.warn(f"{signal_name} received: cleaning up"))
    with guard, ArchiveWriter(target, on_bytes=events.transferred) as writer:
        for name in components:
            events.component_started(name)
            first_member = len(writer.members)
            began = time.monotonic()
            ctx = StepContext(
                runtime,
                settings,
                paths,
                on_phase=functools.partial(events.phase, name),
                critical=guard.critical,
            )
            STEPS[name].backup(ctx, writer)
            added = writer.members[first_member:]
            sections = sorted({member.name.split("/")[1] for member in added})
            size = sum(member.size for member in added)
            seconds = time.monotonic() - began
            reports.append(ComponentReport(name, sections, sum(m.type == "file" for m in added), size, seconds))
            entries[name] = ComponentEntry(
                image=settings.component(name).image,
                running_image=running_images.get(name),
                sections=sections,
                notes=list(ctx.notes),
            )
            notes.extend(ctx.notes)
            for note in ctx.notes:
                events.note(note)
            events.component_done(name, size, seconds)
        if with_secrets:
            events.component_started(SECRETS)
            count = backup_secrets(paths, writer)
            events.component_done(SECRETS, 0, 0.0)
            reports.append(ComponentReport(SECRETS, ["files"] if count else [], count, 0, 0.0))
        settings_file = paths.settings_source()
        manifest = Manifest(
            tool_version=__version__,
            created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            project=settings.project,
            stack_yaml=settings_file.read_text(encoding="utf-8") if settings_file else None,
            components=entries,
            members=list(writer.members),
            includes_secrets=with_secrets,
        )
        path = writer.commit(manifest)
    pruned = prune(path.parent, settings.project, keep, protect=path) if keep else []
    return BackupResult(
        path=path,
        archive_size=path.stat().st_size,
        data_size=manifest.total_size,
        seconds=time.monotonic() - started,
        components=reports,
        includes_secrets=with_secrets,
        pruned=pruned,
        notes=notes,
    )
