"""What the server has: engine and compose versions, architecture, memory, disk, listening ports.

Engine facts come from `docker info` through the runtime (the same connection the deploy uses);
host facts from /proc and df over SSH (no agent, no package on the server). Parsers are pure.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import Any

from stack.deploy.ssh import run_remote
from stack.hosttarget import Target

SECTION = "---stack-facts---"


@dataclass(frozen=True)
class Listener:
    address: str
    port: int


@dataclass
class Facts:
    engine_version: str | None = None
    compose_version: str | None = None
    arch: str | None = None
    os: str | None = None
    cpus: int | None = None
    mem_total: int | None = None
    mem_available: int | None = None
    docker_root: str | None = None
    disk_free: int | None = None
    disk_size: int | None = None
    listeners: list[Listener] | None = None
    # Host ports the project's own containers publish now (a redeploy reuses them).
    own_ports: set[int] = field(default_factory=set)
    # Why host facts are missing, when they are.
    host_facts_missing: str | None = None


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes by key."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            factor = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
            found[key.strip()] = int(parts[0]) * factor
    return found


def parse_df(text: str) -> tuple[int, int] | None:
    """(available, size) in bytes from `df -Pk PATH`."""
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[3].isdigit():
            return int(parts[3]) * 1024, int(parts[1]) * 1024
    return None


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    # The kernel prints each 32-bit word in host (little-endian) order.
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(swapped))


def parse_proc_net_tcp(text: str) -> list[Listener]:
    """Listening sockets (state 0A) from /proc/net/tcp and /proc/net/tcp6."""
    found: list[Listener] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A" or ":" not in parts[1]:
            continue
        address, _, port = parts[1].partition(":")
        try:
            found.append(Listener(_hex_address(address), int(port, 16)))
        except ValueError:
            continue
    return found


def host_script(docker_root: str) -> str:
    root = shlex.quote(docker_root)
    return (
        f"cat /proc/meminfo; echo {SECTION}; df -Pk {root} 2>/dev/null || df -Pk /; echo {SECTION}; "
        f"cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; echo {SECTION}; uname -m"
    )


def read_host_facts(facts: Facts, target: Target, *, options: list[str] | None = None) -> None:
    """Fill memory, disk and listeners from the server over SSH."""
    result = run_remote(target, host_script(facts.docker_root or "/var/lib/docker"), options=options)
    sections = result.stdout.split(SECTION)
    if len(sections) < 4:
        facts.host_facts_missing = f"unexpected answer from the server: {result.output[:200]}"
        return
    meminfo = parse_meminfo(sections[0])
    facts.mem_available = meminfo.get("MemAvailable")
    facts.mem_total = facts.mem_total or meminfo.get("MemTotal")
    disk = parse_df(sections[1])
    if disk:
        facts.disk_free, facts.disk_size = disk
    facts.listeners = parse_proc_net_tcp(sections[2])
    facts.arch = facts.arch or sections[3].strip() or None


def engine_facts(info: dict[str, Any], compose_version: str | None) -> Facts:
    """Facts from `docker info --format '{{json .}}'` and the local compose plugin's version."""
    return Facts(
        engine_version=info.get("ServerVersion"),
        compose_version=compose_version,
        arch=info.get("Architecture"),
        os=info.get("OperatingSystem"),
        cpus=info.get("NCPU"),
        mem_total=info.get("MemTotal"),
        docker_root=info.get("DockerRootDir"),
    )


def own_published_ports(ps_rows: list[dict[str, Any]]) -> set[int]:
    """Host ports published by the project's containers (`docker compose ps --format json` rows)."""
    found: set[int] = set()
    for row in ps_rows:
        for publisher in row.get("Publishers") or []:
            port = publisher.get("PublishedPort")
            if port:
                found.add(int(port))
    return found
