"""`stack doctor`: security and health findings on the settings and, when it answers, the running stack.

Every finding has a stable id (for `--skip` and scripts), a severity and a fix. Settings checks need
nothing but stack.yaml; stack checks go through the `Runtime` interface, so they work the same on a
local engine, a remote `ssh://` host or local processes.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from stack.components import REGISTRY
from stack.errors import StackError
from stack.imageref import ImageRef
from stack.paths import Paths
from stack.polling import poll_until
from stack.render import RenderedProject, render_project
from stack.runtime.base import Runtime, ServiceState
from stack.runtime.binaries import pinned_version
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore, tls_file_paths
from stack.settings import (
    COMPONENT_NAMES,
    OPTIONAL_COMPONENT_NAMES,
    Settings,
    _image,
    is_loopback,
    parse_settings,
    plain_http_exposure,
    read_settings_file,
)
from stack.units import parse_size
from stack.versions import parse_version

DEFAULT_BACKUP_DAYS = 7
BACKUP_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar")
# Components without authentication of their own: whoever reaches the port can read or change data.
UNAUTHENTICATED = {
    "prometheus": "its admin API deletes series and takes snapshots; its web UI shows every metric",
    "loki": "anyone can read every log line and push fake ones",
    "tempo": "anyone can read every trace",
    "alertmanager": "anyone can silence alerts or read the routing",
}
WEAK_PASSWORDS = {"admin", "password", "grafana", "changeme", "secret", "123456", "12345678", "prom-operator"}
MIN_PASSWORD_LENGTH = 16
# Usage ratios: memory (RSS / limit) and disk (used / size).
NEAR, VERY_NEAR = 0.80, 0.90
CERT_EXPIRY_DAYS = 14


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    title: str
    fix: str
    component: str | None = None
    detail: str = ""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    # Checks that ran and checks that could not (with why): a clean report says what it covered.
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    target: str = "settings"

    @property
    def high(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.HIGH]

    def counts(self) -> dict[str, int]:
        return {str(s): sum(1 for f in self.findings if f.severity is s) for s in Severity}

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.id, f.component or ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": not self.high,
            "counts": self.counts(),
            "findings": [{**asdict(f), "severity": str(f.severity)} for f in self.sorted()],
            "checked": self.checked,
            "skipped": self.skipped,
        }


# --- loading: insecure settings are findings here, not errors ---------------------------------


def load_for_doctor(paths: Paths) -> tuple[Settings, list[Finding]]:
    """The settings, read leniently: unpinned images and plain-HTTP exposure become findings.

    Anything else wrong with the file is still a SettingsError (the doctor cannot guess).
    """
    source = paths.settings_source()
    if source is None:
        return Settings(), []
    loaded = read_settings_file(source)
    data = copy.deepcopy(loaded.data)
    findings: list[Finding] = []
    components = data.get("components") if isinstance(data, dict) else None
    if isinstance(components, dict):
        for name, block in components.items():
            if not (isinstance(block, dict) and isinstance(block.get("image"), str)):
                continue
            try:
                _image(block["image"])
            except ValueError as exc:
                line = loaded.line_of(("components", name, "image"))
                findings.append(
                    Finding(
                        "image-not-pinned",
                        Severity.MEDIUM,
                        f"{block['image']} is not pinned to a version",
                        "pin a tag (e.g. grafana/grafana:13.2.0) or a digest, then `stack up`",
                        component=name.replace("_", "-"),
                        detail=f"{source}:{line}: {exc}",
                    )
                )
                del block["image"]  # judge the rest with the default pin
    settings = parse_settings(data, loaded=loaded, source=source, security=False)
    return settings, findings


# --- checks on the settings ------------------------------------------------------------------


def _check_exposure(settings: Settings) -> Iterable[Finding]:
    exposure = plain_http_exposure(settings)
    if exposure:
        allowed = " (allowed by server.allow_plain_http)" if settings.server.allow_plain_http else ""
        yield Finding(
            "plain-http",
            Severity.HIGH,
            f"Grafana is published on {settings.bind_address} without TLS{allowed}",
            "keep bind_address: 127.0.0.1 and use profile: server with server.hostname (TLS proxy), "
            "or set components.grafana.port: null",
            component="grafana",
            detail="passwords and session cookies cross the network in clear text",
        )
    loopback = is_loopback(settings.bind_address)
    for name in settings.enabled():
        if name in OPTIONAL_COMPONENT_NAMES:
            continue
        for spec, port in REGISTRY[name].published(settings):
            if name in UNAUTHENTICATED and not loopback:
                yield Finding(
                    "api-exposed",
                    Severity.HIGH,
                    f"{REGISTRY[name].title} (no authentication) is published on {settings.bind_address}:{port}",
                    f"set components.{name}.{spec.setting}: null (or bind_address: 127.0.0.1); "
                    "reach it through Grafana or an SSH tunnel",
                    component=name,
                    detail=UNAUTHENTICATED[name],
                )
            elif name == "prometheus":
                yield Finding(
                    "admin-api-published",
                    Severity.MEDIUM,
                    f"Prometheus' admin API is published on {settings.bind_address}:{port}",
                    "set components.prometheus.port: null; browse metrics in Grafana > Explore",
                    component=name,
                    detail="every local user and process can delete series through /api/v1/admin/tsdb",
                )
            elif name == "otel-collector" and not loopback and spec.name.startswith("otlp"):
                yield Finding(
                    "otlp-exposed",
                    Severity.MEDIUM,
                    f"the Collector accepts OTLP from anyone on {settings.bind_address}:{port}",
                    "firewall the port to your services' hosts, or keep bind_address: 127.0.0.1 and send "
                    "from the same host or network",
                    component=name,
                    detail="anyone who reaches it can write metrics, logs and traces",
                )


def _check_grafana(settings: Settings, paths: Paths, project: RenderedProject) -> Iterable[Finding]:
    if not settings.component("grafana").enabled:
        return
    environment = project.compose["services"]["grafana"].get("environment", {})
    if str(environment.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() != "false":
        yield Finding(
            "anonymous-access",
            Severity.HIGH,
            "Grafana lets anonymous users in",
            "remove GF_AUTH_ANONYMOUS_ENABLED from your overrides",
            component="grafana",
        )
    store = SecretStore.for_paths(paths)
    try:
        password = store.get(GRAFANA_ADMIN_PASSWORD)
    except StackError as exc:
        yield Finding(
            "secret-readable",
            Severity.HIGH,
            "the Grafana admin password file is readable by other users",
            exc.hint or "chmod 600 it",
            component="grafana",
            detail=exc.message,
        )
        return
    admin_user = getattr(settings.component("grafana"), "admin_user", "admin")
    if password is not None and (
        len(password) < MIN_PASSWORD_LENGTH or password.lower() in WEAK_PASSWORDS or password == admin_user
    ):
        yield Finding(
            "weak-admin-password",
            Severity.HIGH,
            "the Grafana admin password is weak",
            f"delete {store.path(GRAFANA_ADMIN_PASSWORD)} and run `stack up` to generate a strong one "
            "(an existing Grafana database keeps its password: change it in Grafana too)",
            component="grafana",
            detail=f"{len(password)} characters; at least {MIN_PASSWORD_LENGTH} random ones are expected",
        )


def _check_tls(settings: Settings, paths: Paths) -> Iterable[Finding]:
    if not settings.component("proxy").enabled or settings.server.tls.mode != "files":
        return
    try:
        cert, key = tls_file_paths(settings, paths)
    except StackError:
        return
    for path, name in ((cert, "cert_file"), (key, "key_file")):
        if not path.exists():
            yield Finding(
                "tls-file-missing",
                Severity.HIGH,
                f"server.tls.{name} {path} does not exist",
                "fix the path, or use tls.mode: auto",
                component="proxy",
            )
            return
    if key.stat().st_mode & 0o077:
        yield Finding(
            "tls-key-readable",
            Severity.MEDIUM,
            f"the TLS private key {key} is readable by other users",
            f"chmod 600 {key}",
            component="proxy",
        )
    expiry = certificate_expiry(cert)
    if expiry is not None:
        days = (expiry - datetime.now(UTC)).total_seconds() / 86400
        if days < CERT_EXPIRY_DAYS:
            state = "has expired" if days < 0 else f"expires in {days:.0f} days"
            yield Finding(
                "tls-cert-expiring",
                Severity.HIGH,
                f"the TLS certificate {cert} {state} ({expiry:%Y-%m-%d})",
                "renew it and run `stack up` (or `stack deploy`), or use tls.mode: auto",
                component="proxy",
            )


def certificate_expiry(cert: Path) -> datetime | None:
    """The notAfter date of a PEM certificate (the first of a chain), or None when it cannot be read."""
    try:
        data = cert.read_bytes()
    except OSError:
        return None
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(data).not_valid_after_utc
    except ValueError:
        return None


def _check_alert_routing(settings: Settings, project: RenderedProject) -> Iterable[Finding]:
    if settings.component("prometheus").enabled and not settings.component("alertmanager").enabled:
        yield Finding(
            "alerts-no-receiver",
            Severity.MEDIUM,
            "Prometheus evaluates alert rules but Alertmanager is disabled: alerts reach nobody",
            "enable components.alertmanager",
            component="alertmanager",
        )
        return
    files = project.configs.get("alertmanager")
    if not files:
        return
    import yaml

    config = yaml.safe_load(files[0].content) or {}
    receivers = {r.get("name"): r for r in config.get("receivers") or [] if isinstance(r, dict)}
    routed = _routed_receivers(config.get("route") or {})
    notifying = sorted(
        name for name in routed if any(k.endswith("_configs") and v for k, v in receivers.get(name, {}).items())
    )
    if not notifying:
        yield Finding(
            "alerts-no-receiver",
            Severity.MEDIUM,
            f"alerts are routed to {', '.join(sorted(routed)) or 'nothing'}, which notifies nobody",
            "declare a receiver under alerting.receivers (webhook, slack, email or pagerduty) and name it in "
            "alerting.page / alerting.ticket",
            component="alertmanager",
        )
    from stack.alerting import missing_secrets

    for problem in missing_secrets(settings):
        yield Finding(
            "alert-secret-missing",
            Severity.MEDIUM,
            f"an alerting secret cannot be read: {problem}",
            "set the variable (or create the file) before `stack up`; compose fails without it",
            component="alertmanager",
        )


def _routed_receivers(route: dict[str, Any]) -> set[str]:
    found = {route["receiver"]} if route.get("receiver") else set()
    for child in route.get("routes") or []:
        if isinstance(child, dict):
            found |= _routed_receivers(child)
    return found


def _check_backups(settings: Settings, paths: Paths, days: int) -> Iterable[Finding]:
    newest = newest_backup(paths.backups_dir, settings.project)
    if newest is None:
        yield Finding(
            "no-recent-backup",
            Severity.MEDIUM,
            f"no backup found in {paths.backups_dir}",
            "run `stack backup` (and schedule it, e.g. `make backup` from cron)",
        )
        return
    age = (time.time() - newest.stat().st_mtime) / 86400
    if age > days:
        yield Finding(
            "no-recent-backup",
            Severity.MEDIUM,
            f"the newest backup is {age:.0f} days old ({newest.name})",
            "run `stack backup` (and schedule it, e.g. `make backup` from cron)",
            detail=f"more than {days} days",
        )


def newest_backup(directory: Path, project: str) -> Path | None:
    """The most recent backup archive in `directory` (this project's when names say so)."""
    if not directory.is_dir():
        return None
    archives = [p for p in directory.iterdir() if p.is_file() and p.name.endswith(BACKUP_SUFFIXES)]
    mine = [p for p in archives if p.name.startswith(project)] or archives
    return max(mine, key=lambda p: p.stat().st_mtime, default=None)


def _check_pins(settings: Settings) -> Iterable[Finding]:
    defaults = Settings()
    for name in (*COMPONENT_NAMES, *OPTIONAL_COMPONENT_NAMES):
        comp = settings.component(name)
        if not comp.enabled:
            continue
        pinned, tested = comp.image, defaults.component(name).image
        pinned_ref, tested_ref = ImageRef.parse(pinned), ImageRef.parse(tested)
        if pinned_ref.repository != tested_ref.repository:
            continue
        if pinned_ref.version and tested_ref.version and pinned_ref.version < tested_ref.version:
            yield Finding(
                "pin-behind",
                Severity.LOW,
                f"{name} is pinned to {pinned}; this release of stack is tested with {tested}",
                f"set components.{name}.image: {tested} (read its release notes first)",
                component=name,
            )


def normalize_image(image: str) -> str:
    """`docker.io/library/caddy:2` -> `caddy:2`: the form stack.yaml uses."""
    return ImageRef.parse(image).short


def check_settings(settings: Settings, paths: Paths, *, backup_days: int = DEFAULT_BACKUP_DAYS) -> Report:
    """Every check that needs only the settings (and the files beside them)."""
    report = Report()
    project = render_project(settings)
    checks: dict[str, Callable[[], Iterable[Finding]]] = {
        "exposure": lambda: _check_exposure(settings),
        "grafana security": lambda: _check_grafana(settings, paths, project),
        "tls files": lambda: _check_tls(settings, paths),
        "alert routing": lambda: _check_alert_routing(settings, project),
        "backups": lambda: _check_backups(settings, paths, backup_days),
        "image pins": lambda: _check_pins(settings),
    }
    for name, check in checks.items():
        report.findings.extend(check())
        report.checked.append(name)
    return report


# --- checks on the running stack -------------------------------------------------------------


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
    admin_user = getattr(settings.component("grafana"), "admin_user", "admin")
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


def _listening(host: str, port: int, timeout: float) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def reachable_from_here(settings: Settings, host: str, *, timeout: float = 1.5) -> Iterable[Finding]:
    """Connect from this machine to the server's address on every port a component listens on
    (published or container default): whatever answers is reachable from outside the server."""
    from concurrent.futures import ThreadPoolExecutor

    candidates: dict[int, tuple[str, str]] = {}
    for name in settings.enabled():
        if name in OPTIONAL_COMPONENT_NAMES:
            continue
        component = REGISTRY[name]
        published = {spec.name: port for spec, port in component.published(settings)}
        for spec in component.ports:
            candidates.setdefault(published.get(spec.name, spec.container), (name, spec.name))
    with ThreadPoolExecutor(max_workers=max(1, len(candidates)), thread_name_prefix="reach") as pool:
        open_ports = dict(
            zip(candidates, pool.map(lambda port: _listening(host, port, timeout), candidates), strict=True)
        )
    for port, (name, spec_name) in sorted(candidates.items()):
        if not open_ports[port]:
            continue
        if name == "grafana":
            severity, what = Severity.HIGH, "Grafana over plain HTTP"
        elif name in UNAUTHENTICATED:
            severity, what = Severity.HIGH, f"{REGISTRY[name].title}, which has no authentication"
        else:
            severity, what = Severity.MEDIUM, f"the {REGISTRY[name].title}'s {spec_name} port"
        yield Finding(
            "reachable-from-outside",
            severity,
            f"{host}:{port} answers from this machine: {what}",
            "bind it to 127.0.0.1 (bind_address, or the component's port: null) and firewall the server; "
            "only the TLS proxy's 443/80 should answer",
            component=name,
        )


def public_tls(settings: Settings, host: str, *, timeout: float = 5) -> Iterable[Finding]:
    """Connect to the TLS proxy at `host` as a browser would (SNI server.hostname, the system's CAs)."""
    import socket
    import ssl

    proxy = settings.component("proxy")
    name = settings.server.hostname
    if not proxy.enabled or name is None or proxy.port is None:
        return
    where = f"{host}:{proxy.port}"
    context = ssl.create_default_context()
    internal = settings.server.tls.mode == "internal"
    if internal:
        # Caddy's own CA is trusted by nobody by design: judge the expiry only.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, proxy.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=name) as sock,
        ):
            der = sock.getpeercert(binary_form=True)
            cert = sock.getpeercert() if not internal else None
    except ssl.SSLCertVerificationError as exc:
        yield Finding(
            "tls-untrusted",
            Severity.HIGH,
            f"browsers reject the certificate of {name} at {where}: {exc.verify_message}",
            "with tls.mode auto, check that the DNS name points at the server and ports 80/443 are open "
            "(`stack logs proxy`); with files, use the full chain issued for this name",
            component="proxy",
        )
        return
    except (OSError, ssl.SSLError) as exc:
        yield Finding(
            "proxy-unreachable",
            Severity.MEDIUM,
            f"the TLS proxy does not answer at {where}: {exc}",
            "open ports 443/80 in the server's firewall; check `stack status --host ...`",
            component="proxy",
        )
        return
    expiry = _not_after(cert, der)
    if expiry is not None:
        days = (expiry - datetime.now(UTC)).total_seconds() / 86400
        if days < CERT_EXPIRY_DAYS:
            yield Finding(
                "tls-cert-expiring",
                Severity.HIGH,
                f"the certificate served at {where} expires in {max(days, 0):.0f} days ({expiry:%Y-%m-%d})",
                "with tls.mode auto, check `stack logs proxy` for renewal errors; with files, renew it and deploy",
                component="proxy",
            )


def _not_after(cert: dict[str, Any] | None, der: bytes | None) -> datetime | None:
    import ssl

    if cert and cert.get("notAfter"):
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    if der:
        from cryptography import x509

        try:
            return x509.load_der_x509_certificate(der).not_valid_after_utc
        except ValueError:
            return None
    return None


def diagnose(
    paths: Paths,
    *,
    runtime_factory: Callable[[Settings], Runtime] | None = None,
    backup_days: int = DEFAULT_BACKUP_DAYS,
    skip: Iterable[str] = (),
    outside_host: str | None = None,
) -> Report:
    """Check the settings and, when `runtime_factory` is given and its stack answers, the running stack.

    `outside_host` (the server of `--host ssh://...`) is probed from this machine on every port the
    components listen on.
    """
    settings, early = load_for_doctor(paths)
    report = check_settings(settings, paths, backup_days=backup_days)
    report.findings[:0] = early
    if outside_host:
        report.findings.extend(reachable_from_here(settings, outside_host))
        report.checked.append(f"reachable from here ({outside_host})")
        if settings.component("proxy").enabled:
            report.findings.extend(public_tls(settings, outside_host))
            report.checked.append("public TLS")
    if runtime_factory is not None:
        runtime = runtime_factory(settings)
        report.target = f"settings and the running stack ({runtime.name})"
        try:
            runtime.check()
            running = [s for s in runtime.ps() if s.running]
        except StackError as exc:
            report.skipped["running stack"] = exc.one_line()
        else:
            if running:
                check_stack(settings, paths, runtime, report)
            else:
                report.skipped["running stack"] = "no component is running"
    ignored = set(skip)
    report.findings = [f for f in report.findings if f.id not in ignored]
    return report
