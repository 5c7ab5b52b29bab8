"""A real OpenSSH server on 127.0.0.1 at a free port, for the deploy tunnel and facts.

Debian's openssh-server (`make test-deps`) provides /usr/sbin/sshd; the test generates a host key
and a client key, and logs in as the current user with that key only. `environment` is set in every
session (sshd's SetEnv): DOCKER_HOST there makes the server's `docker` reach the test engine.

OpenSSH reads ~/.ssh/config from the passwd entry's home, not $HOME: `ssh_config_on_path` puts an
`ssh` first on PATH that reads a test's config (`-F`), for `stack`'s own ssh and docker's alike.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.net.ports import free_port

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    key: Path
    log: Path

    @property
    def options(self) -> list[str]:
        """Client options for this server (what a user keeps in ~/.ssh/config)."""
        return [
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ]

    @property
    def host(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def sshd(tmp_path: Path, *, environment: dict[str, str] | None = None, name: str = "sshd") -> Iterator[SshServer]:
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        _missing("sshd/ssh are not installed: `make test-deps` installs openssh-server and openssh-client")
    home = tmp_path / name
    home.mkdir()
    home.chmod(0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True, capture_output=True
        )
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    (home / "authorized_keys").chmod(0o600)
    # Privilege separation needs this directory (a package install creates it only with systemd).
    with contextlib.suppress(OSError):
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = home / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPidFile {home / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nAllowTcpForwarding local\n"
        "PrintMotd no\nSubsystem sftp internal-sftp\n"
        + "".join(f"SetEnv {key}={value}\n" for key, value in (environment or {}).items())
    )
    log = home / "sshd.log"
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                _missing(f"sshd exited with {process.returncode}: {log.read_text()[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                _missing(f"sshd did not listen: {log.read_text()[-500:]}")
            time.sleep(0.05)
        yield SshServer(port, getpass.getuser(), home / "client_key", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ssh_wrapper(folder: Path, config: str) -> Path:
    """A folder with an `ssh` that runs the real one with `-F` the config written beside it (ProxyJump
    hands the same -F to the ssh it starts for the jump). Put it first on PATH."""
    real = shutil.which("ssh")
    if real is None:
        _missing("ssh is not installed: `make test-deps` installs openssh-client")
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    path = folder / "config"
    path.write_text(config)
    path.chmod(0o600)
    wrapper = folder / "bin" / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {real} -F {path} "$@"\n')
    wrapper.chmod(0o755)
    return folder / "bin"


def ssh_config_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str) -> Path:
    """Write `config` as the user's ssh config for this test (see ssh_wrapper); returns the bin folder."""
    folder = ssh_wrapper(tmp_path / "ssh-config", config)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return folder


def alias(name: str, server: SshServer, **extra: str) -> str:
    """A `Host` block for `server`: HostName, Port, User and the key only here (IdentitiesOnly)."""
    lines = [
        f"Host {name}",
        "  HostName 127.0.0.1",
        f"  Port {server.port}",
        f"  User {server.user}",
        f"  IdentityFile {server.key}",
        "  IdentitiesOnly yes",
        "  StrictHostKeyChecking no",
        "  UserKnownHostsFile /dev/null",
        "  LogLevel ERROR",
        *(f"  {key} {value}" for key, value in extra.items()),
    ]
    return "\n".join(lines) + "\n"
