"""A Runtime for readiness/status/provisioning tests: each component is a real server on 127.0.0.1
(a real Prometheus, a fake Grafana, a slow server...), reached by plain HTTP, with container states
given by the test. It implements the Runtime protocol, so the code under test cannot tell."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

import requests

from stack.runtime.base import HttpReply, ServiceState
from stack.tools import ToolResult


@dataclass
class UrlRuntime:
    urls: dict[str, str]
    states: dict[str, ServiceState] = field(default_factory=dict)
    log_lines: dict[str, list[str]] = field(default_factory=dict)
    name: str = "urls"
    requests_made: list[tuple[str, str, str]] = field(default_factory=list)

    def check(self) -> None:
        pass

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        pass

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        pass

    def stop(self, services: list[str], *, timeout: float = 30) -> None:
        pass

    def start(self, services: list[str]) -> None:
        pass

    def ps(self) -> list[ServiceState]:
        started = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
        return [
            self.states.get(name, ServiceState(name=name, state="running", started_at=started)) for name in self.urls
        ]

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        lines = self.log_lines.get(service or "", [])
        return iter(lines[-tail:] if tail else lines)

    def base_url(self, service: str, port: str) -> str | None:
        return self.urls.get(service)

    def http(
        self,
        service: str,
        port: str,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5,
    ) -> HttpReply:
        self.requests_made.append((service, method, path))
        try:
            reply = requests.request(
                method, self.urls[service] + path, data=body, headers=dict(headers or {}), timeout=timeout
            )
        except requests.Timeout:
            raise TimeoutError(f"{service}: no answer in {timeout} s") from None
        except requests.ConnectionError as exc:
            raise ConnectionError(f"{service}: {exc}") from None
        return HttpReply(reply.status_code, reply.content, dict(reply.headers))

    def copy_out(self, service: str, path: str) -> IO[bytes]:
        raise NotImplementedError

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        raise NotImplementedError

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        raise NotImplementedError

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        raise NotImplementedError
