"""The `ssh` client: remote commands (facts) and local port forwards (the deploy tunnel).

OpenSSH reads the user's ~/.ssh/config, agent and known_hosts, as `docker --host ssh://` does;
`STACK_SSH_OPTIONS` adds options to the ssh run here (Docker's own ssh reads ~/.ssh/config only).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from stack.errors import StackError
from stack.hosttarget import Target
from stack.polling import poll_until
from stack.ssh_errors import handshake_failure
from stack.tools import ToolResult, run, which

SSH_OPTIONS_ENV = "STACK_SSH_OPTIONS"
# Never prompt (a deploy may run from make or CI); fail fast on a dead host; notice a dead link.
BASE_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15")


def ssh_binary() -> str:
    found = which("ssh")
    if not found:
        raise StackError("the ssh command is not installed", hint="install OpenSSH's client (openssh-client)")
    return found


def user_options() -> list[str]:
    return shlex.split(os.environ.get(SSH_OPTIONS_ENV, ""))


def ssh_argv(target: Target, *extra: str, options: Sequence[str] | None = None) -> list[str]:
    """`ssh [options] [-p port] user@host [extra...]`.

    The given (or STACK_SSH_OPTIONS) options come first: ssh keeps the first value of an option, so
    they win over the defaults (a longer ConnectTimeout for a slow link, say).
    """
    argv = [ssh_binary(), *(user_options() if options is None else options), *BASE_OPTIONS]
    if target.port:
        argv += ["-p", str(target.port)]
    return [*argv, target.destination, *extra]


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Warning: Permanently")]
    return lines[-1] if lines else ""


def ssh_failure(stderr: str, destination: str, *, what: str = "ssh") -> StackError:
    """One clear line for what a failed ssh printed: the handshake failures named, with a hint."""
    failure = handshake_failure(stderr)
    if failure:
        message = f"{what} {destination}: {failure.meaning} ({failure.printed})"
        return StackError(message, hint=failure.hint.format(destination=destination))
    return StackError(
        f"{what} {destination}: {first_line(stderr) or 'connection failed'}",
        hint="check that `ssh " + destination + "` works without a password prompt (key or agent)",
    )


def run_remote(target: Target, script: str, *, timeout: float = 30, options: Sequence[str] | None = None) -> ToolResult:
    """Run `script` with /bin/sh on the server; raise StackError when ssh itself fails (exit 255)."""
    result = run(ssh_argv(target, "sh", "-c", shlex.quote(script), options=options), timeout=timeout)
    if result.returncode == 255:
        raise ssh_failure(result.stderr, target.destination)
    return result


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tunnel:
    """Local ports on 127.0.0.1 forwarded to ports on the server's loopback (or bind) address."""

    target: Target
    remote_address: str
    # remote port -> local port
    ports: dict[int, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def local_port(self, remote_port: int) -> int | None:
        return self.ports.get(remote_port)

    def url(self, remote_port: int) -> str | None:
        local = self.local_port(remote_port)
        return f"http://127.0.0.1:{local}" if local else None


@contextlib.contextmanager
def open_tunnel(
    target: Target,
    remote_ports: Sequence[int],
    *,
    remote_address: str = "127.0.0.1",
    timeout: float = 20,
    options: Sequence[str] | None = None,
) -> Iterator[Tunnel]:
    """Forward each remote port to a free local port through one `ssh -N` process.

    Nothing is published on the server: the forwards end at its loopback address, inside SSH.
    """
    tunnel = Tunnel(target, remote_address)
    forwards: list[str] = []
    for remote in dict.fromkeys(remote_ports):
        local = _free_local_port()
        tunnel.ports[remote] = local
        forwards += ["-L", f"127.0.0.1:{local}:{remote_address}:{remote}"]
    if not forwards:
        yield tunnel
        return
    argv = ssh_argv(target, options=options)
    argv[-1:-1] = ["-N", "-o", "ExitOnForwardFailure=yes", *forwards]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
        tunnel.process = process

        def _ready_or_gone() -> bool:
            return process.poll() is not None or all(_port_open(port) for port in tunnel.ports.values())

        try:
            if not poll_until(_ready_or_gone, timeout, interval=0.1):
                raise StackError(
                    f"ssh tunnel to {target.destination}: local ports not open after {timeout:g} s",
                    hint="check the connection (`ssh " + target.destination + "`)",
                )
            if process.poll() is not None:
                errors.seek(0)
                printed = errors.read().decode("utf-8", errors="replace")
                if not first_line(printed):
                    printed = f"ssh exited with {process.returncode}"
                raise ssh_failure(printed, target.destination, what="ssh tunnel to")
            yield tunnel
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
