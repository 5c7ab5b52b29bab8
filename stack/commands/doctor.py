"""`stack doctor`: findings with severity and fix; exit 1 when any is high."""

from __future__ import annotations

import json

import click

from stack.commands import paths_from
from stack.commands.options import runtime_options
from stack.doctor import DEFAULT_BACKUP_DAYS, Report, diagnose
from stack.errors import EXIT_FAILURE, StackError
from stack.runtime.base import Runtime
from stack.runtime.select import get_runtime
from stack.settings import Settings


def format_report(report: Report) -> str:
    lines = [f"stack doctor: {report.target}"]
    for finding in report.sorted():
        where = f" [{finding.component}]" if finding.component else ""
        lines.append(f"{finding.severity.upper():<7} {finding.id}{where}: {finding.title}")
        if finding.detail:
            lines.append(f"        why: {finding.detail}")
        lines.append(f"        fix: {finding.fix}")
    if not report.findings:
        lines.append("No findings.")
    lines.append(f"Checked: {', '.join(report.checked)}.")
    for name, reason in report.skipped.items():
        lines.append(f"Skipped {name}: {reason}")
    counts = report.counts()
    lines.append(f"{counts['high']} high, {counts['medium']} medium, {counts['low']} low.")
    return "\n".join(lines)


@click.command("doctor")
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--settings-only", is_flag=True, help="Check stack.yaml and its files only, not the running stack.")
@click.option(
    "--backup-days",
    type=click.IntRange(min=1),
    default=DEFAULT_BACKUP_DAYS,
    show_default=True,
    help="Report when the newest backup is older than this.",
)
@click.option("--skip", "skip", multiple=True, metavar="ID", help="Ignore findings with this id (repeatable).")
@click.pass_context
def command(
    ctx: click.Context,
    runtime_name: str | None,
    host: str | None,
    *,
    as_json: bool,
    settings_only: bool,
    backup_days: int,
    skip: tuple[str, ...],
) -> None:
    """Find security and health problems in stack.yaml and the running stack (local or --host)."""
    paths = paths_from(ctx)

    made: list[Runtime] = []

    def factory(settings: Settings) -> Runtime:
        made.append(get_runtime(settings, paths, name=runtime_name, host=host))
        return made[-1]

    outside = None
    if host and not settings_only:
        from stack.hosttarget import parse_target

        try:
            target = parse_target(host)
        except StackError:
            target = None
        # Only an SSH target names the server's address; a context may point anywhere.
        if target is not None and target.kind == "ssh" and target.host:
            from stack.sshcli import config_hostname

            # An alias of ~/.ssh/config is probed at its HostName, the address ssh itself connects to.
            outside = config_hostname(target.host.strip("[]"))
    report = diagnose(
        paths,
        runtime_factory=None if settings_only else factory,
        backup_days=backup_days,
        skip=skip,
        outside_host=outside,
    )
    if made and made[-1].name == "swarm":
        from stack.doctor.swarm import swarm_findings
        from stack.runtime.swarm.runtime import SwarmRuntime

        runtime = made[-1]
        assert isinstance(runtime, SwarmRuntime)
        report.findings.extend(f for f in swarm_findings(runtime.settings, runtime) if f.id not in skip)
        report.checked.append("swarm")
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else format_report(report))
    if report.high:
        ctx.exit(EXIT_FAILURE)
