"""`stack logs [SERVICE] [-f] [--since 10m]`."""

from __future__ import annotations

import click

from stack.commands.options import open_runtime, runtime_options
from stack.units import parse_since


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # Checked here, before any runtime is asked: a usage error is exit 2 whatever the runtime.
    if value is not None:
        try:
            parse_since(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@click.command("logs")
@click.argument("service", required=False)
@runtime_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option(
    "--since", metavar="WHEN", callback=_since, help="Only lines since a duration ago (10m, 2h) or a timestamp."
)
@click.option("-n", "--tail", type=click.IntRange(min=0), help="Only the last N lines (of each component).")
@click.pass_context
def command(
    ctx: click.Context,
    service: str | None,
    runtime_name: str | None,
    host: str | None,
    *,
    follow: bool,
    since: str | None,
    tail: int | None,
) -> None:
    """Show the logs of one component (SERVICE, e.g. grafana) or of all of them."""
    from stack import lifecycle

    opened = open_runtime(ctx, runtime_name, host)
    for line in lifecycle.logs(opened.settings, opened.runtime, service, follow=follow, since=since, tail=tail):
        click.echo(line)
