"""Checks across keys, made once every key is valid on its own: ports published twice, the TLS
proxy's needs, Grafana exposed over plain HTTP, SLO names and receivers.

Names only the bundled files know (rule-pack thresholds, dashboard packs) are checked by the
modules that read those files, passed to `parse_settings` as `SettingsCheck`s (stack.project).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from stack.settings.components import COMPONENT_NAMES
from stack.settings.errors import dotted
from stack.settings.fields import is_loopback
from stack.settings.models import Settings
from stack.yamlio import KeyPath, LoadedYaml

# What is wrong, as the key path to blame, the message and a hint.
Problem = tuple[KeyPath, str, str | None]
# A check run once the settings are valid and consistent: the problem it finds, or None.
SettingsCheck = Callable[[Settings], Problem | None]


def _published_ports(settings: Settings) -> list[tuple[KeyPath, int]]:
    found: list[tuple[KeyPath, int]] = []
    for name in settings.enabled():
        comp = settings.component(name)
        for field_name in type(comp).model_fields:
            if field_name == "port" or field_name.endswith("_port"):
                value = getattr(comp, field_name)
                if value is not None:
                    found.append((("components", name, field_name), value))
        frontend = settings.components.otel_collector.frontend
        if name == "otel-collector" and frontend.enabled:
            found.append((("components", name, "frontend", "port"), frontend.port))
    return found


PLAIN_HTTP_HINT = (
    "keep bind_address 127.0.0.1 and serve Grafana through the TLS proxy (profile: server, server.hostname), "
    "or set server.allow_plain_http: true if a TLS terminator of your own sits in front"
)


def plain_http_exposure(settings: Settings) -> tuple[KeyPath, str] | None:
    """Grafana published on a non-loopback address over plain HTTP (passwords and cookies in clear)."""
    grafana = settings.component("grafana")
    if grafana.enabled and grafana.port is not None and not is_loopback(settings.bind_address):
        return (
            ("bind_address",),
            f"{settings.bind_address} publishes Grafana (port {grafana.port}) without TLS",
        )
    return None


def _proxy_problem(settings: Settings, loaded: LoadedYaml) -> tuple[KeyPath, str, str] | None:
    proxy = settings.components.proxy
    if not proxy.enabled:
        return None
    blame: KeyPath = (
        ("components", "proxy", "enabled") if ("components", "proxy", "enabled") in loaded.lines else (("profile",))
    )
    server = settings.server
    if not settings.component("grafana").enabled:
        return blame, "the TLS proxy fronts Grafana, which is disabled", "enable grafana or disable the proxy"
    if proxy.port is None:
        return ("components", "proxy", "port"), "the TLS proxy needs its HTTPS port", "set a port such as 443"
    if server.hostname is None:
        return (
            ("server", "hostname") if ("server",) in loaded.lines else blame,
            "the TLS proxy needs server.hostname (the name users open Grafana at)",
            "set server.hostname: grafana.example.com",
        )
    tls = server.tls
    if tls.mode == "auto":
        try:
            ipaddress.ip_address(server.hostname)
        except ValueError:
            pass
        else:
            return (
                ("server", "tls", "mode"),
                f"automatic certificates need a DNS name, not the address {server.hostname}",
                "use tls.mode: internal (Caddy's own CA) or files (your certificate), or a DNS name",
            )
        if proxy.http_port is None:
            return (
                ("components", "proxy", "http_port"),
                "automatic certificates need the HTTP port (ACME HTTP-01 challenge)",
                "set http_port: 80, or use tls.mode: files",
            )
    if tls.mode == "files":
        for key in ("cert_file", "key_file"):
            if getattr(tls, key) is None:
                return ("server", "tls", key), f"tls.mode files needs tls.{key}", "give the path of the PEM file"
    return None


def consistency(settings: Settings, loaded: LoadedYaml, *, security: bool = True) -> tuple[KeyPath, str, str] | None:
    seen: dict[int, KeyPath] = {}
    for path, port in _published_ports(settings):
        if port in seen:
            # Blame the port the user wrote, not a default they may not know about.
            blame, other = (
                (path, seen[port]) if path in loaded.lines or seen[port] not in loaded.lines else (seen[port], path)
            )
            return blame, f"port {port} is also published by {dotted(other)}", "choose another port"
        seen[port] = path
    # "file_sd" is the job of the target files Prometheus watches (stack/components/prometheus.py).
    jobs: set[str] = {*COMPONENT_NAMES, "file_sd"}
    for index, target in enumerate(settings.scrape_targets):
        if target.job in jobs:
            return (
                ("scrape_targets", index, "job"),
                f"job {target.job!r} is already used",
                "give every scrape target a job name of its own",
            )
        jobs.add(target.job)
    problem = _proxy_problem(settings, loaded)
    if problem:
        return problem
    if security and not settings.server.allow_plain_http:
        exposure = plain_http_exposure(settings)
        if exposure:
            return exposure[0], exposure[1], PLAIN_HTTP_HINT
    return _signals_consistency(settings)


def _signals_consistency(settings: Settings) -> tuple[KeyPath, str, str] | None:
    names: set[str] = set()
    for index, slo in enumerate(settings.slos):
        if slo.name in names:
            return ("slos", index, "name"), f"SLO {slo.name!r} is declared twice", "give every SLO a name of its own"
        names.add(slo.name)
    alerting = settings.alerting
    for key in ("page", "ticket"):
        chosen_receiver = getattr(alerting, key)
        if chosen_receiver is not None and chosen_receiver not in alerting.receivers:
            known_receivers = ", ".join(alerting.receivers) or "none declared under alerting.receivers"
            return (
                ("alerting", key),
                f"receiver {chosen_receiver!r} is not declared",
                f"known receivers: {known_receivers}",
            )
    return None
