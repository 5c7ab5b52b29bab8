"""Where to deploy: `ssh://user@host[:port]`, `user@host[:port]` (as in `make deploy HOST=...`) or a
docker context name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stack.errors import StackError

_USER = r"[A-Za-z0-9._][A-Za-z0-9._-]*"
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
_SSH = re.compile(rf"^(?:ssh://)?(?:(?P<user>{_USER})@)?(?P<host>{_HOST})(?::(?P<port>\d+))?$")
_CONTEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Target:
    """A deploy target. `ssh_host` is set when the server can be reached with `ssh` (tunnel, facts)."""

    raw: str
    kind: str  # "ssh" | "context"
    host: str | None = None
    user: str | None = None
    port: int | None = None
    context: str | None = None

    @property
    def docker_host(self) -> str:
        """What the Docker runtime gets as `host`: an ssh:// URL or the context name."""
        if self.kind == "context":
            assert self.context is not None
            return self.context
        return "ssh://" + self.destination + (f":{self.port}" if self.port else "")

    @property
    def destination(self) -> str:
        """`user@host` for the ssh command line (host without brackets)."""
        assert self.host is not None
        host = self.host.strip("[]")
        return f"{self.user}@{host}" if self.user else host

    def describe(self) -> str:
        return f"docker context {self.context}" if self.kind == "context" else self.docker_host


def parse_target(text: str) -> Target:
    """Parse `--host`. A bare word is a docker context; anything with `@`, `://` or `:port` is SSH."""
    value = text.strip()
    if not value:
        raise StackError("--host is empty", hint="use --host ssh://user@server (or make deploy HOST=user@server)")
    if "://" in value and not value.startswith("ssh://"):
        scheme = value.split("://", 1)[0]
        raise StackError(
            f"--host {value}: the {scheme}:// scheme is not supported for deploys",
            hint="use ssh://user@server (encrypted, no engine port to open) or a docker context name",
        )
    if "@" not in value and "://" not in value and ":" not in value and _CONTEXT.fullmatch(value):
        return Target(raw=value, kind="context", context=value)
    match = _SSH.fullmatch(value)
    if not match:
        raise StackError(f"--host {value}: not an SSH target", hint="use ssh://user@server[:port] or user@server")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        raise StackError(f"--host {value}: port {port} is out of range", hint="use a port between 1 and 65535")
    return Target(raw=value, kind="ssh", host=match.group("host"), user=match.group("user"), port=port)


def ssh_target_of_endpoint(endpoint: str, context: str) -> Target | None:
    """The SSH target behind a docker context's endpoint (`ssh://...`), or None (tcp://, unix://)."""
    if not endpoint.startswith("ssh://"):
        return None
    found = parse_target(endpoint)
    return Target(raw=context, kind="context", host=found.host, user=found.user, port=found.port, context=context)


def docker_host_of(text: str | None) -> str | None:
    """`--host` as the Docker CLI wants it: `user@server[:port]` becomes `ssh://user@server[:port]`;
    URLs (ssh://, tcp://, unix://) and context names pass unchanged."""
    if not text or "://" in text:
        return text
    if "@" in text or ":" in text:
        return parse_target(text).docker_host
    return text
