"""One module per CLI command; each defines `command`, a click command that only adapts."""

from __future__ import annotations

import click

from stack.paths import Paths

# Commands for which a missing settings file is what the user asked for, not a typo.
_CREATES_SETTINGS = {"init"}


def paths_from(ctx: click.Context, **overrides: str | None) -> Paths:
    """The Paths for the global `-c/--config` option (and a command's own `--out`).

    A settings file named with `-c`/STACK_CONFIG that does not exist is not an error (the defaults
    apply), but it is most often a typo, so it is said once on stderr.
    """
    root = ctx.find_root()
    paths = Paths.discover((root.obj or {}).get("config"), **overrides)
    missing = paths.explicit and not paths.settings_file.exists() and not paths.settings_file.is_symlink()
    if missing and ctx.command.name not in _CREATES_SETTINGS and not root.meta.get("stack.noted_missing"):
        root.meta["stack.noted_missing"] = True
        click.echo(f"Note: {paths.settings_file} does not exist; using the built-in defaults.", err=True)
    return paths
