"""The Docker runtime: the rendered compose project run by `docker compose`, on the local engine or a
remote one (`ssh://user@server` or a docker context).

The CLI is reached through cli.py, the Engine API through engine.py; this class puts them together
behind the Runtime protocol. Every failure leaves it as a `StackError` naming the command and what went
wrong, never as a library exception.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import IO, Any

from stack.components import REGISTRY
from stack.errors import RuntimeUnavailable, StackError
from stack.net.address import http_url, url_host
from stack.net.http import request
from stack.paths import Paths
from stack.runtime.base import ContainerHealth, HttpReply, ServiceState
from stack.runtime.docker import inside
from stack.runtime.docker.cli import DockerCli
from stack.runtime.docker.engine import Engine, PullProgress
from stack.runtime.docker.states import STOPPED_STATES, parse_compose_ps, service_states
from stack.settings import Settings
from stack.tools import ToolResult
from stack.versions import MIN_COMPOSE, at_least


class DockerRuntime:
    """The Runtime protocol over Docker Compose (the CLI) and the Engine API (docker SDK)."""

    name = "docker"

    def __init__(self, settings: Settings, paths: Paths, *, host: str | None = None) -> None:
        self.settings, self.paths, self.host = settings, paths, host
        self.cli = DockerCli(settings, paths, host)
        self._checked = False

    @property
    def remote(self) -> bool:
        """Whether the engine runs elsewhere, so that its published ports are not on this machine.
        A context name counts as remote: requests then go through the engine, which works anywhere."""
        target = self.host or os.environ.get("DOCKER_HOST", "")
        if not target:
            return False
        if target.startswith(("unix://", "npipe://")):
            return False
        return not re.match(r"tcp://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$", target)

    @cached_property
    def engine(self) -> Engine:
        """The Engine API of the very engine the CLI talks to."""
        return Engine(self.settings, self.host, self.cli.locate)

    # -- Runtime protocol -------------------------------------------------------------------------

    def check(self) -> None:
        if self._checked:
            return
        from concurrent.futures import ThreadPoolExecutor

        cli = self.cli
        # Both at once: each is a process start, and `status` pays for this check every time.
        with ThreadPoolExecutor(max_workers=2) as pool:
            engine = pool.submit(
                cli.run, cli.docker("version", "--format", "{{.Server.Version}}"), action="docker version"
            )
            compose = pool.submit(cli.run, cli.docker("compose", "version", "--short"), action="docker compose version")
            engine.result()  # no engine is the error to report first, even when compose is missing too
            version = compose.result()
        if not at_least(version, MIN_COMPOSE):
            raise RuntimeUnavailable(
                f"docker compose {version.strip()} is too old (stack needs >= {MIN_COMPOSE})",
                hint="upgrade the docker compose plugin",
            )
        self._checked = True

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        if services == []:
            return
        argv = self.cli.compose("up", "--detach", *(["--remove-orphans"] if services is None else []))
        argv += ["--pull", "missing" if pull else "never", *(services or [])]
        # No timeout: a first `up` pulls images, which takes what the network takes.
        self.cli.run(argv, action="docker compose up", timeout=None)

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        argv = self.cli.compose("down", "--remove-orphans", "--timeout", str(int(timeout)))
        self.cli.run([*argv, *(["--volumes"] if volumes else [])], action="docker compose down", timeout=None)

    def stop(self, services: list[str], *, timeout: float = 30) -> None:
        self.cli.run(self.cli.compose("stop", "--timeout", str(int(timeout)), *services), action="docker compose stop")

    def start(self, services: list[str]) -> None:
        self.cli.run(self.cli.compose("start", *services), action="docker compose start")

    def ps_rows(self) -> list[dict[str, Any]]:
        """The raw `docker compose ps --all --format json` rows of the project."""
        argv = self.cli.compose("ps", "--all", "--format", "json")
        return parse_compose_ps(self.cli.run(argv, action="docker compose ps"))

    def _inspect(self, *ids: str) -> list[dict[str, Any]]:
        found = self.cli.run(self.cli.docker("container", "inspect", *ids), action="docker inspect")
        return list(json.loads(found or "[]"))

    def checked_ps(self) -> list[ServiceState]:
        """`check()` then `ps()`, in one wait instead of two: ps only reads, so it runs beside the
        check's children; a failed check is still the error raised (the listing is then dropped)."""
        if self._checked:
            return self.ps()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            listed = pool.submit(self.ps)
            self.check()
            return listed.result()

    def ps(self) -> list[ServiceState]:
        rows = self.ps_rows()
        ids = [row["ID"] for row in rows if row.get("ID")]
        # compose ps has no OOM flag nor start time; one inspect call covers every container.
        inspected = self._inspect(*ids) if ids else []
        return service_states(rows, inspected, self.settings.enabled())

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        argv = self.cli.compose("logs", "--no-color")
        if tail is not None:
            argv += ["--tail", str(tail)]
        if follow:
            argv.append("--follow")
        if since:
            argv += ["--since", since]
        if service:
            argv += ["--no-log-prefix", service]
        yield from self.cli.stream(argv, action="docker compose logs")

    def container_health(self, service: str) -> ContainerHealth | None:
        """The service's healthcheck verdict since its current start, read from the Engine API (one
        lookup, no process started); None when it has none, or the engine cannot tell."""
        return self.engine.container_health(self.settings.project, service)

    def published_port(self, service: str, port: str) -> int | None:
        """The port (a PortSpec name) as published on the engine's host, or None when unpublished."""
        for spec, published in REGISTRY[service].published(self.settings):
            if spec.name == port:
                return published
        return None

    def base_url(self, service: str, port: str) -> str | None:
        if self.remote:
            return None
        component = REGISTRY[service]
        for spec, published in component.published(self.settings):
            if spec.name == port:
                # A port may listen on an address of its own (the Collector's frontend).
                return http_url(url_host(component.port_host_ip(self.settings, spec)), published)
        return None

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
        base = self.base_url(service, port)
        if base:
            # Fresh: Swarm replaces a task behind the same published port, and a kept-alive
            # connection would still reach the task that is gone.
            try:
                return request(method, base + path, body=body, headers=headers, timeout=timeout, fresh=True)
            except (TimeoutError, ConnectionError) as exc:
                raise type(exc)(f"{base}{path}: {exc}") from None
        return self._http_inside(service, port, path, method=method, body=body, headers=headers, timeout=timeout)

    def _http_inside(
        self,
        service: str,
        port: str,
        path: str,
        *,
        method: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> HttpReply:
        """A request made from a container on the project's network (inside.py)."""
        via, url = inside.route(self.settings, service, port, path)
        if inside.has_curl(via):
            config = inside.curl_config(url, method=method, body=body, headers=headers, timeout=timeout)
            argv = [*self._exec_argv(via), "curl", "--config", "-"]
            return inside.parse_curl(self.cli.execute(argv, timeout=timeout + 10, input=config), url)
        argv = inside.wget_argv(service, url, method=method, body=body, headers=headers)
        result = self.exec(via, argv, timeout=timeout + 10)
        if result.returncode != 0 and ("is not running" in result.stderr or "no such service" in result.stderr.lower()):
            raise ConnectionError(f"{url}: {via} is not running")
        return inside.parse_wget(result, url)

    def _exec_argv(self, service: str) -> list[str]:
        """The command line that runs a command (given after it) in the service's container, stdin open."""
        return self.cli.compose("exec", "-T", service)

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        return self.cli.execute([*self._exec_argv(service), *argv], timeout=timeout)

    # -- facts for deploy preflight ---------------------------------------------------------------

    def engine_info(self) -> dict[str, Any]:
        """`docker info` of the engine this runtime talks to (the server's, with a remote host)."""
        text = self.cli.run(self.cli.docker("info", "--format", "{{json .}}"), action="docker info")
        return dict(json.loads(text or "{}"))

    def compose_version(self) -> str:
        """The version of the compose plugin that runs here (compose runs on this machine)."""
        return self.cli.run(self.cli.docker("compose", "version", "--short"), action="docker compose version")

    def context_endpoint(self) -> str | None:
        """The engine URL of the docker context given as host (`ssh://...`, `tcp://...`), or None."""
        if not self.host or "://" in self.host:
            return None
        return self.cli.locate(self.host)

    # -- images, through the Engine API (per-layer progress) -------------------------------------------

    def images(self) -> list[str]:
        """The image of every enabled component."""
        return [self.settings.component(name).image for name in self.settings.enabled()]

    def missing_images(self) -> list[str]:
        """The images of the enabled components that the engine does not have yet."""
        return self.engine.missing_images(self.images())

    def pull_images(self, images: list[str], on_progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull `images` in parallel, reporting bytes per image; one clear error for a failed pull."""
        self.engine.pull_images(images, on_progress)

    # -- files, through the Engine API ------------------------------------------------------------

    def _container_row(self, service: str) -> dict[str, Any]:
        for row in self.ps_rows():
            if row.get("Service") == service and row.get("ID"):
                return row
        raise StackError(f"{service} has no container", hint="run `stack up` first")

    def _container_id(self, service: str) -> str:
        return str(self._container_row(service)["ID"])

    def copy_out(self, service: str, path: str) -> IO[bytes]:
        return self.engine.copy_out(self._container_id(service), service, path)

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        self.engine.copy_in(self._container_id(service), service, path, archive)

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Replace the named volume mounted at `path` with the archive's contents.

        The Engine API can write files but not delete them, and the Loki, Tempo and Collector images
        have no shell to delete them with; so the stopped container and its volume are removed, the
        container is created again by compose (with a new, empty volume, filled from the image as on
        the first `stack up`) and the archive is put into it before it starts. Everything goes
        through the engine, so it works the same on a remote `ssh://` engine. Once the volume is
        removed the previous state is gone: when the copy-in fails after that, the error says so."""
        row = self._container_row(service)
        # Only a container that runs nothing may lose its volume: restarting and paused ones still hold it.
        if row.get("State") not in STOPPED_STATES:
            state = row.get("State") or "in an unknown state"
            raise StackError(f"{service} is {state}: its state cannot be replaced", hint=f"stack stop {service}")
        mounts = [mount for item in self._inspect(str(row["ID"])) for mount in item.get("Mounts") or []]
        volume = next(
            (m.get("Name") for m in mounts if m.get("Destination") == path and m.get("Type") == "volume"), None
        )
        if not volume:
            raise StackError(
                f"{service}: {path} is not a named volume of its container: its state cannot be replaced",
                hint="restore into a stack started by `stack up`",
            )
        cli = self.cli
        cli.run(cli.compose("rm", "--force", service), action="docker compose rm")
        try:
            cli.run(cli.docker("volume", "rm", str(volume)), action="docker volume rm")
        except StackError:
            # The volume, and the previous state in it, are still there: give the service its container back.
            cli.run(cli.compose("create", "--no-recreate", service), action="docker compose create")
            raise
        try:
            cli.run(cli.compose("create", "--no-recreate", service), action="docker compose create")
            self.copy_in(service, path, archive)
        except StackError as exc:
            raise StackError(
                f"{exc.message}; {service}'s previous state was already removed",
                hint="the archive is intact: run the restore again",
            ) from None

    def describe(self) -> str:
        """Where this runtime runs, for messages."""
        where = self.host or os.environ.get("DOCKER_HOST") or "the local Docker engine"
        return f"docker ({where})"

    def command_line(self, *args: str) -> str:
        """The compose command line users can run themselves (for hints)."""
        return shlex.join(str(part) for part in self.cli.compose(*args))
