"""`stack deploy --host ssh://user@server`: preflight, SSH tunnel, then the same flow as `stack up`."""

from __future__ import annotations

import sys

import click

from stack.commands import paths_from
from stack.health import DEFAULT_TIMEOUT
from stack.project import load


@click.command("deploy")
@click.option(
    "--host",
    "host",
    envvar="STACK_HOST",
    required=True,
    metavar="HOST",
    help="ssh://user@server[:port], user@server, or a docker context name [env STACK_HOST].",
)
@click.option("--force", is_flag=True, help="Deploy despite failed requirement checks (never security ones).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    envvar="STACK_UP_TIMEOUT",
    help="Seconds to wait until every component is ready.",
)
@click.option("--no-pull", is_flag=True, help="Never pull images (use what the server has).")
@click.option("--no-provision", is_flag=True, help="Skip pushing datasources, folders and dashboards to Grafana.")
@click.pass_context
def command(ctx: click.Context, host: str, *, force: bool, timeout: float, no_pull: bool, no_provision: bool) -> None:
    """Bring the stack up on a server's Docker engine over SSH.

    Checks the server first (engine, compose, CPU, memory, disk, ports, security) and changes
    nothing when a check fails. Readiness and provisioning go through an SSH tunnel to the
    server's loopback ports: only the TLS proxy (profile: server) is public.
    """
    from rich.console import Console

    from stack.commands import display as show
    from stack.deploy.flow import deploy
    from stack.deploy.preflight import Check

    paths = paths_from(ctx)
    settings = load(paths)
    console = Console(stderr=True, highlight=False)

    def on_step(message: str) -> None:
        console.print(f"[bold]•[/] {message}")

    def on_checks(checks: list[Check]) -> None:
        for check in checks:
            click.echo(f"  {check.line()}", err=True)

    # A refused preflight is a StackError: the checks are printed above it, nothing was changed.
    result = deploy(
        paths,
        settings,
        host,
        force=force,
        timeout=timeout,
        pull=not no_pull,
        on_step=on_step,
        on_checks=on_checks,
        provisioner=None if no_provision else show.provisioner(),
    )
    if not result.ok:
        for diagnosis in result.up.diagnoses:
            show.diagnosis(console, diagnosis)
        console.print(f"Nothing was torn down: look with `stack status --host {host}` and `stack logs --host {host}`.")
        sys.exit(1)
    if result.forced:
        click.echo(f"Deployed despite: {', '.join(check.name for check in result.forced)} (--force).", err=True)
    if result.up.provisioning is not None:
        click.echo(show.provisioning_line(result.up.provisioning))
    if result.public_url:
        click.echo(f"Grafana   {result.public_url}")
    if result.tunnel_command:
        click.echo(f"Tunnel    {result.tunnel_command}   (the other ports stay on the server's loopback)")
    if result.up.credentials_file is not None:
        click.echo(f"Grafana admin credentials: `stack credentials` (kept 0600 in {result.up.credentials_file}).")
    click.echo(f"Deployed to {result.target.describe()} in {result.up.seconds:.1f} s.")
