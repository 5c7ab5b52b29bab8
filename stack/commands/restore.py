"""`stack restore PATH [--only COMPONENTS] [--yes]`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from stack.backup.restore import RestoreCancelled, RestorePlan, restore_backup
from stack.backup.selection import parse_only
from stack.commands import display
from stack.commands.backup_view import ProgressEvents, human
from stack.commands.options import open_runtime, runtime_options


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--only", metavar="COMPONENTS", help="Comma-separated, e.g. prometheus,grafana [default: all].")
@click.option("-y", "--yes", is_flag=True, help="Replace data without asking.")
@runtime_options
@click.pass_context
def command(
    ctx: click.Context, path: Path, only: str | None, yes: bool, runtime_name: str | None, host: str | None
) -> None:
    """Restore a backup archive, verified first.

    Prometheus, Loki and Tempo are stopped, get their state back and are started again; Grafana
    (alone: through its API, without stopping it) and Alertmanager's silences are restored through
    their APIs. Nothing is changed before the whole archive has passed every check.
    """
    names = parse_only(only, allow_secrets=True)
    opened = open_runtime(ctx, runtime_name, host)
    console = Console(stderr=True)

    def confirm(plan: RestorePlan) -> bool:
        events.progress.stop()
        manifest = plan.manifest
        click.echo(
            f"{path}: verified ({len(manifest.members)} members, {human(manifest.total_size)}), "
            f"made {manifest.created_at} by stack {manifest.tool_version}.",
            err=True,
        )
        for warning in plan.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if plan.offline:
            click.echo(
                f"Will stop, replace the state of, and restart: {', '.join(plan.offline)} "
                f"(what they recorded since {manifest.created_at} is lost)",
                err=True,
            )
        # What "restore" means for each API-restored component, in the same words as docs/backup.md.
        online_effects = {
            "alertmanager": f"alertmanager's silences are put back as they were (those made since {manifest.created_at}"
            " are expired)",
            "grafana": "grafana's objects in the archive overwrite those with the same uid (others are kept)",
        }
        for name in plan.online:
            click.echo(f"Will restore through its API: {online_effects.get(name, name)}", err=True)
        if plan.secrets:
            click.echo(f"Will replace the generated secrets in {opened.paths.secrets_dir}", err=True)
        agreed = yes or click.confirm("Replace this data?", default=False, err=True)
        events.progress.start()
        return agreed

    try:
        with ProgressEvents(console) as events:
            result = restore_backup(
                opened.runtime,
                opened.settings,
                opened.paths,
                path,
                only=names,
                confirm=confirm,
                events=events,
                provisioner=display.provisioner(),
            )
    except RestoreCancelled as exc:
        click.echo(exc.message, err=True)
        ctx.exit(1)
    parts = result.plan.components + (["secrets"] if result.plan.secrets else [])
    click.echo(f"Restored {', '.join(parts)} from {path} in {result.seconds:.1f} s.")
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
