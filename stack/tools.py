"""Every outside program (promtool, amtool, binaries of the process runtime) runs through here."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stack.interrupts import in_critical_section


@dataclass(frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)


def which(*names: str) -> str | None:
    """The first of `names` found on PATH."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def run(
    argv: Sequence[str],
    *,
    timeout: float | None = 60,
    cwd: str | None = None,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ToolResult:
    """Run a program to completion and capture its output (never raises on a non-zero exit).

    `input` is written to its stdin (how secrets reach a program without showing on its command line);
    `env`, when given, is its whole environment (how secrets reach this child alone, not every later one).
    """
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            check=False,
            # In a critical section (a restore between stop and start), a terminal's Ctrl-C must
            # not reach the child: it goes to the foreground process group, which this leaves.
            start_new_session=in_critical_section(),
            **stdin,
        )
    except subprocess.TimeoutExpired:
        return ToolResult(tuple(argv), 124, "", f"timed out after {timeout or 0:.0f} s")
    except OSError as exc:
        return ToolResult(tuple(argv), 127, "", str(exc))
    return ToolResult(tuple(argv), done.returncode, done.stdout, done.stderr)
