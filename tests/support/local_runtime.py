"""A tests-only Runtime: real local processes (Prometheus, Alertmanager from tests/support/realbin.py, the
fake Grafana) with their state in local directories, reached over 127.0.0.1.

It follows the Runtime protocol as DockerRuntime does for containers: `copy_out` streams a tar of a
path whose members are rooted at the path's base name (like the Engine API's get_archive),
`copy_in` unpacks a tar stream into a path (like put_archive), `replace_state` swaps a whole state
directory as the process runtime does (rolled back on failure), and paths are the container paths
of stack.components (`/prometheus/...`), mapped onto each service's local data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from stack.errors import StackError
from stack.runtime.base import HttpReply, ServiceState
from stack.tools import ToolResult, run

Starter = Callable[["LocalService"], contextlib.AbstractContextManager[Any]]


@dataclass
class LocalService:
    name: str
    state_root: str
    data_dir: Path
    starter: Starter
    image: str
    server: Any = None
    _stack: contextlib.ExitStack | None = None
    http_calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        process = getattr(self.server, "process", None)
        if process is not None:
            return process.poll() is None
        return self.server is not None

    def start(self) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stack = contextlib.ExitStack()
        self.server = stack.enter_context(self.starter(self))
        self._stack = stack

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self.server = None

    def local(self, path: str) -> Path:
        if path != self.state_root and not path.startswith(self.state_root + "/"):
            raise StackError(f"{self.name}: {path} is outside its state {self.state_root}")
        return self.data_dir / path[len(self.state_root) :].lstrip("/")


class LocalRuntime:
    name = "local-test"

    def __init__(self, *services: LocalService) -> None:
        self.services = {service.name: service for service in services}
        self.stopped: list[list[str]] = []
        self.replaced: list[tuple[str, str]] = []

    def check(self) -> None:
        pass

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        for name in services or list(self.services):
            self.services[name].start()

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        for service in self.services.values():
            service.stop()
            if volumes:
                shutil.rmtree(service.data_dir, ignore_errors=True)

    def stop(self, services: list[str], *, timeout: float = 30) -> None:
        self.stopped.append(list(services))
        for name in services:
            self.services[name].stop()

    def start(self, services: list[str]) -> None:
        for name in services:
            self.services[name].start()

    def ps(self) -> list[ServiceState]:
        return [
            ServiceState(name, "running" if service.running else "exited", image=service.image)
            for name, service in self.services.items()
        ]

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        return iter(())

    def _port(self, service: str) -> int:
        found = self.services[service]
        if not found.running:
            raise ConnectionError(f"{service} is not running")
        return int(found.server.port)

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
        url = f"http://127.0.0.1:{self._port(service)}{path}"
        self.services[service].http_calls.append((method, path))
        try:
            reply = requests.request(method, url, data=body, headers=dict(headers or {}), timeout=timeout)
        except requests.ConnectionError as exc:
            raise ConnectionError(str(exc)) from None
        except requests.Timeout as exc:
            raise TimeoutError(str(exc)) from None
        return HttpReply(reply.status_code, reply.content, dict(reply.headers))

    def base_url(self, service: str, port: str) -> str | None:
        return f"http://127.0.0.1:{self._port(service)}"

    def copy_out(self, service: str, path: str) -> IO[bytes]:
        source = self.services[service].local(path)
        if not source.exists():
            raise StackError(f"{service}: {path}: no such file or directory")
        read_fd, write_fd = os.pipe()

        def produce() -> None:
            with (
                os.fdopen(write_fd, "wb") as sink,
                contextlib.suppress(BrokenPipeError),
                tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                tar.add(source, arcname=source.name)

        threading.Thread(target=produce, daemon=True).start()
        return os.fdopen(read_fd, "rb")

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        target = self.services[service].local(path)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=archive, mode="r|") as tar:
            tar.extractall(target, filter="data")

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        """As the process runtime does: the old directory moved aside, put back if unpacking fails."""
        found = self.services[service]
        if path != found.state_root:
            raise StackError(f"{service}: {path} is not its state directory {found.state_root}")
        if found.running:
            raise StackError(f"{service} is running: its state cannot be replaced")
        self.replaced.append((service, path))
        target = found.local(path)
        holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.previous-", dir=target.parent))
        previous = holder / target.name
        if target.exists():
            target.rename(previous)
        try:
            self.copy_in(service, path, archive)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            if previous.exists():
                previous.rename(target)
            raise
        finally:
            shutil.rmtree(holder, ignore_errors=True)

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        found = self.services[service]
        mapped = [str(found.local(arg)) if arg.startswith(found.state_root) else arg for arg in argv]
        return run(mapped, timeout=timeout)
