"""Bring the stack up, take it down, report its status: functions that return data.

Runtime-agnostic: each takes a `Runtime` (Docker, local processes, a remote engine) and the
readiness and provisioning steps never know which one it is.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stack.components import REGISTRY
from stack.errors import SettingsError, StackError, UsageError
from stack.health import (
    DEFAULT_TIMEOUT,
    Diagnosis,
    Readiness,
    ReadinessReport,
    describe_state,
    diagnose,
    probe,
    wait_until_ready,
)
from stack.imageref import ImageRef
from stack.net.http import preload
from stack.paths import Paths
from stack.project import render_to_disk
from stack.runtime.abilities import ChecksStart, ChecksWhileListing, PullsImages, RendersItself, Warns
from stack.runtime.base import Runtime, ServiceState
from stack.secrets import SecretStore
from stack.settings import Settings

# Provisioning is plugged in by whoever runs `up` (the CLI passes stack.grafana's), so that this
# module does not depend on Grafana's client and ProcessRuntime users get the same step.
Provisioner = Callable[[Paths, Settings, Runtime], Any]


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    # Why there is no URL, and where to look instead (`url` is then empty).
    note: str = ""


@dataclass(frozen=True)
class UpResult:
    readiness: ReadinessReport
    diagnoses: list[Diagnosis]
    endpoints: list[Endpoint]
    credentials_file: Path | None
    provisioning: Any = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.readiness.ok

    def as_dict(self) -> dict[str, Any]:
        provisioning = self.provisioning
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "components": [
                {
                    "name": row.component,
                    "phase": row.phase,
                    "seconds": round(row.seconds, 2),
                    "detail": row.detail,
                    "version": row.version,
                }
                for row in self.readiness.results
            ],
            "diagnoses": [
                {
                    "component": d.component,
                    "state": d.state,
                    "reason": d.reason,
                    "log_lines": d.log_lines,
                    "hints": d.hints,
                }
                for d in self.diagnoses
            ],
            "endpoints": {endpoint.name: endpoint.url for endpoint in self.endpoints if endpoint.url},
            "credentials_file": str(self.credentials_file) if self.credentials_file else None,
            "provisioning": provisioning.as_dict() if hasattr(provisioning, "as_dict") else None,
        }


def provisioned(components: list[str]) -> bool:
    """Whether any of `components` is one the provisioner provisions (Grafana)."""
    return any(name in REGISTRY and REGISTRY[name].provisioned for name in components)


def endpoints(settings: Settings, runtime: Runtime) -> list[Endpoint]:
    """The URLs users and their applications need: Grafana, the backends, the OTLP endpoints (each
    component declares its own, and where it is listed)."""
    public: list[Endpoint] = []
    ranked: list[tuple[int, Endpoint]] = []
    for name in settings.enabled():
        component = REGISTRY[name]
        public += [Endpoint(label, url) for label, url in component.public_urls(settings)]
        for spec in component.endpoints:
            url = runtime.base_url(name, spec.port)
            if url:
                ranked.append((spec.rank, Endpoint(spec.label, url)))
    return public + [endpoint for _rank, endpoint in sorted(ranked, key=lambda row: row[0])]


def unpublished(settings: Settings, runtime: Runtime) -> list[Endpoint]:
    """The enabled components users look for that have no URL on purpose, with where to look instead."""
    found = []
    for name in settings.enabled():
        component = REGISTRY[name]
        note = component.unpublished_note(settings)
        if note and runtime.base_url(name, component.shown_port()) is None:
            found.append(Endpoint(component.title, "", note=note))
    return found


def up(
    paths: Paths,
    settings: Settings,
    runtime: Runtime,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    pull: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_readiness: Callable[[list[Readiness]], None] | None = None,
    on_pull: Callable[[Any], None] | None = None,
    provisioner: Provisioner | None = None,
) -> UpResult:
    """Render, start every enabled component, wait until all are ready, then provision Grafana.

    On a readiness failure nothing is torn down: the result carries a diagnosis per failed component.
    """
    started = time.monotonic()
    step = on_step or (lambda _message: None)
    # Before anything is written or printed: no engine means one clear line, nothing else.
    runtime.check()
    refuse_before_start(paths, settings, runtime)
    # Findings that do not stop the start (the process runtime's binary versions, for one).
    for warning in runtime.warnings if isinstance(runtime, Warns) else []:
        step(f"Warning: {warning}")
    if provisioner is not None and provisioned(settings.enabled()):
        # A broken dashboard of the user's is a settings error: said now, not after every container
        # has started and become ready.
        from stack.grafana.dashboards import selected_dashboards

        selected_dashboards(settings, paths.base_dir)
    if not (isinstance(runtime, RendersItself) and runtime.renders_itself):
        step("Rendering the project")
        render_to_disk(paths, settings)
    if pull and isinstance(runtime, PullsImages):
        try:
            missing = runtime.missing_images()
        except StackError:
            # The Engine API is not reachable the way the CLI is (an unusual context, a proxy):
            # compose still pulls what is missing, only without a bar per image.
            missing = []
        if missing:
            step(f"Pulling {len(missing)} image{'s' if len(missing) > 1 else ''}")
            runtime.pull_images(missing, on_pull)
    step("Starting the components")
    runtime.up(pull=pull)
    components = settings.enabled()
    step("Waiting until every component is ready")
    report = wait_until_ready(runtime, components, timeout=timeout, on_update=on_readiness)
    diagnoses = [diagnose(runtime, failed, report.states.get(failed.component)) for failed in report.failed]
    provisioning = None
    if report.ok and provisioner is not None and provisioned(components):
        step("Provisioning Grafana")
        try:
            provisioning = provisioner(paths, settings, runtime)
        except StackError as exc:
            # Say that the stack itself is fine: only the Grafana step needs another go.
            raise StackError(
                f"every component is ready, but provisioning Grafana failed: {exc.message}",
                hint=(exc.hint + "; then run `stack provision`") if exc.hint else "then run `stack provision`",
            ) from None
    store = SecretStore.for_paths(paths)
    passwords = [password for name in components if (password := REGISTRY[name].admin_password)]
    credentials_file = store.path(passwords[0]) if passwords else None
    return UpResult(
        readiness=report,
        diagnoses=diagnoses,
        endpoints=endpoints(settings, runtime) + unpublished(settings, runtime),
        credentials_file=credentials_file,
        provisioning=provisioning,
        seconds=time.monotonic() - started,
    )


def refuse_before_start(paths: Paths, settings: Settings, runtime: Runtime) -> None:
    """What would stop the start, found before anything is written, printed or started.

    Every secret that cannot be read is named at once (not one per attempt); a runtime that can
    tell what it lacks (`check_start`: the process runtime's binaries and their versions) says so.
    """
    from stack.alerting import missing_secrets

    missing = missing_secrets(settings)
    if missing:
        raise SettingsError(
            f"{paths.settings_file}: {len(missing)} secret{'s' if len(missing) > 1 else ''} cannot be read: "
            + "; ".join(missing),
            hint="export the variables or create the files (chmod 600) named in stack.yaml, then run it again",
        )
    if isinstance(runtime, ChecksStart):
        runtime.check_start()


@dataclass(frozen=True)
class DownResult:
    volumes_deleted: bool


def down(runtime: Runtime, *, volumes: bool = False, timeout: float = 30) -> DownResult:
    """Stop and remove the components; their data is kept unless `volumes`."""
    runtime.check()
    runtime.down(volumes=volumes, timeout=timeout)
    return DownResult(volumes_deleted=volumes)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    title: str
    state: str
    ready: bool
    detail: str
    version: str | None
    url: str | None
    uptime_seconds: float | None
    health: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "state": self.state,
            "health": self.health,
            "ready": self.ready,
            "detail": self.detail,
            "version": self.version,
            "url": self.url,
            "uptime_seconds": None if self.uptime_seconds is None else round(self.uptime_seconds, 1),
        }


@dataclass(frozen=True)
class StatusReport:
    runtime: str
    components: list[ComponentStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.components) and all(c.ready for c in self.components)

    def as_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "ok": self.ok, "components": [c.as_dict() for c in self.components]}


def _image_version(image: str | None) -> str | None:
    if not image:
        return None
    ref = ImageRef.parse(image)
    return ref.digest[:19] if ref.digest else ref.tag


def status(settings: Settings, runtime: Runtime, *, probe_timeout: float = 2.0) -> StatusReport:
    """Each enabled component: container state, readiness (probed now, in parallel), version, URL, uptime."""
    # The probes' HTTP library is imported while the runtime is asked, not after.
    with ThreadPoolExecutor(max_workers=1) as loading:
        loading.submit(preload)
        if isinstance(runtime, ChecksWhileListing):
            listed = runtime.checked_ps()
        else:
            runtime.check()
            listed = runtime.ps()
    components = settings.enabled()
    states = {state.name: state for state in listed}
    now = datetime.now(UTC)

    def one(name: str) -> ComponentStatus:
        state = states.get(name, ServiceState(name=name, state="missing"))
        if state.running:
            found = probe(runtime, name, timeout=probe_timeout)
            ready, detail, version = found.ready, found.detail, found.version
        else:
            ready, detail, version = False, describe_state(state, runtime.name), None
        started = state.started_at
        uptime = (now - started).total_seconds() if started and state.running else None
        pinned = settings.component(name).image
        return ComponentStatus(
            name=name,
            title=REGISTRY[name].title,
            state=state.state,
            health=state.health,
            ready=ready,
            detail=detail,
            # The process runtime runs the binary it finds, whatever the image tag in the settings says.
            version=version or _image_version(state.image or (None if runtime.name == "process" else pinned)),
            url=runtime.base_url(name, REGISTRY[name].shown_port()),
            uptime_seconds=uptime,
        )

    with ThreadPoolExecutor(max_workers=max(1, len(components)), thread_name_prefix="status") as pool:
        rows = list(pool.map(one, components))
    return StatusReport(runtime=runtime.name, components=rows)


def check_service(settings: Settings, service: str | None) -> None:
    """Refuse a service name that is not an enabled component, with a did-you-mean."""
    if service is None or service in settings.enabled():
        return
    choices = settings.enabled()
    close = difflib.get_close_matches(service, choices, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(choices)}"
    raise UsageError(f"no component named {service!r} in this stack", hint=hint)


def logs(
    settings: Settings,
    runtime: Runtime,
    service: str | None = None,
    *,
    follow: bool = False,
    since: str | None = None,
    tail: int | None = None,
) -> Iterator[str]:
    """Log lines of one component, or of all (prefixed with the component name)."""
    check_service(settings, service)
    runtime.check()
    return runtime.logs(service, tail=tail, follow=follow, since=since)
