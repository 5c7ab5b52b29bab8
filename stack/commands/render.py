from __future__ import annotations

import click

from stack.commands import paths_from
from stack.project import render_to_disk


@click.command("render")
@click.option(
    "--out", "out", type=click.Path(file_okay=False), help="Output directory [default: .stack/ beside stack.yaml]."
)
@click.pass_context
def command(ctx: click.Context, out: str | None) -> None:
    """Render the self-contained compose project from stack.yaml."""
    result = render_to_disk(paths_from(ctx, render_dir=out))
    click.echo(f"Rendered {result.compose_file} ({len(result.services)} services: {', '.join(result.services)}).")
