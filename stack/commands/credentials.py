from __future__ import annotations

import json

import click

from stack.commands import paths_from
from stack.project import credentials


@click.command("credentials")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def command(ctx: click.Context, *, as_json: bool) -> None:
    """Show Grafana's URL and admin credentials (the password is generated once, kept 0600)."""
    creds = credentials(paths_from(ctx))
    if as_json:
        click.echo(
            json.dumps(
                {"url": creds.url, "user": creds.user, "password": creds.password, "file": str(creds.stored_at)},
                indent=2,
            )
        )
        return
    click.echo(f"Grafana:  {creds.url or '(not published)'}")
    click.echo(f"User:     {creds.user}")
    click.echo(f"Password: {creds.password}")
    click.echo(f"Stored in {creds.stored_at} (mode 0600).")
