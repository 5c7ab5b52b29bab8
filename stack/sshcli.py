"""The local `ssh` command: its argv for a destination, and one clear error for what it printed.

Shared by the deploy (facts, tunnel) and the Docker runtime's Engine API transport, so that every
connection to a server is made by the same OpenSSH client, which reads the user's ~/.ssh/config
(HostName, Port, User, IdentityFile, ProxyJump, ControlMaster), agent and known_hosts, as
`docker --host ssh://` does. `STACK_SSH_OPTIONS` adds options to the ssh run by `stack`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

from stack.errors import StackError
from stack.ssh_errors import handshake_failure
from stack.tools import run, which

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


def ssh_command(destination: str, port: int | None, *extra: str, options: Sequence[str] | None = None) -> list[str]:
    """`ssh [options] [-p port] destination [extra...]`.

    The given (or STACK_SSH_OPTIONS) options come first: ssh keeps the first value of an option, so
    they win over the defaults (a longer ConnectTimeout for a slow link, say). No port means the one
    ~/.ssh/config gives the destination, or 22.
    """
    argv = [ssh_binary(), *(user_options() if options is None else options), *BASE_OPTIONS]
    if port:
        argv += ["-p", str(port)]
    return [*argv, destination, *extra]


def first_line(text: str) -> str:
    """The last meaningful line ssh printed (its error), without the known-hosts chatter."""
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


def config_hostname(host: str, *, timeout: float = 10) -> str:
    """The address ssh connects to for `host`: an alias's HostName, as `ssh -G` resolves the user's
    config (Match blocks and all); `host` itself when ssh cannot say."""
    try:
        done = run([ssh_binary(), "-G", host], timeout=timeout)
    except StackError:
        return host
    if not done.ok:
        return host
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "hostname" and value.strip():
            return value.strip()
    return host
