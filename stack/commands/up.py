"""`stack up`: start the stack, wait until every component is ready, provision Grafana."""

from __future__ import annotations

import json
import sys

import click

from stack.commands.options import Opened, open_runtime, runtime_options
from stack.errors import StackError
from stack.health import DEFAULT_TIMEOUT


@click.command("up")
@runtime_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    envvar="STACK_UP_TIMEOUT",
    help="Seconds to wait until every component is ready [env STACK_UP_TIMEOUT].",
)
@click.option("--no-pull", is_flag=True, help="Never pull images (use what the engine has).")
@click.option("--no-provision", is_flag=True, help="Skip pushing datasources, folders and dashboards to Grafana.")
@click.option(
    "--skip-missing",
    is_flag=True,
    help="Process runtime: start the components whose binaries are here, skip the others (one line each).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout (progress stays on stderr).")
@click.pass_context
def command(
    ctx: click.Context,
    runtime_name: str | None,
    host: str | None,
    *,
    timeout: float,
    no_pull: bool,
    no_provision: bool,
    skip_missing: bool,
    as_json: bool,
) -> None:
    """Start the stack, wait until every component is ready, provision Grafana.

    Idempotent: on an unchanged, healthy stack nothing is recreated and nothing is written.
    On failure, the failing components are diagnosed and nothing is torn down.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.markup import escape

    from stack import lifecycle
    from stack.commands import display as show
    from stack.health import Readiness, readiness_table, startup_diagnosis
    from stack.runtime.base import StartupFailure

    opened = open_runtime(ctx, runtime_name, host)
    console = Console(stderr=True, highlight=False)
    if skip_missing:
        opened, skipped = without_missing(opened, runtime_name)
        for line in skipped:
            click.echo(f"Warning: {line}", err=True)
    rows: list[Readiness] = []
    live = Live(console=console, transient=False, auto_refresh=True, refresh_per_second=4)
    pulls = show.PullDisplay(console)

    def stop_live() -> None:
        if live.is_started:
            live.stop()
            if not console.is_terminal:
                console.line()  # the last frame ends without a newline off a terminal

    def on_step(message: str) -> None:
        # The pull bars and the readiness table are over once another step begins (one live display at a time).
        pulls.stop()
        stop_live()
        console.print(f"[bold]•[/] {escape(message)}")
        if message.startswith("Waiting"):
            live.start()

    def on_readiness(current: list[Readiness]) -> None:
        rows[:] = current
        live.update(readiness_table(current))

    provisioner = None if no_provision else show.provisioner()
    try:
        result = lifecycle.up(
            opened.paths,
            opened.settings,
            opened.runtime,
            timeout=timeout,
            pull=not no_pull,
            on_step=on_step,
            on_readiness=on_readiness,
            on_pull=pulls.update,
            provisioner=provisioner,
        )
    except StartupFailure as failure:
        # A runtime that saw a component die while starting it (the process runtime): explained
        # like a failed readiness check (state, last log lines, hints).
        pulls.stop()
        stop_live()
        show.diagnosis(console, startup_diagnosis(failure))
        sys.exit(1)
    finally:
        pulls.stop()
        stop_live()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        if not result.ok:
            sys.exit(1)
        return
    if not result.ok:
        for diagnosis in result.diagnoses:
            show.diagnosis(console, diagnosis)
        console.print(
            "Nothing was torn down: look with `stack status` and `stack logs SERVICE`; stop with `stack down`."
        )
        sys.exit(1)
    if result.provisioning is not None:
        console.print(show.provisioning_line(result.provisioning))
    show.endpoints(result.endpoints, result.credentials_file)
    click.echo(f"Ready in {result.seconds:.1f} s.")


def without_missing(opened: Opened, runtime_name: str | None) -> tuple[Opened, list[str]]:
    """The stack without the components whose binaries this machine lacks, and a line for each."""
    from stack.errors import SettingsError
    from stack.runtime.process.runtime import ProcessRuntime
    from stack.runtime.select import get_runtime

    runtime = opened.runtime
    if not isinstance(runtime, ProcessRuntime):
        raise SettingsError(
            "--skip-missing is for the process runtime",
            hint="add --runtime process (or runtime: process in stack.yaml)",
        )
    missing = runtime.missing()
    if not missing:
        return opened, []
    lines = [runtime.skipped_line(component) for component in missing]
    if set(missing) == set(opened.settings.enabled()):
        raise StackError(
            "process runtime: none of the enabled components has its binary here; " + "; ".join(lines),
            hint="install at least one (Debian: apt-get install prometheus prometheus-alertmanager)",
        )
    settings = opened.settings.without(missing)
    return Opened(opened.paths, settings, get_runtime(settings, opened.paths, name=runtime_name)), lines
