"""Every path the tool reads or writes, in one object that tests override."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SETTINGS_NAME = "stack.yaml"


@dataclass(frozen=True)
class Paths:
    """Where the settings are, and what lives beside them.

    `render_dir` holds only regenerated output (safe to delete); secrets and runtime state are kept
    outside it so that a fresh render never touches them and never contains a secret.
    """

    settings_file: Path
    render_dir: Path

    @classmethod
    def discover(cls, config: str | os.PathLike[str] | None = None, render_dir: str | None = None) -> Paths:
        """`-c PATH`, else `$STACK_CONFIG`, else `./stack.yaml` (which need not exist)."""
        chosen = config or os.environ.get("STACK_CONFIG") or DEFAULT_SETTINGS_NAME
        settings_file = Path(chosen)
        base = settings_file.parent
        return cls(settings_file=settings_file, render_dir=Path(render_dir) if render_dir else base / ".stack")

    @property
    def base_dir(self) -> Path:
        return self.settings_file.parent

    @property
    def secrets_dir(self) -> Path:
        return self.base_dir / ".stack-secrets"

    @property
    def state_dir(self) -> Path:
        return self.base_dir / ".stack-state"

    @property
    def compose_file(self) -> Path:
        return self.render_dir / "compose.yaml"

    @property
    def backups_dir(self) -> Path:
        return self.base_dir / "backups"

    def settings_source(self) -> Path | None:
        """The settings file when it exists; None means the built-in defaults."""
        return self.settings_file if self.settings_file.exists() else None
