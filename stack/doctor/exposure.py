"""Who can reach the stack: published ports in the settings, and, for a server (`--host`), a probe
from this machine of every port a component listens on and of the TLS proxy as a browser sees it."""

from __future__ import annotations

from collections.abc import Iterable

from stack.components import REGISTRY
from stack.doctor.certs import CERT_EXPIRY_DAYS, days_left, not_after
from stack.doctor.findings import Finding, Severity
from stack.net.ports import port_answers
from stack.settings import (
    OPTIONAL_COMPONENT_NAMES,
    Settings,
    is_loopback,
    plain_http_exposure,
)

# Components without authentication of their own: whoever reaches the port can read or change data.
UNAUTHENTICATED = {
    "prometheus": "its admin API deletes series and takes snapshots; its web UI shows every metric",
    "loki": "anyone can read every log line and push fake ones",
    "tempo": "anyone can read every trace",
    "alertmanager": "anyone can silence alerts or read the routing",
}


def check_exposure(settings: Settings) -> Iterable[Finding]:
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
            zip(candidates, pool.map(lambda port: port_answers(host, port, timeout=timeout), candidates), strict=True)
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
    expiry = not_after(cert, der)
    if expiry is not None:
        days = days_left(expiry)
        if days < CERT_EXPIRY_DAYS:
            yield Finding(
                "tls-cert-expiring",
                Severity.HIGH,
                f"the certificate served at {where} expires in {max(days, 0):.0f} days ({expiry:%Y-%m-%d})",
                "with tls.mode auto, check `stack logs proxy` for renewal errors; with files, renew it and deploy",
                component="proxy",
            )
