"""`stack doctor` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from stack.errors import StackError


@click.command("doctor", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Not available in this build yet."""
    raise StackError("`stack doctor` is not available in this build yet")
