"""A small Grafana HTTP API client that counts its requests and writes and turns every failure
into one clear StackError (unreachable, 401, 403, too old, conflicts)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from packaging.version import Version

from stack.errors import StackError
from stack.net.http import HttpReply, request
from stack.runtime.base import Runtime
from stack.versions import at_least

# Service accounts (the token `stack` keeps) exist since 9.1; folderUid on dashboards since 8.
MIN_VERSION = Version("9.1")


class GrafanaError(StackError):
    """Grafana answered with an error, or did not answer."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None, body: Any = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body


class Transport(Protocol):
    """How requests reach Grafana: a URL from this machine, or the runtime (a remote engine)."""

    where: str

    def send(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> HttpReply:
        """Raises ConnectionError / TimeoutError when nothing answers."""
        ...


class UrlTransport:
    """Plain HTTP(S) to a Grafana URL (stack.net.http: a kept-alive session per thread, reads run in parallel)."""

    def __init__(self, base_url: str) -> None:
        self.where = base_url.rstrip("/")

    def send(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> HttpReply:
        return request(method, self.where + path, body=body, headers=headers, timeout=timeout)


class RuntimeTransport:
    """Requests made through the runtime (published port, tunnel, or from inside the network)."""

    def __init__(self, runtime: Runtime, service: str = "grafana", port: str = "http") -> None:
        self.runtime, self.service, self.port = runtime, service, port
        self.where = runtime.base_url(service, port) or f"{service} ({runtime.name} runtime)"

    def send(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> HttpReply:
        return self.runtime.http(
            self.service, self.port, path, method=method, body=body, headers=headers, timeout=timeout
        )


@dataclass
class Auth:
    """Either a token (service account) or a user and password (basic auth)."""

    token: str | None = None
    user: str | None = None
    password: str | None = None
    # Where the credentials came from, for error hints (never the secret itself).
    source: str = "the credentials given"

    def header(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.user is not None:
            raw = f"{self.user}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}


@dataclass
class Counter:
    requests: int = 0
    writes: int = 0
    log: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str) -> None:
        with self.lock:
            self.requests += 1
            if method != "GET":
                self.writes += 1


class GrafanaClient:
    def __init__(self, transport: Transport, auth: Auth, *, counter: Counter | None = None, timeout: float = 15):
        self.transport, self.auth, self.timeout = transport, auth, timeout
        self.counter = counter or Counter()

    @property
    def where(self) -> str:
        return self.transport.where

    # -- the one request path -----------------------------------------------------------------------

    def request(
        self, method: str, path: str, payload: Any = None, *, ok: tuple[int, ...] = (200,), what: str = ""
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON) for a status in `ok`, else raise GrafanaError."""
        headers = {"Accept": "application/json", **self.auth.header()}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        self.counter.count(method)
        try:
            reply = self.transport.send(method, path, body, headers, self.timeout)
        except TimeoutError:
            raise GrafanaError(
                f"Grafana at {self.where} did not answer within {self.timeout:g} s",
                hint="check that it is running: `stack status`",
            ) from None
        except ConnectionError as exc:
            raise GrafanaError(
                f"cannot reach Grafana at {self.where}: {exc}",
                hint="check the URL, and that Grafana runs (`stack status`)",
            ) from None
        self.counter.log.append((method, path, reply.status))
        try:
            data = json.loads(reply.body) if reply.body else None
        except ValueError:
            data = reply.text()
        if reply.status in ok:
            return reply.status, data
        raise self._error(reply.status, data, method, path, what)

    def _error(self, status: int, data: Any, method: str, path: str, what: str) -> GrafanaError:
        message = data.get("message") if isinstance(data, dict) else (str(data)[:200] if data else "")
        doing = what or f"{method} {path}"
        detail = f": {message}" if message else ""
        if status == 401:
            return GrafanaError(
                f"Grafana at {self.where} rejected {self.auth.source} (401 Unauthorized)",
                hint="check the token or the user and password",
                status=status,
                body=data,
            )
        if status == 403:
            return GrafanaError(
                f"Grafana at {self.where} refused to {doing}: permission denied (403{detail})",
                hint="use a token or user with the Admin role in that organization",
                status=status,
                body=data,
            )
        return GrafanaError(
            f"Grafana at {self.where} could not {doing}: HTTP {status}{detail}",
            status=status,
            body=data,
        )

    def get_or_none(self, path: str, *, what: str = "") -> Any:
        """The JSON at `path`, or None on 404."""
        status, data = self.request("GET", path, ok=(200, 404), what=what)
        return None if status == 404 else data

    # -- checks -------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        _status, data = self.request("GET", "/api/health", what="report its health")
        if not isinstance(data, dict):
            raise GrafanaError(f"{self.where} does not look like Grafana (/api/health is not JSON)")
        return data

    def check_version(self) -> str:
        """Grafana's version; a clear error when it is too old or not ready."""
        health = self.health()
        version = str(health.get("version", ""))
        if health.get("database") not in (None, "ok"):
            raise GrafanaError(f"Grafana at {self.where} is not ready: database {health.get('database')}")
        if version and not at_least(version, MIN_VERSION):
            raise GrafanaError(
                f"Grafana {version} at {self.where} is too old (stack needs >= {MIN_VERSION})",
                hint="upgrade Grafana",
            )
        return version

    # -- objects ------------------------------------------------------------------------------------

    def folder(self, uid: str) -> dict[str, Any] | None:
        return self.get_or_none(f"/api/folders/{quote(uid)}", what=f"read folder {uid!r}")

    def datasource(self, uid: str) -> dict[str, Any] | None:
        return self.get_or_none(f"/api/datasources/uid/{quote(uid)}", what=f"read datasource {uid!r}")

    def dashboard(self, uid: str) -> dict[str, Any] | None:
        return self.get_or_none(f"/api/dashboards/uid/{quote(uid)}", what=f"read dashboard {uid!r}")
