"""One module per CLI command; each defines `command`, a click command that only adapts."""

from __future__ import annotations

import click

from stack.paths import Paths


def paths_from(ctx: click.Context, **overrides: str | None) -> Paths:
    """The Paths for the global `-c/--config` option (and a command's own `--out`)."""
    return Paths.discover((ctx.find_root().obj or {}).get("config"), **overrides)
