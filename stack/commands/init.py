from __future__ import annotations

import click

from stack.commands import paths_from
from stack.project import init_settings


@click.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing settings file.")
@click.pass_context
def command(ctx: click.Context, *, force: bool) -> None:
    """Write a commented starter stack.yaml (every key shown with its default)."""
    target = init_settings(paths_from(ctx), force=force)
    click.echo(f"Wrote {target}. Edit it, then run `stack up` (or `stack render` to look first).")
