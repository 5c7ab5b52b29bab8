"""Printing shared by the commands that run the stack (not a command itself)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from stack.health import Diagnosis
    from stack.lifecycle import Endpoint, Provisioner


def diagnosis(console: Console, found: Diagnosis) -> None:
    """A failed component: what state it is in, its last log lines, and hints."""
    from rich.markup import escape

    console.print(f"[bold red]Error:[/] {found.component} is not ready: {escape(found.state)}")
    if found.reason and found.reason not in found.state:
        console.print(f"  readiness probe: {escape(found.reason)}")
    if found.log_lines:
        console.print(f"  last {len(found.log_lines)} log lines of {found.component}:")
        for line in found.log_lines:
            console.print(f"    {escape(line)}", soft_wrap=True)
    else:
        console.print(f"  {found.component} wrote no log lines")
    for hint in found.hints:
        console.print(f"  [bold]hint:[/] {escape(hint)}")


def endpoints(found: list[Endpoint], credentials_file: Path | None) -> None:
    """The URLs (or, for a component without one, where to look at it instead)."""
    width = max((len(endpoint.name) for endpoint in found), default=0)
    for endpoint in found:
        click.echo(f"{endpoint.name.ljust(width)}  {endpoint.url or endpoint.note}")
    if credentials_file is not None:
        click.echo(f"Grafana admin credentials: `stack credentials` (password kept 0600 in {credentials_file}).")


class PullDisplay:
    """One progress bar per image being pulled (bytes over the layers seen so far)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def update(self, event: Any) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("  {task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TextColumn("{task.fields[status]}"),
                    console=self.console,
                )
                self._progress.start()
            task = self._tasks.get(event.image)
            if task is None:
                task = self._tasks[event.image] = self._progress.add_task(event.image, total=None, status="")
            if event.finished:
                done = self._progress.tasks[task].completed or 1
                self._progress.update(task, total=done, completed=done, status="pulled")
            else:
                self._progress.update(task, total=event.total or None, completed=event.done, status=event.status)

    def stop(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def provisioner() -> Provisioner | None:
    """The Grafana provisioning step `stack up` runs once everything is ready."""
    try:
        from stack.grafana.provision import provision_stack
    except ImportError:  # not in this build yet
        return None
    return provision_stack


def provisioning_line(result: Any) -> str:
    summary = getattr(result, "summary", None)
    return f"Grafana: {summary()}" if callable(summary) else f"Grafana: {result}"
