"""Generated secrets: created once, random, kept 0600 in a 0700 directory beside the settings."""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError
from stack.fileio import atomic_write
from stack.paths import Paths

GRAFANA_ADMIN_PASSWORD = "grafana-admin-password"

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
