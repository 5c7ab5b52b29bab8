from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from stack.commands import paths_from
from stack.project import load
from stack.render import render_project
from stack.runtime.select import RUNTIME_NAMES
from stack.validate import Status, check_dashboards, check_versions, validate_project


@click.command("validate")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(RUNTIME_NAMES),
    help="Check against what this runtime will run [default: `runtime:` in stack.yaml].",
)
@click.pass_context
def command(ctx: click.Context, *, as_json: bool, runtime_name: str | None) -> None:
    """Check stack.yaml and the rendered project (Compose schema, promtool, amtool).

    Each check is passed, failed (with the tool's message) or skipped (with why). Exit 1 if any failed.
    """
    paths = paths_from(ctx)
    settings = load(paths)
    checks = [
        *validate_project(render_project(settings)),
        check_versions(settings, paths, runtime_name),
        check_dashboards(settings, paths.base_dir),
    ]
    failed = any(check.status is Status.FAILED for check in checks)
    if as_json:
        click.echo(json.dumps([{**asdict(c), "status": c.status.value} for c in checks], indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        colours = {Status.PASSED: "green", Status.FAILED: "red", Status.SKIPPED: "yellow"}
        for check in checks:
            table.add_row(escape(check.name), f"[{colours[check.status]}]{check.status.value}[/]", escape(check.detail))
        Console().print(table)
    if failed:
        sys.exit(1)
