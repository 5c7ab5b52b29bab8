"""How `stack backup` and `stack restore` show progress and results (the CLI side of stack.backup)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from stack.backup.events import Events


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class ProgressEvents(Events):
    """A live line per component: what it is doing, bytes so far, throughput, time (on stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[component]:<13}"),
            TextColumn("{task.description:<18}"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            # Scripts, cron and CI logs get the summary only, not a bar redrawn to a file.
            disable=not console.is_terminal,
        )
        self.tasks: dict[str, TaskID] = {}
        self.current: TaskID | None = None
        self.notes: list[str] = []

    def __enter__(self) -> ProgressEvents:
        self.progress.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def component_started(self, component: str) -> None:
        self.current = self.progress.add_task("starting", total=None, component=component)
        self.tasks[component] = self.current

    def phase(self, component: str, text: str) -> None:
        if component in self.tasks:
            self.progress.update(self.tasks[component], description=text)

    def transferred(self, size: int) -> None:
        if self.current is not None:
            self.progress.advance(self.current, size)

    def component_done(self, component: str, size: int, seconds: float) -> None:
        task = self.tasks.get(component)
        if task is not None:
            done = self.progress.tasks[task].completed
            self.progress.update(task, description="done", total=done or 1, completed=done or 1)
        self.current = None

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, text: str) -> None:
        # markup=False: the text may quote a path or a name with brackets in it.
        self.console.print(f"Warning: {text}", markup=False, highlight=False)


def table(title: str, columns: list[str]) -> Table:
    view = Table(title=title, title_justify="left", show_edge=False)
    for column in columns:
        view.add_column(column, justify="right" if column in ("files", "size", "time") else "left")
    return view
