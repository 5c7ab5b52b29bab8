"""The Docker runtime: the rendered compose project run by `docker compose` (through python-on-whales),
on the local engine or a remote one (`ssh://user@server` or a docker context).

This module (with its Engine API transport over ssh, dialstdio.py) is the only one that imports
python_on_whales and the docker SDK. Every failure leaves it as a `StackError` naming the command and
what went wrong, never as a library exception.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from stack.components import REGISTRY
from stack.errors import RuntimeUnavailable, StackError
from stack.imageref import ImageRef
from stack.invocation import no_docker_command
from stack.netaddr import http_url, url_host
from stack.paths import Paths
from stack.runtime.base import ContainerHealth, HttpReply, ServiceState
from stack.secrets import GRAFANA_ADMIN_PASSWORD, GRAFANA_PASSWORD_ENV, SecretStore, compose_environment
from stack.settings import Settings
from stack.ssh_errors import handshake_failure
from stack.sshcli import first_line, ssh_command
from stack.tools import ToolResult
from stack.tools import run as run_tool
from stack.versions import MIN_COMPOSE, at_least

if TYPE_CHECKING:
    from pathlib import Path

    from python_on_whales import DockerClient


def process_hint() -> str:
    return f"start Docker, or run without it: {no_docker_command()}"


class DockerError(StackError):
    """A docker / docker compose command failed; carries the command and its stderr."""

    def __init__(self, message: str, *, hint: str | None = None, command: list[str] | None = None, stderr: str = ""):
        super().__init__(message, hint=hint)
        self.command = command or []
        self.stderr = stderr


# --- turning docker's stderr into one clear line -----------------------------------------------------

_ENGINE_DOWN = re.compile(
    r"Cannot connect to the Docker daemon at (?P<where>\S+?)\.? Is the docker daemon running"
    r"|error during connect: .*?(?P<where2>(?:ssh|tcp|unix|npipe)://\S+)"
    r"|(?P<ssh>ssh: connect to host \S+ port \d+: [^\n]+)"
    r"|(?P<perm>permission denied while trying to connect to the Docker daemon socket at \S+)",
    re.IGNORECASE,
)
# docker's connection helper for ssh:// hosts, when its ssh fails: what ssh printed follows `stderr=`.
_SSH_HELPER_FAILED = re.compile(
    r"command \[ssh [^\]]*\] has exited with exit status \d+[^\n]*?stderr=(?P<printed>.*)", re.DOTALL
)
_COMPOSE_MISSING = re.compile(r"'compose' is not a docker command|unknown command: docker compose", re.IGNORECASE)
_PORT_IN_USE = re.compile(
    r"Bind for (?P<addr>[\d.:\[\]a-f]+?):(?P<port>\d+) failed: port is already allocated"
    r"|listen tcp[46]? (?P<addr2>[\d.:\[\]a-f]+?):(?P<port2>\d+): bind: address already in use",
    re.IGNORECASE,
)
_PULL_FAILED = re.compile(
    r"(?P<what>manifest for (?P<image>\S+) not found[^\n]*"
    r"|pull access denied for (?P<image2>[^,\s]+)[^\n]*"
    r"|failed to resolve reference \"(?P<image3>[^\"]+)\"[^\n]*"
    r"|Get \"https://[^\"]+\": [^\n]*)",
    re.IGNORECASE,
)


def _first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return lines[-1] if lines else "no error output"


def explain(stderr: str, settings: Settings, *, command: list[str] | None = None, action: str = "docker") -> StackError:
    """One clear StackError for what docker printed on stderr (engine down, port in use, pull failure...)."""
    failure = handshake_failure(stderr)
    if failure:
        # docker's own ssh (DOCKER_HOST=ssh://...) reached the server, but no SSH session followed.
        where = _engine_host(command)
        return RuntimeUnavailable(
            f"no Docker engine answers at {where or 'the ssh:// host'}: {failure.meaning} ({failure.printed})",
            hint=failure.hint.format(destination=where if where and "://" in where else "user@server"),
        )
    match = _SSH_HELPER_FAILED.search(stderr)
    if match:
        return ssh_unreachable(_engine_host(command) or "the ssh:// host", match.group("printed"))
    match = _ENGINE_DOWN.search(stderr)
    if match:
        if match.group("perm"):
            return RuntimeUnavailable(
                f"no permission to use the Docker engine: {match.group('perm')}",
                hint="add your user to the docker group (then log in again), or " + process_hint(),
            )
        where = match.group("where") or match.group("where2") or match.group("ssh")
        return RuntimeUnavailable(f"no Docker engine answers at {where}", hint=process_hint())
    if _COMPOSE_MISSING.search(stderr):
        return RuntimeUnavailable(
            "the docker compose plugin is not installed",
            hint=f"install docker-compose-plugin (Compose v2 >= {MIN_COMPOSE}), or run: {no_docker_command()}",
        )
    match = _PORT_IN_USE.search(stderr)
    if match:
        port = int(match.group("port") or match.group("port2"))
        addr = match.group("addr") or match.group("addr2")
        owner = _port_owner(settings, port)
        hint = f"stop what uses it, or set {owner} to a free port in stack.yaml" if owner else "stop what uses it"
        return DockerError(f"port {port} on {addr} is already in use", hint=hint, command=command, stderr=stderr)
    match = _PULL_FAILED.search(stderr)
    if match and ("pull" in stderr.lower() or "manifest" in stderr.lower() or "resolve" in stderr.lower()):
        image = match.group("image") or match.group("image2") or match.group("image3")
        owner = _image_owner(settings, image) if image else None
        hint = (
            f"check {owner} in stack.yaml and that the registry is reachable"
            if owner
            else "check the image names in stack.yaml and that the registry is reachable"
        )
        subject = f"cannot pull {image}" if image else "cannot pull an image"
        return DockerError(f"{subject}: {_clean(match.group('what'))}", hint=hint, command=command, stderr=stderr)
    return DockerError(f"{action} failed: {_first_error_line(stderr)}", command=command, stderr=stderr)


def ssh_destination(url: str) -> tuple[str, int | None]:
    """`ssh://user@host:port` -> (`user@host`, port); no port means ~/.ssh/config's (or 22)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise RuntimeUnavailable(
            f"{url}: no host in the ssh:// URL", hint="use ssh://user@server[:port] or ssh://ALIAS"
        )
    destination = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
    return destination, parts.port


def ssh_unreachable(url: str, printed: str) -> RuntimeUnavailable:
    """The Docker engine behind an ssh:// host cannot be reached: one line with what ssh printed, and a
    hint about the connection (not about starting Docker)."""
    shown = url
    if url.startswith("ssh://"):
        destination, port = ssh_destination(url)
        # ssh takes the URL itself when it carries a port; an alias reads best bare.
        shown = url if port else destination
    failure = handshake_failure(printed)
    if failure:
        return RuntimeUnavailable(
            f"no Docker engine answers at {url}: {failure.meaning} ({failure.printed})",
            hint=failure.hint.format(destination=shown),
        )
    said = first_line(printed) or "the connection failed"
    return RuntimeUnavailable(
        f"cannot reach the Docker engine at {url} over SSH: {said.rstrip('.')}",
        hint=f"check the SSH connection: `ssh {shown} docker version` must work without a prompt "
        "(~/.ssh/config, key or agent)",
    )


def _engine_host(command: list[str] | None) -> str | None:
    """The --host (or --context) a docker command was given."""
    argv = command or []
    for flag in ("--host", "--context"):
        if flag in argv[:-1]:
            return argv[argv.index(flag) + 1]
    return None


def _clean(text: str) -> str:
    return text.strip().rstrip(".")


def _port_owner(settings: Settings, port: int) -> str | None:
    for name in settings.enabled():
        for spec, published in REGISTRY[name].published(settings):
            if published == port:
                return f"components.{name}.{spec.setting}"
    return None


def _image_owner(settings: Settings, image: str) -> str | None:
    bare = ImageRef.parse(image).short
    for name in settings.enabled():
        if settings.component(name).image in (image, bare):
            return f"components.{name}.image"
    return None


# --- parsing what `docker compose ps` / `docker inspect` print --------------------------------------


def parse_compose_ps(stdout: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: one JSON object per line (Compose >= 2.21) or one array (older)."""
    text = stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-01-01"):
        return None
    # Docker prints nanoseconds; Python takes microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        return None


def health_since_start(state: Mapping[str, Any]) -> ContainerHealth | None:
    """The healthcheck verdict in `docker inspect`'s State, counting only checks run since the current
    start: the engine keeps the previous run's status across a restart until the first new check.
    None when the container has no healthcheck."""
    health = state.get("Health")
    if not health:
        return None
    started = _parse_time(state.get("StartedAt"))
    checks = [
        entry
        for entry in health.get("Log") or []
        if started is None or ((when := _parse_time(entry.get("Start"))) is not None and when >= started)
    ]
    if not checks:
        return ContainerHealth("starting")
    last = checks[-1]
    output = " ".join(str(last.get("Output") or "").split())
    if last.get("ExitCode") == 0:
        return ContainerHealth("healthy", output)
    # A failed check after a healthy one: the engine says healthy until `retries` fail in a row.
    return ContainerHealth("unhealthy" if health.get("Status") == "unhealthy" else "starting", output)


def service_states(
    ps_rows: list[dict[str, Any]], inspected: list[dict[str, Any]], services: list[str]
) -> list[ServiceState]:
    """Every service of `services`, with its container's state (or `missing`)."""
    by_id = {item.get("Id", ""): item for item in inspected}
    rows: dict[str, dict[str, Any]] = {row["Service"]: row for row in ps_rows if row.get("Service")}
    found: list[ServiceState] = []
    for name in [*services, *sorted(set(rows) - set(services))]:
        row = rows.get(name)
        if row is None:
            found.append(ServiceState(name=name, state="missing"))
            continue
        detail = next((item for key, item in by_id.items() if key and key.startswith(row.get("ID", "-"))), {})
        state = detail.get("State", {})
        since_start = health_since_start(state) if state else None
        health = since_start.status if since_start else row.get("Health") or None
        found.append(
            ServiceState(
                name=name,
                state=row.get("State") or state.get("Status") or "unknown",
                health=health or None,
                # The engine's own: compose ps says 0 for a restarting container that keeps exiting 3.
                exit_code=state["ExitCode"] if "ExitCode" in state else row.get("ExitCode"),
                oom_killed=bool(state.get("OOMKilled", False)),
                started_at=_parse_time(state.get("StartedAt")),
                image=row.get("Image"),
            )
        )
    return found


# --- HTTP from inside the project's network (busybox/GNU wget) ---------------------------------------

_WGET_STATUS = re.compile(r"HTTP/\d(?:\.\d)? (\d{3})")


def parse_wget(result: ToolResult, url: str) -> HttpReply:
    """What `wget -S -O -` printed, as an HttpReply; ConnectionError when nothing answered."""
    statuses = _WGET_STATUS.findall(result.stderr)
    if statuses:
        headers: dict[str, str] = {}
        for line in result.stderr.splitlines():
            key, sep, value = line.strip().partition(": ")
            if sep and not key.startswith(("wget", "Connecting")) and " " not in key:
                headers[key.lower()] = value
        return HttpReply(int(statuses[-1]), result.stdout.encode(), headers)
    if result.returncode == 124 or "timed out" in result.stderr.lower():
        raise TimeoutError(f"{url}: no answer in time")
    raise ConnectionError(f"{url}: {_first_error_line(result.stderr or result.stdout)}")


@dataclass(frozen=True)
class PullProgress:
    """Where the pull of one image stands (bytes over every layer seen so far)."""

    image: str
    status: str
    done: int
    total: int
    finished: bool = False


# Images that ship curl (which speaks every method); the others have busybox wget (GET, POST).
_HAS_CURL = frozenset({"grafana"})


def _curl_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def parse_curl(result: ToolResult, url: str) -> HttpReply:
    """What `curl --include` printed (status line, headers, blank line, body), as an HttpReply."""
    if result.returncode == 28:
        raise TimeoutError(f"{url}: no answer in time")
    if result.returncode != 0 and not result.stdout.startswith("HTTP/"):
        raise ConnectionError(f"{url}: {_first_error_line(result.stderr or result.stdout)}")
    text = result.stdout
    while True:
        head, _, rest = text.partition("\r\n\r\n" if "\r\n\r\n" in text else "\n\n")
        if rest.startswith("HTTP/"):  # an interim answer (100 Continue) before the real one
            text = rest
            continue
        break
    status_line, *header_lines = head.splitlines()
    match = _WGET_STATUS.search(status_line)
    if not match:
        raise ConnectionError(f"{url}: unexpected answer {status_line[:80]!r}")
    headers = {}
    for line in header_lines:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return HttpReply(int(match.group(1)), rest.encode("utf-8"), headers)


# `docker compose ps` states of a container with no process in it.
_STOPPED_STATES = frozenset({"exited", "created", "dead"})


class DockerRuntime:
    """The Runtime protocol over Docker Compose (python-on-whales) and the Engine API (docker SDK)."""

    name = "docker"

    def __init__(self, settings: Settings, paths: Paths, *, host: str | None = None) -> None:
        self.settings, self.paths, self.host = settings, paths, host
        self._checked = False

    # -- clients ----------------------------------------------------------------------------------

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

    def _export_environment(self) -> None:
        """Put the variables compose reads the project's secrets from into our environment (which
        every docker command inherits); the values never land in compose.yaml or on a command line."""
        store = SecretStore.for_paths(self.paths)
        if self.settings.component("grafana").enabled:
            password = store.get(GRAFANA_ADMIN_PASSWORD)
            if password:
                os.environ[GRAFANA_PASSWORD_ENV] = password
        if self.settings.component("proxy").enabled:
            # The TLS proxy's certificate and key (tls.mode files) travel the same way.
            os.environ.update(
                {k: v for k, v in compose_environment(self.settings, self.paths).items() if k != GRAFANA_PASSWORD_ENV}
            )

    @cached_property
    def client(self) -> DockerClient:
        """python-on-whales, for the compose commands that change things (up, down) and stream (logs).

        Imported here, not at the top: it costs a quarter of a second that `status` need not pay."""
        from python_on_whales import DockerClient

        self._export_environment()
        compose_files: list[str | Path] = [self.paths.compose_file] if self.paths.compose_file.exists() else []
        url_host = self.host if self.host and "://" in self.host else None
        context = self.host if self.host and "://" not in self.host else None
        return DockerClient(
            host=url_host,
            context=context,
            compose_files=compose_files,
            compose_project_name=self.settings.project,
            compose_project_directory=self.paths.render_dir if compose_files else None,
        )

    def _refresh_client(self) -> None:
        self.__dict__.pop("client", None)

    def _docker(self) -> list[str]:
        """`docker` with the global flags python-on-whales would give it (same engine, same order)."""
        found = shutil.which("docker")
        if not found:
            raise self._no_cli()
        argv = [found]
        if self.host and "://" in self.host:
            argv += ["--host", self.host]
        elif self.host:
            argv += ["--context", self.host]
        return argv

    def _compose(self, *args: str) -> list[str]:
        argv = [*self._docker(), "compose"]
        exists = self.paths.compose_file.exists()
        if exists:
            argv += ["--file", str(self.paths.compose_file)]
        argv += ["--project-name", self.settings.project]
        if exists:
            argv += ["--project-directory", str(self.paths.render_dir)]
        return [*argv, *args]

    def _run(self, argv: list[str], *, action: str, timeout: float = 300) -> str:
        """Run a docker command to completion; its stdout, or one clear StackError."""
        self._export_environment()
        result = run_tool(argv, timeout=timeout)
        if result.returncode == 127 and not shutil.which("docker"):
            raise self._no_cli()
        if not result.ok:
            raise explain(result.stderr or result.stdout, self.settings, command=argv, action=action)
        return result.stdout

    def _no_cli(self) -> RuntimeUnavailable:
        return RuntimeUnavailable("the docker command is not installed", hint="install Docker, or " + process_hint())

    def _whales_error(self, exc: Exception, action: str) -> StackError:
        stderr = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or ""
        return explain(stderr, self.settings, command=getattr(exc, "docker_command", None), action=action)

    # -- Runtime protocol -------------------------------------------------------------------------

    def check(self) -> None:
        if self._checked:
            return
        from concurrent.futures import ThreadPoolExecutor

        # Both at once: each is a process start, and `status` pays for this check every time.
        with ThreadPoolExecutor(max_workers=2) as pool:
            engine = pool.submit(
                self._run, [*self._docker(), "version", "--format", "{{.Server.Version}}"], action="docker version"
            )
            compose = pool.submit(
                self._run, [*self._docker(), "compose", "version", "--short"], action="docker compose version"
            )
            engine.result()  # no engine is the error to report first, even when compose is missing too
            version = compose.result()
        if not at_least(version, MIN_COMPOSE):
            raise RuntimeUnavailable(
                f"docker compose {version.strip()} is too old (stack needs >= {MIN_COMPOSE})",
                hint="upgrade the docker compose plugin",
            )
        self._checked = True

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        from python_on_whales import DockerException

        self._refresh_client()  # the compose file and the password may have been written since
        try:
            self.client.compose.up(
                services,
                detach=True,
                remove_orphans=services is None,
                pull="missing" if pull else "never",
                quiet=True,
            )
        except DockerException as exc:
            raise self._whales_error(exc, "docker compose up") from None

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        from python_on_whales import DockerException

        try:
            self.client.compose.down(volumes=volumes, timeout=int(timeout), remove_orphans=True, quiet=True)
        except DockerException as exc:
            raise self._whales_error(exc, "docker compose down") from None

    def stop(self, services: list[str], *, timeout: float = 30) -> None:
        self._run(self._compose("stop", "--timeout", str(int(timeout)), *services), action="docker compose stop")

    def start(self, services: list[str]) -> None:
        self._run(self._compose("start", *services), action="docker compose start")

    def ps_rows(self) -> list[dict[str, Any]]:
        """The raw `docker compose ps --all --format json` rows of the project."""
        return parse_compose_ps(self._run(self._compose("ps", "--all", "--format", "json"), action="docker compose ps"))

    def ps(self) -> list[ServiceState]:
        rows = self.ps_rows()
        ids = [row["ID"] for row in rows if row.get("ID")]
        inspected: list[dict[str, Any]] = []
        if ids:
            # compose ps has no OOM flag nor start time; one inspect call covers every container.
            inspected = json.loads(
                self._run([*self._docker(), "container", "inspect", *ids], action="docker inspect") or "[]"
            )
        return service_states(rows, inspected, self.settings.enabled())

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        argv = self._compose("logs", "--no-color")
        if tail is not None:
            argv += ["--tail", str(tail)]
        if follow:
            argv.append("--follow")
        if since:
            argv += ["--since", since]
        if service:
            argv += ["--no-log-prefix", service]
        from python_on_whales import DockerException
        from python_on_whales.utils import stream_stdout_and_stderr

        self._export_environment()
        try:
            for _source, line in stream_stdout_and_stderr(argv):
                yield line.decode("utf-8", errors="replace").rstrip("\n")
        except DockerException as exc:
            raise self._whales_error(exc, "docker compose logs") from None

    def _published(self, service: str, port: str) -> int | None:
        for spec, published in REGISTRY[service].published(self.settings):
            if spec.name == port:
                return published
        return None

    def container_health(self, service: str) -> ContainerHealth | None:
        """The service's healthcheck verdict since its current start, read from the Engine API (one
        lookup, no process started); None when it has none, or the engine cannot tell."""
        import docker

        labels = [f"com.docker.compose.project={self.settings.project}", f"com.docker.compose.service={service}"]
        try:
            found = self.engine.api.containers(all=True, filters={"label": labels})
            if not found:
                return None
            inspected = self.engine.api.inspect_container(found[0]["Id"])
        except (docker.errors.DockerException, StackError, OSError):
            # The caller probes another way; an engine hiccup is not a verdict.
            return None
        return health_since_start(inspected.get("State") or {})

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
            import requests

            try:
                reply = requests.request(method, base + path, data=body, headers=dict(headers or {}), timeout=timeout)
            except requests.Timeout:
                raise TimeoutError(f"{base}{path}: no answer in {timeout:g} s") from None
            except requests.ConnectionError as exc:
                raise ConnectionError(f"{base}{path}: {exc}") from None
            return HttpReply(reply.status_code, reply.content, dict(reply.headers))
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
        """A request made with wget from a container on the project's network, so that unpublished
        ports (Prometheus' admin API) stay unpublished. Shell-less images are reached from a sibling."""
        component = REGISTRY[service]
        container_port = component.port_spec(port).container
        via: str | None
        if component.has_shell:
            via, url = service, f"http://127.0.0.1:{container_port}{path}"
        else:
            via = next(
                (name for name in self.settings.enabled() if REGISTRY[name].has_shell),
                None,
            )
            if via is None:
                raise StackError(
                    f"cannot reach {service}: its port {port} is not published and no component with a shell runs",
                    hint=f"publish it: set components.{service}.port in stack.yaml",
                )
            url = f"http://{service}:{container_port}{path}"
        if via in _HAS_CURL:
            return self._curl_inside(via, url, method=method, body=body, headers=headers, timeout=timeout)
        if method not in ("GET", "POST"):
            raise StackError(f"cannot send {method} to {service} from inside the network (wget knows GET and POST)")
        # No `-T`: some busybox builds crash on it (Debian's 1.35, exit 139); the exec's own timeout bounds it.
        argv = ["wget", "-S", "-q", "-O", "-"]
        for key, value in (headers or {}).items():
            argv += ["--header", f"{key}: {value}"]
        if method == "POST":
            argv += ["--post-data", (body or b"").decode("utf-8")]
        argv.append(url)
        result = self.exec(via, argv, timeout=timeout + 10)
        if result.returncode != 0 and ("is not running" in result.stderr or "no such service" in result.stderr.lower()):
            raise ConnectionError(f"{url}: {via} is not running")
        return parse_wget(result, url)

    def _curl_inside(
        self,
        via: str,
        url: str,
        *,
        method: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> HttpReply:
        """curl in the container, its whole request (headers with tokens, body) read from stdin as a
        curl config, so that no secret shows on a command line."""
        lines = ["silent", "show-error", "include", f"request = {_curl_quote(method)}", f"url = {_curl_quote(url)}"]
        lines.append(f"max-time = {max(1, round(timeout))}")
        for key, value in {**(headers or {}), "Expect": ""}.items():
            lines.append(f"header = {_curl_quote(f'{key}: {value}' if value else f'{key}:')}")
        if body is not None:
            lines.append(f"data-binary = {_curl_quote(body.decode('utf-8'))}")
        self._export_environment()
        argv = [*self._exec_argv(via), "curl", "--config", "-"]
        result = run_tool(argv, timeout=timeout + 10, input="\n".join(lines) + "\n")
        return parse_curl(result, url)

    def _exec_argv(self, service: str) -> list[str]:
        """The command line that runs a command (given after it) in the service's container, stdin open."""
        return self._compose("exec", "-T", service)

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        self._export_environment()
        return run_tool([*self._exec_argv(service), *argv], timeout=timeout)

    # -- facts for deploy preflight ---------------------------------------------------------------

    def engine_info(self) -> dict[str, Any]:
        """`docker info` of the engine this runtime talks to (the server's, with a remote host)."""
        text = self._run([*self._docker(), "info", "--format", "{{json .}}"], action="docker info")
        return json.loads(text or "{}")

    def compose_version(self) -> str:
        """The version of the compose plugin that runs here (compose runs on this machine)."""
        return self._run([*self._docker(), "compose", "version", "--short"], action="docker compose version")

    def context_endpoint(self) -> str | None:
        """The engine URL of the docker context given as host (`ssh://...`, `tcp://...`), or None."""
        if not self.host or "://" in self.host:
            return None
        argv = [*self._docker()[:1], "context", "inspect", self.host, "--format", "{{.Endpoints.docker.Host}}"]
        return self._run(argv, action="docker context inspect").strip() or None

    # -- files, through the Engine API ------------------------------------------------------------

    def _container_row(self, service: str) -> dict[str, Any]:
        for row in self.ps_rows():
            if row.get("Service") == service and row.get("ID"):
                return row
        raise StackError(f"{service} has no container", hint="run `stack up` first")

    def _container_id(self, service: str) -> str:
        return str(self._container_row(service)["ID"])

    @cached_property
    def engine(self) -> Any:
        """A docker SDK client (`.api`: its APIClient) for the same engine the CLI talks to; over the same
        `ssh` the CLI uses for ssh:// engines."""
        import docker

        base_url = self.host
        if not base_url or "://" not in base_url:
            if not base_url and os.environ.get("DOCKER_HOST"):
                base_url = os.environ["DOCKER_HOST"]
            else:
                # A context (named, or the CLI's current one): ask the CLI where it points, so that the
                # SDK talks to the very engine `docker compose` does.
                argv = [*self._docker()[:1], "context", "inspect"]
                if base_url:
                    argv.append(base_url)
                found = self._run([*argv, "--format", "{{.Endpoints.docker.Host}}"], action="docker context inspect")
                base_url = found.strip() or None
        if base_url and base_url.startswith("ssh://"):
            return self._over_ssh(base_url)
        try:
            if base_url and base_url != os.environ.get("DOCKER_HOST"):
                return docker.DockerClient(base_url=base_url)
            # DOCKER_HOST and its TLS settings (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), as the CLI reads them.
            return docker.from_env()
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot reach the Docker engine: {exc}", hint=process_hint()) from None

    def _over_ssh(self, url: str) -> Any:
        """The Engine API through `ssh DESTINATION docker system dial-stdio`, as the docker CLI does it."""
        from stack.runtime.dialstdio import DialStdio, DialStdioClient, DialStdioEngine, connection_errors

        destination, port = ssh_destination(url)
        self._ssh_url = url
        command = ssh_command(destination, port, "docker", "system", "dial-stdio")
        transport = DialStdio(command)
        try:
            return DialStdioEngine(DialStdioClient(transport))
        except connection_errors() as exc:
            transport.close()
            raise ssh_unreachable(url, transport.failure() or str(exc)) from None

    def _engine_call(self, call: Callable[[Any], Any]) -> Any:
        """An Engine API call; over ssh, a broken connection becomes one line saying what ssh printed."""
        api = self.engine.api
        transport = getattr(api, "transport", None)
        if transport is None:
            return call(api)
        from stack.runtime.dialstdio import connection_errors

        try:
            return call(api)
        except connection_errors() as exc:
            raise ssh_unreachable(self._ssh_url, transport.failure() or str(exc)) from None

    # -- images, through the Engine API (per-layer progress) -------------------------------------------

    def images(self) -> list[str]:
        """The image of every enabled component."""
        return [self.settings.component(name).image for name in self.settings.enabled()]

    def missing_images(self) -> list[str]:
        """The images of the enabled components that the engine does not have yet."""
        import docker

        missing = []
        for image in self.images():
            try:
                self._engine_call(functools.partial(_inspect_image, image=image))
            except docker.errors.ImageNotFound:
                missing.append(image)
            except docker.errors.APIError as exc:
                raise DockerError(f"cannot inspect image {image}: {exc.explanation or exc}") from None
        return missing

    def pull_images(self, images: list[str], on_progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull `images` in parallel, reporting bytes per image; one clear error for a failed pull."""
        from concurrent.futures import ThreadPoolExecutor

        report = on_progress or (lambda _progress: None)
        with ThreadPoolExecutor(max_workers=max(1, len(images)), thread_name_prefix="pull") as pool:
            futures = [pool.submit(self._pull_one, image, report) for image in images]
            for future in futures:
                future.result()

    def _pull_one(self, image: str, report: Callable[[PullProgress], None]) -> None:
        import docker
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(image)
        layers: dict[str, tuple[int, int]] = {}
        report(PullProgress(image, "waiting", 0, 0))
        try:
            for event in self._engine_call(lambda api: api.pull(repository, tag=tag, stream=True, decode=True)):
                if "error" in event:
                    raise self._pull_error(image, str(event.get("error")))
                detail = event.get("progressDetail") or {}
                layer = event.get("id")
                status = str(event.get("status", ""))
                if layer and detail.get("total") and status.startswith("Downloading"):
                    layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
                elif layer and status in ("Download complete", "Pull complete", "Already exists") and layer in layers:
                    layers[layer] = (layers[layer][1], layers[layer][1])
                done = sum(current for current, _ in layers.values())
                total = sum(size for _, size in layers.values())
                report(PullProgress(image, status.split(" for ")[0][:40], done, total))
        except docker.errors.APIError as exc:
            raise self._pull_error(image, str(exc.explanation or exc)) from None
        report(PullProgress(image, "pulled", 1, 1, finished=True))

    def _pull_error(self, image: str, reason: str) -> StackError:
        owner = _image_owner(self.settings, image)
        hint = (
            f"check {owner} in stack.yaml and that the registry is reachable"
            if owner
            else "check the image names in stack.yaml and that the registry is reachable"
        )
        return DockerError(f"cannot pull {image}: {_clean(reason)}", hint=hint)

    def copy_out(self, service: str, path: str) -> IO[bytes]:
        import docker

        container_id = self._container_id(service)
        try:
            chunks, _stat = self._engine_call(lambda api: api.get_archive(container_id, path))
        except docker.errors.NotFound:
            raise StackError(f"{service}: {path} does not exist in its container") from None
        except docker.errors.APIError as exc:
            raise StackError(f"{service}: cannot copy {path} out: {exc.explanation or exc}") from None
        return io.BufferedReader(_ChunkStream(chunks), buffer_size=1024 * 1024)

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        import docker

        container_id = self._container_id(service)
        try:
            ok = self._engine_call(lambda api: api.put_archive(container_id, path, archive))
        except docker.errors.NotFound:
            raise StackError(f"{service}: {path} does not exist in its container") from None
        except docker.errors.APIError as exc:
            raise StackError(f"{service}: cannot copy into {path}: {exc.explanation or exc}") from None
        if not ok:
            raise StackError(f"{service}: the engine refused the archive for {path}")

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
        if row.get("State") not in _STOPPED_STATES:
            state = row.get("State") or "in an unknown state"
            raise StackError(f"{service} is {state}: its state cannot be replaced", hint=f"stack stop {service}")
        inspected = json.loads(
            self._run([*self._docker(), "container", "inspect", str(row["ID"])], action="docker inspect") or "[]"
        )
        mounts = [mount for item in inspected for mount in item.get("Mounts") or []]
        volume = next(
            (m.get("Name") for m in mounts if m.get("Destination") == path and m.get("Type") == "volume"), None
        )
        if not volume:
            raise StackError(
                f"{service}: {path} is not a named volume of its container: its state cannot be replaced",
                hint="restore into a stack started by `stack up`",
            )
        self._run(self._compose("rm", "--force", service), action="docker compose rm")
        try:
            self._run([*self._docker(), "volume", "rm", str(volume)], action="docker volume rm")
        except StackError:
            # The volume, and the previous state in it, are still there: give the service its container back.
            self._run(self._compose("create", "--no-recreate", service), action="docker compose create")
            raise
        try:
            self._run(self._compose("create", "--no-recreate", service), action="docker compose create")
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
        return shlex.join(str(part) for part in self._compose(*args))


def _inspect_image(api: Any, *, image: str) -> Any:
    return api.inspect_image(image)


class _ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (the Engine API's tar stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size
