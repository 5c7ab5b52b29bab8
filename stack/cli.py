"""The `stack` command: parses arguments, calls one function per command, prints what comes back.

Commands are imported only when they run, so `stack --help` and `stack --version` stay fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from stack import __version__
from stack.errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, StackError

# name -> (module under stack.commands, one-line help shown by `stack --help` without importing it)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "Write a commented starter stack.yaml."),
    "render": ("render", "Render the compose project (default .stack/compose.yaml)."),
    "validate": ("validate", "Check stack.yaml and the rendered project with the real tools."),
    "credentials": ("credentials", "Show Grafana's URL and generated admin credentials."),
    "up": ("up", "Start the stack, wait until ready, provision Grafana."),
    "down": ("down", "Stop the stack (data kept; --volumes deletes it)."),
    "status": ("status", "Each component's state, readiness, version and URL."),
    "logs": ("logs", "Show (or follow) the components' logs."),
    "provision": ("provision", "Push datasources, folders and dashboards to Grafana."),
    "backup": ("backup", "Back up every component's state into one verified archive."),
    "restore": ("restore", "Restore a backup archive (verified first)."),
    "deploy": ("deploy", "Bring the stack up on a server over SSH."),
    "doctor": ("doctor", "Find security and health problems."),
    "smoke": ("smoke", "Send a trace, a log and a metric; find each in its backend."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"stack.commands.{COMMANDS[cmd_name][0]}")
        return module.command

    def invoke(self, ctx: click.Context) -> Any:
        # Here rather than in main() so that CliRunner tests see exactly what users see.
        try:
            return super().invoke(ctx)
        except StackError as exc:
            click.echo(f"Error: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            path = _write_crash_log()
            click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (details in {path})", err=True)
            ctx.exit(EXIT_UNEXPECTED)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    envvar="STACK_CONFIG",
    help="Settings file [default: ./stack.yaml; env STACK_CONFIG]. It need not exist: defaults apply.",
)
@click.version_option(__version__, "-V", "--version", prog_name="stack")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """Deploy and operate an observability stack: OpenTelemetry Collector, Prometheus, Loki,
    Tempo, Grafana and Alertmanager, from one stack.yaml."""
    ctx.obj = {"config": config}


def _write_crash_log() -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="stack-crash-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"stack {__version__}\nargv: {sys.argv!r}\n\n")
        traceback.print_exc(file=handle)
    return path


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    cli.main(args=argv, prog_name="stack")
