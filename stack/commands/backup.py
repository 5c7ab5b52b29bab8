"""`stack backup [--output PATH] [--keep N] [--only COMPONENTS]` and `stack backup verify PATH`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from stack.backup.create import create_backup
from stack.backup.selection import parse_only
from stack.backup.verify import component_sizes, verify_backup
from stack.commands.backup_view import ProgressEvents, human, table
from stack.commands.options import open_runtime, runtime_options


@click.group("backup", invoke_without_command=True)
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Archive file, or a directory for a generated name [default: backups/ beside stack.yaml].",
)
@click.option("--keep", type=click.IntRange(min=1), metavar="N", help="Afterwards, keep only the N newest archives.")
@click.option("--only", metavar="COMPONENTS", help="Comma-separated, e.g. prometheus,grafana [default: all].")
@click.option(
    "--include-secrets", is_flag=True, help="Also store the generated secrets (the archive is 0600 either way)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts and cron).")
@runtime_options
@click.pass_context
def command(
    ctx: click.Context,
    output: str | None,
    keep: int | None,
    only: str | None,
    include_secrets: bool,
    as_json: bool,
    runtime_name: str | None,
    host: str | None,
) -> None:
    """Back up every component's state into one verified archive.

    Prometheus: a TSDB snapshot; Grafana: an API export plus its database; Loki and Tempo: their
    data after a flush; Alertmanager: its silences. Use `stack backup verify PATH` to check one.
    """
    if ctx.invoked_subcommand:
        return
    names = parse_only(only, allow_secrets=True)
    opened = open_runtime(ctx, runtime_name, host)
    console = Console(stderr=True)
    with ProgressEvents(console) as events:
        result = create_backup(
            opened.runtime,
            opened.settings,
            opened.paths,
            output=output,
            keep=keep,
            only=names,
            include_secrets=include_secrets,
            events=events,
        )
    if as_json:
        payload = {
            "path": str(result.path.resolve()),
            "archive_size": result.archive_size,
            "data_size": result.data_size,
            "seconds": round(result.seconds, 3),
            "includes_secrets": result.includes_secrets,
            "components": [
                {
                    "component": c.component,
                    "sections": c.sections,
                    "files": c.files,
                    "size": c.size,
                    "seconds": round(c.seconds, 3),
                }
                for c in result.components
            ],
            "pruned": [str(path.resolve()) for path in result.pruned],
            "notes": result.notes,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    view = table("", ["component", "holds", "files", "size", "time"])
    for report in result.components:
        holds = ", ".join(report.sections) or "-"
        view.add_row(
            escape(report.component), escape(holds), str(report.files), human(report.size), f"{report.seconds:.1f} s"
        )
    Console().print(view)
    rate = result.data_size / result.seconds if result.seconds else 0
    click.echo(
        f"Wrote {result.path} ({human(result.archive_size)} from {human(result.data_size)} of data) "
        f"in {result.seconds:.1f} s, {human(rate)}/s."
    )
    if result.includes_secrets:
        click.echo("It holds the generated secrets: keep it as safe as they are.")
    for path in result.pruned:
        click.echo(f"Pruned {path}")
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)


@command.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(path: Path, as_json: bool) -> None:
    """Check an archive's structure, manifest and every checksum; exit 1 if anything is off."""
    with ProgressEvents(Console(stderr=True)) as events:
        events.component_started("archive")
        events.phase("archive", "verifying")
        report = verify_backup(path, on_bytes=events.transferred)
        events.component_done("archive", report.manifest.total_size, report.seconds)
    manifest = report.manifest
    sizes = component_sizes(report)
    if as_json:
        payload = {
            "path": str(path),
            "ok": True,
            "format_version": manifest.version,
            "tool_version": manifest.tool_version,
            "created_at": manifest.created_at,
            "project": manifest.project,
            "includes_secrets": manifest.includes_secrets,
            "archive_size": report.compressed_size,
            "data_size": manifest.total_size,
            "members": len(manifest.members),
            "components": {
                name: {
                    "image": entry.image,
                    "running_image": entry.running_image,
                    "sections": entry.sections,
                    "files": sizes.get(name, (0, 0))[0],
                    "size": sizes.get(name, (0, 0))[1],
                }
                for name, entry in manifest.components.items()
            },
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        f"{path}: OK, format {manifest.version}, made {manifest.created_at} by stack {manifest.tool_version} "
        f"for project {manifest.project!r}"
    )
    view = table("", ["component", "running image", "holds", "files", "size"])
    for name, entry in manifest.components.items():
        files, size = sizes.get(name, (0, 0))
        # What ran when the backup was made (the pinned image is what the settings asked for then).
        image = entry.running_image or entry.image or "-"
        # The archive is anyone's input: its strings are shown, never read as markup.
        view.add_row(escape(name), escape(image), escape(", ".join(entry.sections) or "-"), str(files), human(size))
    if manifest.includes_secrets:
        files, size = sizes.get("secrets", (0, 0))
        view.add_row("secrets", "-", "files", str(files), human(size))
    Console().print(view)
    click.echo(
        f"{len(manifest.members)} members, {human(manifest.total_size)} of data in {human(report.compressed_size)}, "
        f"every checksum matches."
    )
