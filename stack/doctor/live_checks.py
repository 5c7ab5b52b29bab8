"""The doctor's checks on the running stack, through the `Runtime` interface: they work the same on a
local engine, a remote `ssh://` host or local processes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from stack.doctor.findings import Finding, Report, Severity
from stack.errors import StackError
from stack.imageref import ImageRef
from stack.paths import Paths
from stack.polling import poll_until
from stack.runtime.base import Runtime, ServiceState
from stack.runtime.process.binaries import pinned_version
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import (
    Settings,
    _image,
)
from stack.units import parse_size
from stack.versions import parse_version

# Usage ratios: memory (RSS / limit) and disk (used / size).
NEAR, VERY_NEAR = 0.80, 0.90


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _grafana_live(settings: Settings, paths: Paths, runtime: Runtime) -> Iterable[Finding]:
    if not settings.component("grafana").enabled:
        return
    reply = runtime.http("grafana", "http", "/api/org")
    if reply.status == 200:
        yield Finding(
            "anonymous-access",
            Severity.HIGH,
            "the running Grafana answers /api/org without credentials (anonymous access)",
            "set GF_AUTH_ANONYMOUS_ENABLED=false (stack's default) and `stack up`",
            component="grafana",
        )
    admin_user = settings.components.grafana.admin_user
    for user in dict.fromkeys((admin_user, "admin")):
        reply = runtime.http("grafana", "http", "/api/user", headers=_basic(user, "admin"))
        if reply.status == 200:
            yield Finding(
                "default-admin-password",
                Severity.HIGH,
                f"the running Grafana accepts {user}:admin",
                "change it now: `grafana cli admin reset-admin-password` in the container, with the value of "
                "`stack credentials` (the password only applies when Grafana's database is created)",
                component="grafana",
            )
            return
    password = SecretStore.for_paths(paths).get(GRAFANA_ADMIN_PASSWORD)
    if password:
        reply = runtime.http("grafana", "http", "/api/user", headers=_basic(admin_user, password))
        if reply.status == 401:
            yield Finding(
                "admin-password-mismatch",
                Severity.MEDIUM,
                "the running Grafana rejects the password `stack credentials` shows",
                "reset it in the container with `grafana cli admin reset-admin-password` (the password "
                "only applies when Grafana's database is created)",
                component="grafana",
            )


def _binary_version(state: ServiceState, pinned: str) -> Iterable[Finding]:
    """The process runtime runs the binary it finds (`path:version`): `stack up` cannot change it."""
    path, _, version = (state.image or "").rpartition(":")
    wanted = pinned_version(pinned)
    if not path or not version or wanted is None or version == wanted:
        return
    running_version, wanted_version = parse_version(version), parse_version(wanted)
    older = running_version is not None and wanted_version is not None and running_version < wanted_version
    yield Finding(
        "version-behind" if older else "version-differs",
        Severity.MEDIUM if older else Severity.LOW,
        f"{state.name} runs {path} {version}, settings pin {wanted}",
        f"the process runtime runs the binary it finds (`stack up` cannot change a system binary): put the"
        f" {wanted} release in process.bin_dir, or upgrade the package that installed {path}",
        component=state.name,
    )


def normalize_image(image: str) -> str:
    """`docker.io/library/caddy:2` -> `caddy:2`: the form stack.yaml uses."""
    return ImageRef.parse(image).short


def _versions_live(settings: Settings, runtime: Runtime) -> Iterable[Finding]:
    for state in runtime.ps():
        if state.name not in settings.enabled() or not state.image or not state.running:
            continue
        pinned = settings.component(state.name).image
        if runtime.name == "process":
            yield from _binary_version(state, pinned)
            continue
        running = normalize_image(state.image)
        if running == normalize_image(pinned):
            continue
        try:
            _image(running)
        except ValueError:
            yield Finding(
                "image-not-pinned",
                Severity.MEDIUM,
                f"{state.name} runs {running}, which is not pinned to a version",
                "run `stack up` to replace it with the pinned image",
                component=state.name,
            )
            continue
        running_version, pinned_version = ImageRef.parse(running).version, ImageRef.parse(pinned).version
        older = running_version is not None and pinned_version is not None and running_version < pinned_version
        yield Finding(
            "version-behind" if older else "version-differs",
            Severity.MEDIUM if older else Severity.LOW,
            f"{state.name} runs {running}, settings pin {pinned}",
            "run `stack up` (or `stack deploy`) to apply the pinned version",
            component=state.name,
        )


def _oom_live(settings: Settings, runtime: Runtime) -> Iterable[Finding]:
    for state in runtime.ps():
        if state.oom_killed:
            yield Finding(
                "oom-killed",
                Severity.HIGH,
                f"{state.name} was killed for running out of memory",
                f"raise components.{state.name}.memory and run `stack up`",
                component=state.name,
            )


def _prometheus_query(runtime: Runtime, query: str) -> list[dict[str, Any]]:
    from urllib.parse import quote

    reply = runtime.http("prometheus", "http", f"/api/v1/query?query={quote(query)}")
    if reply.status != 200:
        raise StackError(f"Prometheus answered {reply.status} to a query")
    return json.loads(reply.body)["data"]["result"]


def _memory_live(settings: Settings, runtime: Runtime) -> Iterable[Finding]:
    if not settings.component("prometheus").enabled:
        return
    for series in _prometheus_query(runtime, "max by (job) (process_resident_memory_bytes)"):
        name = series["metric"].get("job")
        if name not in settings.enabled():
            continue
        used = float(series["value"][1])
        limit = parse_size(settings.component(name).memory)
        ratio = used / limit
        if ratio >= NEAR:
            yield Finding(
                "memory-near-limit",
                Severity.HIGH if ratio >= VERY_NEAR else Severity.MEDIUM,
                f"{name} uses {used / 1024**2:.0f} MiB of its {limit / 1024**2:.0f} MiB limit ({ratio:.0%})",
                f"raise components.{name}.memory (or lower its retention/load) and run `stack up`",
                component=name,
            )


# Prometheus discovers its Alertmanager within seconds of starting; a doctor run right after `up`
# waits up to this long (counted from Prometheus' start) before calling a missing one a problem.
DISCOVERY_GRACE = 30.0


def _active_alertmanagers(runtime: Runtime) -> list[Any] | None:
    reply = runtime.http("prometheus", "http", "/api/v1/alertmanagers")
    if reply.status != 200:
        return None
    return json.loads(reply.body)["data"].get("activeAlertmanagers") or []


def _alertmanager_live(settings: Settings, runtime: Runtime) -> Iterable[Finding]:
    if not (settings.component("prometheus").enabled and settings.component("alertmanager").enabled):
        return
    active = _active_alertmanagers(runtime)
    started = next((s.started_at for s in runtime.ps() if s.name == "prometheus" and s.running), None)
    since = (datetime.now(UTC) - started).total_seconds() if started else DISCOVERY_GRACE
    if active == [] and since < DISCOVERY_GRACE:
        # Right after `up`, Prometheus has not run its first service discovery yet: wait for it
        # rather than report a problem that solves itself seconds later.
        seen: list[list[Any] | None] = [active]

        def discovered() -> bool:
            seen.append(_active_alertmanagers(runtime))
            return seen[-1] != []

        poll_until(discovered, timeout=DISCOVERY_GRACE - since, interval=1.0)
        active = seen[-1]
    if active == []:
        yield Finding(
            "alerts-no-receiver",
            Severity.MEDIUM,
            "Prometheus has no active Alertmanager: firing alerts go nowhere",
            "check `stack logs alertmanager` and `stack status`",
            component="alertmanager",
        )


# The disk holding the volumes, seen from a container that has `df` (busybox).
DF_SERVICES = (("prometheus", "/prometheus"), ("alertmanager", "/alertmanager"), ("grafana", "/var/lib/grafana"))


def parse_df(output: str) -> tuple[int, int] | None:
    """(used, size) in KiB from `df -Pk PATH` output."""
    for line in output.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5 and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[2]), int(parts[1])
    return None


def _disk_live(settings: Settings, runtime: Runtime) -> Iterable[Finding]:
    for service, path in DF_SERVICES:
        if not settings.component(service).enabled:
            continue
        result = runtime.exec(service, ["df", "-Pk", path], timeout=20)
        parsed = parse_df(result.stdout) if result.ok else None
        if parsed is None:
            continue
        used, size = parsed
        ratio = used / size if size else 0
        if ratio >= NEAR:
            yield Finding(
                "volume-near-full",
                Severity.HIGH if ratio >= VERY_NEAR else Severity.MEDIUM,
                f"the disk holding the volumes is {ratio:.0%} full ({(size - used) / 1024**2:.1f} GiB free)",
                "free space on the Docker host, or shorten retention (components.*.retention) and `stack up`",
                component=service,
            )
        return


def check_stack(settings: Settings, paths: Paths, runtime: Runtime, report: Report) -> Report:
    """Add the checks on the running stack to `report`; each one that cannot run is listed as skipped."""
    checks: dict[str, Callable[[], Iterable[Finding]]] = {
        "grafana live": lambda: _grafana_live(settings, paths, runtime),
        "versions": lambda: _versions_live(settings, runtime),
        "oom": lambda: _oom_live(settings, runtime),
        "memory": lambda: _memory_live(settings, runtime),
        "alertmanager live": lambda: _alertmanager_live(settings, runtime),
        "disk": lambda: _disk_live(settings, runtime),
    }
    for name, check in checks.items():
        try:
            report.findings.extend(check())
        except (StackError, ConnectionError, TimeoutError, OSError, ValueError, KeyError) as exc:
            report.skipped[name] = str(exc).split("\n")[0] or type(exc).__name__
        else:
            report.checked.append(name)
    return report
