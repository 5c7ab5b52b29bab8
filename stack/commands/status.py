"""`stack status`: each component's state, readiness, version, URL and uptime; exit 1 unless all ready."""

from __future__ import annotations

import json
import sys

import click

from stack.commands.options import open_runtime, runtime_options
from stack.runtime.abilities import ShowsPlacement


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@click.command("status")
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def command(ctx: click.Context, runtime_name: str | None, host: str | None, *, as_json: bool) -> None:
    """Each component's state, readiness, version, URL and uptime.

    Exit 0 when every enabled component is ready, 1 otherwise (for scripts and cron).
    """
    from stack import lifecycle

    opened = open_runtime(ctx, runtime_name, host)
    report = lifecycle.status(opened.settings, opened.runtime)
    # Swarm: each service's tasks, node by node.
    placement = opened.runtime.placement() if isinstance(opened.runtime, ShowsPlacement) else None
    if as_json:
        document = report.as_dict()
        if placement is not None:
            document["tasks"] = placement
        click.echo(json.dumps(document, indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("component", "state", "ready", "version", "uptime", "url", "detail"):
            table.add_column(column, overflow="fold" if column == "detail" else "ellipsis")
        for row in report.components:
            ready = "[green]yes[/]" if row.ready else "[red]no[/]"
            detail = "" if row.ready else row.detail
            # escape(): an IPv6 URL such as http://[fd00::2]:9093 is not a markup tag, nor is a detail.
            table.add_row(
                escape(row.name),
                escape(row.state),
                ready,
                escape(row.version or "-"),
                _uptime(row.uptime_seconds),
                escape(row.url or "-"),
                escape(detail),
            )
        Console(highlight=False).print(table)
        if placement:
            tasks = Table(box=None, pad_edge=False, title="tasks per node", title_justify="left")
            for column in ("component", "node", "state", "error"):
                tasks.add_column(column, overflow="fold")
            for name, task_rows in placement.items():
                for task in task_rows:
                    tasks.add_row(escape(name), escape(task["node"]), escape(task["state"]), escape(task["error"]))
            Console(highlight=False).print(tasks)
    if not report.ok:
        sys.exit(1)
