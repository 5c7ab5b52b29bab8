"""The doctor's checks that need only stack.yaml and the files beside it (secrets, TLS files, backups).

Loading is lenient here: what `stack up` refuses (unpinned images, plain-HTTP exposure) becomes a
finding instead of an error, so the doctor can say what is wrong with settings `up` would not run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from stack.doctor.certs import CERT_EXPIRY_DAYS, certificate_expiry, days_left
from stack.doctor.exposure import check_exposure
from stack.doctor.findings import Finding, Report, Severity
from stack.errors import StackError
from stack.imageref import ImageRef
from stack.paths import Paths
from stack.project import SETTINGS_CHECKS
from stack.render import RenderedProject, render_project
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore, tls_file_paths
from stack.settings import (
    COMPONENT_NAMES,
    OPTIONAL_COMPONENT_NAMES,
    Settings,
    _image,
    parse_settings,
    read_settings_file,
)

DEFAULT_BACKUP_DAYS = 7
BACKUP_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar")
WEAK_PASSWORDS = {"admin", "password", "grafana", "changeme", "secret", "123456", "12345678", "prom-operator"}
MIN_PASSWORD_LENGTH = 16


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
    settings = parse_settings(data, loaded=loaded, source=source, security=False, checks=SETTINGS_CHECKS)
    return settings, findings


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
    admin_user = settings.components.grafana.admin_user
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
        days = days_left(expiry)
        if days < CERT_EXPIRY_DAYS:
            state = "has expired" if days < 0 else f"expires in {days:.0f} days"
            yield Finding(
                "tls-cert-expiring",
                Severity.HIGH,
                f"the TLS certificate {cert} {state} ({expiry:%Y-%m-%d})",
                "renew it and run `stack up` (or `stack deploy`), or use tls.mode: auto",
                component="proxy",
            )


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


def check_settings(settings: Settings, paths: Paths, *, backup_days: int = DEFAULT_BACKUP_DAYS) -> Report:
    """Every check that needs only the settings (and the files beside them)."""
    report = Report()
    project = render_project(settings)
    checks: dict[str, Callable[[], Iterable[Finding]]] = {
        "exposure": lambda: check_exposure(settings),
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
