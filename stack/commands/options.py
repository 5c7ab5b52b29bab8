"""Options shared by every command that talks to a running stack, and the one way to open it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from stack.commands import paths_from
from stack.paths import Paths
from stack.project import load
from stack.runtime.base import Runtime
from stack.runtime.select import RUNTIME_NAMES, get_runtime
from stack.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def runtime_options(func: F) -> F:
    """`--runtime` and `--host`, passed to the command as `runtime_name` and `host`."""
    func = click.option(
        "--host",
        "host",
        envvar="STACK_HOST",
        metavar="HOST",
        help="Remote Docker engine: ssh://user@server, or a docker context name [env STACK_HOST].",
    )(func)
    func = click.option(
        "--runtime",
        "runtime_name",
        type=click.Choice(RUNTIME_NAMES),
        help="Run with Docker or as local processes [default: `runtime:` in stack.yaml, else docker].",
    )(func)
    return func


@dataclass(frozen=True)
class Opened:
    paths: Paths
    settings: Settings
    runtime: Runtime


def open_runtime(ctx: click.Context, runtime_name: str | None, host: str | None) -> Opened:
    """The settings, paths and chosen runtime for a command (the runtime is not checked yet)."""
    paths = paths_from(ctx)
    settings = load(paths)
    return Opened(paths, settings, get_runtime(settings, paths, name=runtime_name, host=host))
