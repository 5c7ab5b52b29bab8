"""Docker's failures as one clear `StackError`: what the CLI printed on stderr (through python-on-whales)
and what the Engine API answered (docker SDK) go through the same reading, so that an engine that is
down, a port in use or a failed pull reads the same whichever path met it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from stack.components import REGISTRY
from stack.errors import RuntimeUnavailable, StackError
from stack.imageref import ImageRef
from stack.invocation import no_docker_command
from stack.settings import Settings
from stack.ssh_errors import handshake_failure
from stack.sshcli import first_line
from stack.versions import MIN_COMPOSE


def process_hint() -> str:
    return f"start Docker, or run without it: {no_docker_command()}"


class DockerError(StackError):
    """A docker / docker compose command failed; carries the command and its stderr."""

    def __init__(self, message: str, *, hint: str | None = None, command: list[str] | None = None, stderr: str = ""):
        super().__init__(message, hint=hint)
        self.command = command or []
        self.stderr = stderr


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


def first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return lines[-1] if lines else "no error output"


def _known_failure(text: str, settings: Settings | None, command: list[str] | None) -> StackError | None:
    """The failures docker reports the same way on the CLI and the Engine API, each as one clear line."""
    failure = handshake_failure(text)
    if failure:
        # docker's own ssh (DOCKER_HOST=ssh://...) reached the server, but no SSH session followed.
        where = _engine_host(command)
        return RuntimeUnavailable(
            f"no Docker engine answers at {where or 'the ssh:// host'}: {failure.meaning} ({failure.printed})",
            hint=failure.hint.format(destination=where if where and "://" in where else "user@server"),
        )
    match = _SSH_HELPER_FAILED.search(text)
    if match:
        return ssh_unreachable(_engine_host(command) or "the ssh:// host", match.group("printed"))
    match = _ENGINE_DOWN.search(text)
    if match:
        if match.group("perm"):
            return RuntimeUnavailable(
                f"no permission to use the Docker engine: {match.group('perm')}",
                hint="add your user to the docker group (then log in again), or " + process_hint(),
            )
        where = match.group("where") or match.group("where2") or match.group("ssh")
        return RuntimeUnavailable(f"no Docker engine answers at {where}", hint=process_hint())
    if _COMPOSE_MISSING.search(text):
        return RuntimeUnavailable(
            "the docker compose plugin is not installed",
            hint=f"install docker-compose-plugin (Compose v2 >= {MIN_COMPOSE}), or run: {no_docker_command()}",
        )
    match = _PORT_IN_USE.search(text)
    if match:
        port = int(match.group("port") or match.group("port2"))
        addr = match.group("addr") or match.group("addr2")
        owner = _port_owner(settings, port) if settings else None
        hint = f"stop what uses it, or set {owner} to a free port in stack.yaml" if owner else "stop what uses it"
        return DockerError(f"port {port} on {addr} is already in use", hint=hint, command=command, stderr=text)
    match = _PULL_FAILED.search(text)
    if match and ("pull" in text.lower() or "manifest" in text.lower() or "resolve" in text.lower()):
        image = match.group("image") or match.group("image2") or match.group("image3")
        subject = f"cannot pull {image}" if image else "cannot pull an image"
        error = pull_error(settings, image, _clean(match.group("what")))
        return DockerError(f"{subject}: {_clean(match.group('what'))}", hint=error.hint, command=command, stderr=text)
    return None


def explain(stderr: str, settings: Settings, *, command: list[str] | None = None, action: str = "docker") -> StackError:
    """One clear StackError for what docker printed on stderr (engine down, port in use, pull failure...)."""
    known = _known_failure(stderr, settings, command)
    if known:
        return known
    return DockerError(f"{action} failed: {first_error_line(stderr)}", command=command, stderr=stderr)


def whales_error(exc: Exception, settings: Settings, action: str) -> StackError:
    """A python-on-whales DockerException (a docker command that failed), read like any docker stderr."""
    stderr = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or ""
    command = [str(part) for part in getattr(exc, "docker_command", None) or []]
    return explain(stderr, settings, command=command or None, action=action)


def api_error(
    exc: Exception, what: str, settings: Settings | None = None, *, error: type[StackError] = DockerError
) -> StackError:
    """An Engine API error (docker SDK), as `what: reason`, unless it is one docker reports the same
    way on the CLI (a port in use, a failed pull...)."""
    reason = str(getattr(exc, "explanation", None) or exc)
    return _known_failure(reason, settings, None) or error(f"{what}: {reason}")


def pull_error(settings: Settings | None, image: str | None, reason: str) -> DockerError:
    """A pull of `image` failed: the hint names the setting that chose it."""
    owner = _image_owner(settings, image) if settings and image else None
    hint = (
        f"check {owner} in stack.yaml and that the registry is reachable"
        if owner
        else "check the image names in stack.yaml and that the registry is reachable"
    )
    return DockerError(f"cannot pull {image}: {_clean(reason)}", hint=hint)


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
