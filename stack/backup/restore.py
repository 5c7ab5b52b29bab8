"""`stack restore`: verify the whole archive first, then put the selected components' state back.

The archive is read once, checked member by member and spooled into a private temporary directory;
only when every check has passed (and the user has confirmed) is anything in the stack touched.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stack.backup.errors import BackupError
from stack.backup.events import Events
from stack.backup.manifest import Manifest
from stack.backup.reader import ReadReport, read_archive
from stack.backup.ready import wait_ready
from stack.backup.registry import ARCHIVE_ROOTS, SECRETS, STEPS
from stack.backup.secretfiles import restore_secrets
from stack.backup.spool import SectionSpool
from stack.backup.steps import StepContext
from stack.backup.tempdirs import private_tempdir
from stack.errors import EXIT_INTERRUPTED, SettingsError, StackError
from stack.interrupts import Interrupted, InterruptGuard
from stack.lifecycle import Provisioner, provisioned
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.settings import Settings


class RestoreCancelled(StackError):
    """The user said no: nothing was changed."""


class RestoreInterrupted(StackError):
    """SIGINT or SIGTERM stopped the restore at a safe point; the message says where each component is."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, signal_name: str, status: dict[str, str]) -> None:
        where = "; ".join(f"{name}: {state}" for name, state in status.items())
        super().__init__(
            f"restore interrupted ({signal_name}): {where}",
            hint="the archive is intact: run the restore again to finish it",
        )
        self.status = status


@dataclass(frozen=True)
class RestorePlan:
    archive: Path
    manifest: Manifest
    offline: list[str]
    online: list[str]
    secrets: bool
    warnings: list[str]

    @property
    def components(self) -> list[str]:
        return [*self.offline, *self.online]


@dataclass(frozen=True)
class RestoreResult:
    plan: RestorePlan
    verified: ReadReport
    seconds: float
    restored_secrets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _always(_: RestorePlan) -> bool:
    return True


def _plan(
    archive: Path, manifest: Manifest, settings: Settings, runtime: Runtime, only: list[str] | None, spool: SectionSpool
) -> RestorePlan:
    held = [name for name in STEPS if name in manifest.components and manifest.components[name].sections]
    warnings: list[str] = []
    if only is not None:
        for name in only:
            if name == SECRETS and not manifest.includes_secrets:
                raise SettingsError(f"--only: {archive} holds no secrets", hint="it was made without --include-secrets")
            if name != SECRETS and name not in held:
                raise SettingsError(
                    f"--only: {archive} holds no {name} data", hint=f"it holds: {', '.join(held) or 'nothing'}"
                )
    wanted = [name for name in held if only is None or name in only]
    chosen = []
    for name in wanted:
        if settings.component(name).enabled:
            chosen.append(name)
        elif only is not None:
            raise SettingsError(f"--only: {name} is disabled in stack.yaml", hint="enable it, then restore")
        else:
            warnings.append(f"{name} is disabled in stack.yaml: its data in the archive is not restored")
    if manifest.project != settings.project:
        warnings.append(f"the archive is of project {manifest.project!r}, this stack is {settings.project!r}")
    running = {state.name: state.image for state in runtime.ps()}
    for name in chosen:
        entry = manifest.components[name]
        now = settings.component(name).image
        if entry.image and entry.image != now:
            warnings.append(f"{name}: the archive was made with {entry.image}, this stack runs {now}")
        elif entry.running_image and running.get(name) and entry.running_image != running[name]:
            warnings.append(f"{name}: the archive was made with {entry.running_image}, running now: {running[name]}")
    selected = set(chosen)
    offline = [name for name in chosen if STEPS[name].restore_mode(selected, spool) == "offline"]
    online = [name for name in chosen if name not in offline]
    secrets = manifest.includes_secrets and (only is None or SECRETS in only)
    return RestorePlan(archive, manifest, offline, online, secrets, warnings)


def restore_backup(
    runtime: Runtime,
    settings: Settings,
    paths: Paths,
    archive: Path,
    *,
    only: list[str] | None = None,
    confirm: Callable[[RestorePlan], bool] = _always,
    events: Events | None = None,
    ready_timeout: float = 180,
    provisioner: Provisioner | None = None,
) -> RestoreResult:
    """Verify `archive`, ask `confirm`, then restore: stop the services whose files are replaced,
    copy their state in, start them, wait until ready; then the API-restored parts; then Grafana is
    re-provisioned with `provisioner` (the one `stack up` uses) when it was restored."""
    events = events or Events()
    started = time.monotonic()
    guard = InterruptGuard(on_deferred=lambda name: events.warn(_deferred_message(name)))
    with guard, private_tempdir("stack-restore-") as scratch:
        spool = SectionSpool(scratch, components=set(only) if only is not None else None)
        events.component_started("archive")
        events.phase("archive", "verifying")
        try:
            verified = read_archive(archive, allowed_roots=ARCHIVE_ROOTS, sink=spool, on_bytes=events.transferred)
            events.component_done("archive", verified.manifest.total_size, verified.seconds)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackupError(
                    f"{archive}: not enough space to stage it in {scratch.parent}",
                    hint="point TMPDIR at a larger disk",
                ) from None
            raise
        finally:
            spool.close()
        runtime.check()
        plan = _plan(archive, verified.manifest, settings, runtime, only, spool)
        if not plan.components and not plan.secrets:
            raise BackupError(f"{archive}: nothing to restore into this stack")
        if not confirm(plan):
            raise RestoreCancelled("restore cancelled: nothing was changed")
        notes: list[str] = []
        # What each component is, for the report when a signal stops the restore between steps.
        status = {name: "not restored (its data is as before)" for name in plan.components}

        def context(name: str) -> StepContext:
            return StepContext(
                runtime, settings, paths, on_phase=lambda text: events.phase(name, text), on_bytes=events.transferred
            )

        try:
            with guard.critical():
                restored_secrets = restore_secrets(paths, spool) if plan.secrets else []
                if plan.offline:
                    _restore_offline(plan, runtime, spool, verified.manifest, events, context, notes, status)
            wait_ready(runtime, plan.components, timeout=ready_timeout)
            for name in plan.offline:
                with guard.critical():
                    ctx = context(name)
                    STEPS[name].after_restore(ctx, "offline")
                    notes.extend(ctx.notes)
            for name in plan.online:
                with guard.critical():
                    events.component_started(name)
                    began = time.monotonic()
                    ctx = context(name)
                    STEPS[name].restore_online(ctx, spool)
                    STEPS[name].after_restore(ctx, "online")
                    notes.extend(ctx.notes)
                    status[name] = "restored"
                    events.component_done(name, _section_size(verified.manifest, name), time.monotonic() - began)
            if provisioner is not None and provisioned(plan.components):
                status["grafana provisioning"] = "not done (run `stack provision`)"
                events.component_started("provision")
                events.phase("provision", "re-provisioning")
                try:
                    outcome = provisioner(paths, settings, runtime)
                except StackError as exc:
                    raise BackupError(
                        f"the data is restored, but re-provisioning Grafana failed: {exc.one_line()}",
                        hint="fix that, then run `stack provision`",
                    ) from None
                summary = getattr(outcome, "summary", None)
                notes.append(f"grafana re-provisioned: {summary() if callable(summary) else outcome}")
                events.component_done("provision", 0, 0.0)
        except Interrupted as exc:
            raise RestoreInterrupted(exc.signal_name, status) from None
        for note in notes:
            events.note(note)
    return RestoreResult(plan, verified, time.monotonic() - started, restored_secrets, notes)


def _restore_offline(
    plan: RestorePlan,
    runtime: Runtime,
    spool: SectionSpool,
    manifest: Manifest,
    events: Events,
    context: Callable[[str], StepContext],
    notes: list[str],
    status: dict[str, str],
) -> None:
    """Stop, replace the state of, and start again the offline components (a critical section)."""
    try:
        runtime.stop(plan.offline)
        for name in plan.offline:
            status[name] = "stopped, not restored (its data is as before)"
        for name in plan.offline:
            events.component_started(name)
            began = time.monotonic()
            ctx = context(name)
            STEPS[name].restore_offline(ctx, spool)
            notes.extend(ctx.notes)
            status[name] = "restored"
            events.component_done(name, _section_size(manifest, name), time.monotonic() - began)
    finally:
        # Whatever happened, the stack is not left stopped.
        runtime.start(plan.offline)
        for name in plan.offline:
            status[name] = status[name].replace("stopped, ", "") + ", started again"


def _deferred_message(signal_name: str) -> str:
    return (
        f"{signal_name} received: finishing the step under way first, so that nothing is left stopped"
        " or half-written; the restore stops right after it"
    )


def _section_size(manifest: Manifest, component: str) -> int:
    return sum(member.size for member in manifest.members if member.name.startswith(component + "/"))
