"""`stack smoke`: prove that traces, logs and metrics flow end to end, as an app would see it."""

from __future__ import annotations

import json
import sys

import click

from stack.commands.options import open_runtime, runtime_options


@click.command("smoke")
@runtime_options
@click.option(
    "--timeout", default=30.0, show_default=True, type=click.FloatRange(min=1), help="Seconds to wait for each signal."
)
@click.option("--endpoint", metavar="URL", help="The Collector's OTLP/HTTP address [default: its published port].")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def command(
    ctx: click.Context,
    runtime_name: str | None,
    host: str | None,
    *,
    timeout: float,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Send a trace, a log and a metric through the Collector and find each in its backend.

    Tempo (the trace by id), Loki (the log by trace id), Prometheus (the metric and its exemplar's
    trace id) and Grafana (each datasource's health) are polled until they answer or --timeout
    passes. Disabled components are skipped. Exit 1 when any check fails.
    """
    from stack.grafana.provision import admin_auth
    from stack.smoke import Result, smoke

    opened = open_runtime(ctx, runtime_name, host)
    report = smoke(
        opened.settings,
        opened.runtime,
        timeout=timeout,
        endpoint=endpoint,
        grafana_headers=lambda: admin_auth(opened.paths, opened.settings).header(),
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        colours = {Result.PASSED: "green", Result.FAILED: "red", Result.SKIPPED: "yellow"}
        table = Table(box=None, pad_edge=False, title=f"trace {report.trace_id}", title_justify="left")
        for column in ("check", "component", "result", "latency", "detail"):
            table.add_column(column, overflow="fold" if column == "detail" else "ellipsis")
        for check in report.checks:
            latency = f"{check.seconds * 1000:.0f} ms" if check.seconds is not None else "-"
            result = f"[{colours[check.result]}]{check.result.value}[/]"
            table.add_row(check.check, check.component, result, latency, check.detail)
        Console(highlight=False).print(table)
    if not report.ok:
        sys.exit(1)
