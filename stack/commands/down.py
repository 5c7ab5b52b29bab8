"""`stack down`: stop the stack, keeping its data unless --volumes (after a confirmation)."""

from __future__ import annotations

import click

from stack.commands.options import open_runtime, runtime_options
from stack.runtime.abilities import StopTimeout


@click.command("down")
@runtime_options
@click.option("--volumes", is_flag=True, help="Also DELETE every component's data (asks first).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting data.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Seconds to let each stop before it is killed [default: 30; process runtime: process.stop_timeout].",
)
@click.pass_context
def command(
    ctx: click.Context, runtime_name: str | None, host: str | None, *, volumes: bool, yes: bool, timeout: float | None
) -> None:
    """Stop and remove the components. Data is kept; --volumes deletes it."""
    from stack import lifecycle

    opened = open_runtime(ctx, runtime_name, host)
    if volumes and not yes:
        click.confirm(
            f"Delete ALL data of project {opened.settings.project!r} (metrics, logs, traces, dashboards)?",
            abort=True,
            err=True,
        )
    if timeout is None:
        timeout = float(opened.runtime.stop_timeout) if isinstance(opened.runtime, StopTimeout) else 30.0
    result = lifecycle.down(opened.runtime, volumes=volumes, timeout=timeout)
    if result.volumes_deleted:
        click.echo(f"Stopped {opened.settings.project}; its data was deleted.")
    else:
        click.echo(f"Stopped {opened.settings.project}; its data is kept (`stack up` brings it back).")
