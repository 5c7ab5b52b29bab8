"""Generated secrets: created once, random, kept 0600 in a 0700 directory beside the settings."""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError
from stack.fileio import UnreadableFile, atomic_write, read_bounded
from stack.paths import Paths
from stack.settings import Settings

GRAFANA_ADMIN_PASSWORD = "grafana-admin-password"
# A PEM certificate chain and key are a few KiB.
PEM_MAX_BYTES = 1024 * 1024

# The compose file names only this variable; its value is handed to `docker compose` by the runtime,
# so the password itself never lands in compose.yaml.
GRAFANA_PASSWORD_ENV = "STACK_GRAFANA_ADMIN_PASSWORD"


@dataclass(frozen=True)
class SecretStore:
    directory: Path

    @classmethod
    def for_paths(cls, paths: Paths) -> SecretStore:
        return cls(paths.secrets_dir)

    def path(self, name: str) -> Path:
        return self.directory / name

    def get(self, name: str) -> str | None:
        """The secret's value, or None when it was never generated."""
        path = self.path(name)
        if not path.exists():
            return None
        self._check_mode(path)
        return path.read_text(encoding="utf-8").strip()

    def ensure(self, name: str, *, length: int = 32) -> str:
        """The secret's value, generating and storing it the first time."""
        existing = self.get(name)
        if existing:
            return existing
        value = _random.token_urlsafe(length)
        self.put(name, value)
        return value

    def put(self, name: str, value: str) -> None:
        """Store a secret (0600) in the secrets directory (0700)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            atomic_write(self.path(name), value + "\n", mode=0o600)
        except OSError as exc:
            raise StackError(
                f"{self.directory}: cannot store secret {name!r}: {exc.strerror}",
                hint="make the directory beside stack.yaml writable",
            ) from None

    @staticmethod
    def _check_mode(path: Path) -> None:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise StackError(
                f"{path}: secret file is readable by others (mode {mode:o})",
                hint=f"run: chmod 600 {path}",
            )


def tls_file_paths(settings: Settings, paths: Paths) -> tuple[Path, Path]:
    """The certificate and key files of `server.tls` (mode files), resolved beside stack.yaml."""
    tls = settings.server.tls
    found = []
    for key in ("cert_file", "key_file"):
        value = getattr(tls, key)
        if value is None:
            raise StackError(f"server.tls.{key} is not set", hint="give the path of the PEM file in stack.yaml")
        path = Path(value).expanduser()
        found.append(path if path.is_absolute() else paths.base_dir / path)
    return found[0], found[1]


def _read_pem(path: Path, key: str, marker: str) -> str:
    try:
        # A PEM certificate chain is a few KiB: /dev/zero or a FIFO named here must not hang us.
        text = read_bounded(path, PEM_MAX_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError, UnreadableFile) as exc:
        reason = (
            exc.strerror
            if isinstance(exc, OSError)
            else "not a text file"
            if isinstance(exc, UnicodeDecodeError)
            else str(exc)
        )
        raise StackError(
            f"{path}: server.tls.{key} cannot be read: {reason}", hint="fix the path in stack.yaml"
        ) from None
    if marker not in text:
        raise StackError(f"{path}: server.tls.{key} is not a PEM file ({marker!r} not found)", hint="use PEM format")
    return text


def compose_environment(settings: Settings, paths: Paths, *, generate: bool = True) -> dict[str, str]:
    """The variables `docker compose` reads the project's secrets from (compose.yaml names only them).

    The Grafana password is generated the first time (left out if not stored yet, with
    `generate=False`); the TLS files of `server.tls.mode: files` are read from the machine running
    `stack`, so they reach a remote engine without a copy on its disk.
    """
    from stack.components.proxy import TLS_CERT_ENV, TLS_KEY_ENV  # components import settings, not us

    env: dict[str, str] = {}
    if settings.component("grafana").enabled:
        store = SecretStore.for_paths(paths)
        password = store.ensure(GRAFANA_ADMIN_PASSWORD) if generate else store.get(GRAFANA_ADMIN_PASSWORD)
        if password:
            env[GRAFANA_PASSWORD_ENV] = password
    if settings.component("proxy").enabled and settings.server.tls.mode == "files":
        cert, key = tls_file_paths(settings, paths)
        env[TLS_CERT_ENV] = _read_pem(cert, "cert_file", "BEGIN CERTIFICATE")
        env[TLS_KEY_ENV] = _read_pem(key, "key_file", "PRIVATE KEY")
    return env
