"""Every path the tool reads or writes, in one object that tests override."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from stack.errors import SettingsError

DEFAULT_SETTINGS_NAME = "stack.yaml"

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def settings_file_problem(path: Path) -> str | None:
    """Why `path` cannot be a settings file, or None when it is a regular file or does not exist.

    A missing file means "the defaults"; a name that is there but is no regular file (a dangling or
    looping symlink, a device, a FIFO, a directory) is a mistake: using the defaults instead would
    render a stack the user did not describe, and write `.stack/` beside a device.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return f"is a symlink to {os.readlink(path)}, which does not exist"
        return None
    except OSError as exc:
        if path.is_symlink():
            return "is a symlink that loops" if exc.errno == errno.ELOOP else f"cannot be followed: {exc.strerror}"
        return f"cannot be read: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return f"is not a regular file (it is {_KINDS.get(stat.S_IFMT(info.st_mode), 'something else')})"
    return None


@dataclass(frozen=True)
class Paths:
    """Where the settings are, and what lives beside them.

    `render_dir` holds only regenerated output (safe to delete); secrets and runtime state are kept
    outside it so that a fresh render never touches them and never contains a secret.
    """

    settings_file: Path
    render_dir: Path
    # True when the user named the file (`-c` or $STACK_CONFIG) rather than relying on ./stack.yaml.
    explicit: bool = False

    @classmethod
    def discover(cls, config: str | os.PathLike[str] | None = None, render_dir: str | None = None) -> Paths:
        """The settings file, and everything else beside it.

        The rule: `-c PATH`, else `$STACK_CONFIG`, else `./stack.yaml`. The file need not exist (the
        built-in defaults apply), but when something is there under that name it must be a regular
        file or a symlink to one; anything else is refused by `settings_source`.
        """
        given = config or os.environ.get("STACK_CONFIG") or None
        settings_file = Path(given or DEFAULT_SETTINGS_NAME)
        base = settings_file.parent
        return cls(
            settings_file=settings_file,
            render_dir=Path(render_dir) if render_dir else base / ".stack",
            explicit=given is not None,
        )

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
        """The settings file when it exists; None means the built-in defaults.

        Raises SettingsError when the name is taken by something that is not a regular file.
        """
        problem = settings_file_problem(self.settings_file)
        if problem:
            raise SettingsError(
                f"{self.settings_file}: {problem}",
                hint="point -c (or STACK_CONFIG) at a regular YAML file, or remove what is in the way",
            )
        return self.settings_file if self.settings_file.exists() else None
