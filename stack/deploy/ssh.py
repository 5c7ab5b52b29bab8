"""The `ssh` client: remote commands (facts) and local port forwards (the deploy tunnel).

The command line and its errors come from stack.sshcli, which the Engine API transport uses too.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from stack.errors import StackError
from stack.hosttarget import Target
from stack.net.ports import LOOPBACK, free_port, port_answers
from stack.polling import poll_until
from stack.sshcli import first_line, ssh_command, ssh_failure
from stack.tools import ToolResult, run


def ssh_argv(target: Target, *extra: str, options: Sequence[str] | None = None) -> list[str]:
    """`ssh [options] [-p port] user@host [extra...]` (stack.sshcli.ssh_command for a target)."""
    return ssh_command(target.destination, target.port, *extra, options=options)


def run_remote(target: Target, script: str, *, timeout: float = 30, options: Sequence[str] | None = None) -> ToolResult:
    """Run `script` with /bin/sh on the server; raise StackError when ssh itself fails (exit 255)."""
    result = run(ssh_argv(target, "sh", "-c", shlex.quote(script), options=options), timeout=timeout)
    if result.returncode == 255:
        raise ssh_failure(result.stderr, target.destination)
    return result


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
        local = free_port()
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
            return process.poll() is not None or all(port_answers(LOOPBACK, port) for port in tunnel.ports.values())

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
