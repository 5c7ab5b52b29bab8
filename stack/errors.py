"""The one error root of the package, and the exit codes the CLI maps errors to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130


class StackError(Exception):
    """A known failure: shown as one `Error: ...` line, never with a traceback.

    `hint` says what to do about it; it is appended to the same line.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} (hint: {self.hint})"
        # A multi-line tool message would break the one-line promise; keep its first line only.
        return " ".join(text.split("\n")[0].split())


class SettingsError(StackError):
    """stack.yaml (or a file it names) is malformed or invalid."""

    exit_code = EXIT_USAGE


class UsageError(StackError):
    """The command line asks for something that cannot be done as asked (exit 2, like click's)."""

    exit_code = EXIT_USAGE


class OutputError(StackError):
    """A file or directory the command must write cannot be written."""

    exit_code = EXIT_USAGE


class RuntimeUnavailable(StackError):
    """The container engine (or the process runtime's binaries) cannot be used."""
