"""Checks before anything changes on the server. Each failure names its fix; `--force` skips the
failed requirement checks, never a security one (nor one that would only break the deploy)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from stack.deploy.facts import Facts
from stack.errors import StackError
from stack.paths import Paths
from stack.secrets import compose_environment
from stack.settings import Settings, is_loopback, plain_http_exposure
from stack.units import parse_duration, parse_size
from stack.versions import MIN_COMPOSE, at_least

MIN_ENGINE = Version("20.10")
SUPPORTED_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# What the server keeps for itself beside the stack's memory limits.
OS_RESERVE = 512 * 1024**2
# Rough disk floor for a small team: the images, then per day of retention.
IMAGES_SIZE = 3 * 1024**3
PER_DAY = {"prometheus": 200 * 1024**2, "loki": 300 * 1024**2, "tempo": 300 * 1024**2}
UNAUTHENTICATED = ("prometheus", "loki", "tempo", "alertmanager")
# Docker host paths the render mounts on purpose (host metrics, container logs): they exist on the
# server itself, so they are not "local files".
HOST_SYSTEM_PATHS = ("/", "/var/lib/docker/containers", "/var/run/docker.sock", "/proc", "/sys")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    fix: str = ""
    security: bool = False
    forceable: bool = True
    # Facts were missing: neither passed nor failed.
    unknown: bool = False

    def line(self) -> str:
        state = "unknown" if self.unknown else ("ok" if self.ok else "FAILED")
        kind = " [security]" if self.security and not self.ok else ""
        fix = f" (fix: {self.fix})" if self.fix and not self.ok else ""
        return f"{state:<8}{self.name}{kind}: {self.message}{fix}"


def _fmt(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


# --- security: never skipped -----------------------------------------------------------------


def security_checks(settings: Settings, paths: Paths) -> list[Check]:
    from stack.doctor import Severity, check_settings  # the doctor imports render; keep imports light

    checks: list[Check] = []
    allowed = settings.server.allow_plain_http
    exposure = plain_http_exposure(settings)
    if exposure:
        checks.append(
            Check(
                "grafana over TLS",
                allowed,
                exposure[1] + (" (allowed by server.allow_plain_http)" if allowed else ""),
                "keep bind_address: 127.0.0.1 and use profile: server with server.hostname (TLS proxy)",
                security=True,
            )
        )
    elif settings.component("proxy").enabled:
        from stack.components.proxy import public_url

        checks.append(Check("grafana over TLS", True, f"through the TLS proxy at {public_url(settings)}"))
    else:
        checks.append(Check("grafana over TLS", True, "Grafana is not published beyond the server's loopback"))
    if not is_loopback(settings.bind_address):
        exposed = [name for name in UNAUTHENTICATED if name in settings.enabled() and settings.component(name).port]
        if exposed:
            checks.append(
                Check(
                    "no unauthenticated API published",
                    allowed,
                    f"{', '.join(exposed)} (no authentication) published on {settings.bind_address}",
                    "set their port: null or bind_address: 127.0.0.1 (deploy reaches them through SSH)",
                    security=True,
                )
            )
    if settings.component("proxy").enabled and settings.server.tls.mode == "files":
        try:
            compose_environment(settings, paths)
        except StackError as exc:
            checks.append(Check("tls files", False, exc.message, exc.hint or "", security=True))
        else:
            checks.append(Check("tls files", True, "certificate and key readable"))
    for finding in check_settings(settings, paths).findings:
        if finding.severity is Severity.HIGH and finding.id not in ("plain-http", "api-exposed", "tls-file-missing"):
            checks.append(Check(f"doctor: {finding.id}", False, finding.title, finding.fix, security=True))
    return checks


# --- the compose file must travel alone --------------------------------------------------------


def _bind_source(volume: Any) -> str | None:
    if isinstance(volume, str):
        source = volume.split(":", 1)[0]
        return source if source.startswith((".", "/", "~")) else None
    if isinstance(volume, dict) and volume.get("type") == "bind":
        return str(volume.get("source"))
    return None


def local_file_references(document: dict[str, Any]) -> list[str]:
    """What in a rendered compose document would be read from a disk: on a remote engine, the
    server's disk, where this machine's files are not."""
    found = []
    for kind in ("configs", "secrets"):
        for name, entry in (document.get(kind) or {}).items():
            if isinstance(entry, dict) and "file" in entry:
                found.append(f"{kind[:-1]} {name} reads the file {entry['file']}")
    for service, body in (document.get("services") or {}).items():
        for volume in body.get("volumes") or []:
            source = _bind_source(volume)
            if source is not None and source not in HOST_SYSTEM_PATHS:
                found.append(f"service {service} bind-mounts {source}")
    return found


def remote_safety(document: dict[str, Any]) -> Check:
    found = local_file_references(document)
    if found:
        return Check(
            "compose file self-contained",
            False,
            "; ".join(found),
            "use {env: NAME} instead of {file: PATH} for secrets (stack passes the environment to compose)",
            forceable=False,
        )
    return Check("compose file self-contained", True, "configs inline, state in named volumes, secrets from env")


# --- the server ------------------------------------------------------------------------------


def disk_needed(settings: Settings) -> int:
    need = IMAGES_SIZE
    components = settings.components
    retention = {
        "prometheus": components.prometheus.retention,
        "loki": components.loki.retention,
        "tempo": components.tempo.retention,
    }
    for name, per_day in PER_DAY.items():
        if name in settings.enabled():
            days = parse_duration(retention[name]) / 86400
            need += int(per_day * days)
    return need


def memory_needed(settings: Settings) -> int:
    return sum(parse_size(settings.component(name).memory) for name in settings.enabled())


def published_ports(document: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(host address, port, service) of every published port in the rendered document."""
    found = []
    for service, body in (document.get("services") or {}).items():
        for port in body.get("ports") or []:
            if isinstance(port, dict) and port.get("published"):
                found.append((str(port.get("host_ip") or "0.0.0.0"), int(port["published"]), service))
    return found


def _overlaps(a: str, b: str) -> bool:
    wild = ("0.0.0.0", "::")
    if a in wild or b in wild:
        return True
    with_a, with_b = ipaddress.ip_address(a), ipaddress.ip_address(b)
    return with_a == with_b


def server_checks(settings: Settings, facts: Facts, document: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    checks.append(
        Check(
            "docker engine",
            at_least(facts.engine_version, MIN_ENGINE),
            f"Docker {facts.engine_version or 'unknown version'} on {facts.os or 'the server'}",
            f"upgrade Docker on the server to {MIN_ENGINE} or later",
        )
    )
    checks.append(
        Check(
            "docker compose",
            at_least(facts.compose_version, MIN_COMPOSE),
            f"compose {facts.compose_version or 'unknown'} (runs on this machine; inline configs need "
            f">= {MIN_COMPOSE})",
            "upgrade the docker compose plugin on this machine",
            forceable=False,
        )
    )
    arch = SUPPORTED_ARCH.get((facts.arch or "").lower())
    checks.append(
        Check(
            "cpu architecture",
            arch is not None,
            f"{facts.arch or 'unknown'}"
            + (f" ({arch} images)" if arch else ": the pinned images exist for amd64/arm64"),
            "deploy to an amd64 or arm64 server",
        )
    )
    need = memory_needed(settings)
    if facts.mem_total is None:
        checks.append(Check("memory", True, "total memory unknown", unknown=True))
    else:
        fits = need + OS_RESERVE <= facts.mem_total
        checks.append(
            Check(
                "memory",
                fits,
                f"limits add up to {_fmt(need)}; the server has {_fmt(facts.mem_total)}"
                + (f" ({_fmt(facts.mem_available)} available now)" if facts.mem_available else ""),
                "lower components.*.memory, disable components, or use a larger server",
            )
        )
    disk = disk_needed(settings)
    if facts.disk_free is None:
        checks.append(Check("disk", True, f"free space unknown ({facts.host_facts_missing or 'no SSH'})", unknown=True))
    else:
        checks.append(
            Check(
                "disk",
                facts.disk_free >= disk,
                f"{_fmt(facts.disk_free)} free at {facts.docker_root or 'the Docker root'}; images and "
                f"retention need about {_fmt(disk)}",
                "free space on the server, or shorten components.*.retention",
            )
        )
    if facts.listeners is None:
        checks.append(Check("ports free", True, "listening ports unknown", unknown=True))
    else:
        busy = []
        for address, port, service in published_ports(document):
            if port in facts.own_ports:
                continue
            if any(listener.port == port and _overlaps(listener.address, address) for listener in facts.listeners):
                busy.append(f"{address}:{port} ({service})")
        checks.append(
            Check(
                "ports free",
                not busy,
                f"in use on the server: {', '.join(busy)}" if busy else "every published port is free",
                "stop what listens there, or choose other ports in stack.yaml",
            )
        )
    return checks


def blocking(checks: list[Check], *, force: bool) -> list[Check]:
    """The failed checks that stop the deploy: all of them, or with `force` the unforceable ones."""
    failed = [check for check in checks if not check.ok and not check.unknown]
    return [c for c in failed if not force or c.security or not c.forceable]


def resolve(name: str) -> set[str]:
    """The addresses `name` resolves to here (empty when it does not resolve)."""
    import socket

    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return set()


def dns_check(
    settings: Settings, server_host: str | None, resolver: Callable[[str], set[str]] = resolve
) -> Check | None:
    """With automatic certificates, the public name must point at the server, or the ACME challenge
    (and every user) goes elsewhere."""
    if not settings.component("proxy").enabled or settings.server.tls.mode != "auto" or not settings.server.hostname:
        return None
    name = settings.server.hostname
    points_at = resolver(name)
    fix = f"create an A/AAAA record for {name} pointing at the server, or use tls.mode: files or internal"
    if not points_at:
        return Check("dns", False, f"{name} does not resolve: no certificate can be issued", fix)
    if server_host:
        server = resolver(server_host.strip("[]"))
        if server and not points_at & server:
            return Check(
                "dns",
                False,
                f"{name} points at {', '.join(sorted(points_at))}, the server is {', '.join(sorted(server))}",
                fix + " (or --force when a load balancer or NAT sits in between)",
            )
    return Check("dns", True, f"{name} -> {', '.join(sorted(points_at))}")


def run_preflight(
    settings: Settings,
    paths: Paths,
    facts: Facts,
    document: dict[str, Any],
    *,
    server_host: str | None = None,
    resolver: Callable[[str], set[str]] = resolve,
) -> list[Check]:
    checks = [*security_checks(settings, paths), remote_safety(document), *server_checks(settings, facts, document)]
    dns = dns_check(settings, server_host, resolver)
    return [*checks, dns] if dns else checks
