"""What the process runtime remembers about the processes it started, and how it checks them.

A pid alone is not an identity: pids are reused. A record holds the pid, the process' start time
(clock ticks since boot, from /proc/<pid>/stat) and the boot id, so that `status` and `down` run
from another shell recognise their own processes and never signal a stranger.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from stack.errors import StackError
from stack.fileio import atomic_write

STATE_VERSION = 1
_PROC = Path("/proc")


def boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot, or None when there is no such process."""
    fields = _stat_fields(pid)
    # Field 22 of stat is starttime; after the name, `state` is field 3, so index 22 - 3 = 19.
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_zombie(pid: int) -> bool:
    """True when `pid` has exited and waits to be reaped.

    The main thread of a multi-threaded program (every Go binary) shows `Z` as soon as it exits,
    while its other threads still run and still hold its sockets: only when every thread is gone
    is the process gone.
    """
    fields = _stat_fields(pid)
    if not fields or fields[0] not in ("Z", "X"):
        return False
    try:
        tasks = [task.name for task in (_PROC / str(pid) / "task").iterdir()]
    except OSError:
        return True
    for tid in tasks:
        try:
            raw = (_PROC / str(pid) / "task" / tid / "stat").read_text()
        except OSError:
            continue
        if raw[raw.rfind(")") + 2 :].split()[0] not in ("Z", "X"):
            return False
    return True


def cmdline(pid: int) -> list[str]:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def started_at(ticks: int) -> datetime:
    """Wall-clock time of a start time in ticks since boot."""
    uptime = float((_PROC / "uptime").read_text().split()[0])
    seconds = ticks / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(time.time() - uptime + seconds).astimezone()


@dataclass
class ProcessRecord:
    """One started component."""

    pid: int
    start_ticks: int
    boot_id: str
    argv: list[str]
    started_at: str
    log: str
    config_hash: str
    version: str | None = None

    def alive(self) -> bool:
        """True while the very process that was started runs (not a reused pid, not a zombie)."""
        if self.boot_id and self.boot_id != boot_id():
            return False
        return start_ticks(self.pid) == self.start_ticks and not is_zombie(self.pid)


@dataclass
class RuntimeState:
    """The state file of one project: its processes and the ports they were given."""

    project: str
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    # component -> port name -> port number (published and assigned alike)
    ports: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "version": STATE_VERSION,
            "project": self.project,
            "processes": {name: asdict(record) for name, record in self.processes.items()},
            "ports": self.ports,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


class StateFile:
    """`state.json` in the project's process directory, read and written under a lock."""

    def __init__(self, directory: Path, project: str) -> None:
        self.directory = directory
        self.project = project
        self.path = directory / "state.json"

    def load(self) -> RuntimeState:
        if not self.path.exists():
            return RuntimeState(self.project)
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            processes = {name: ProcessRecord(**record) for name, record in data.get("processes", {}).items()}
            ports = {name: {k: int(v) for k, v in given.items()} for name, given in data.get("ports", {}).items()}
        except (ValueError, TypeError, KeyError) as exc:
            raise StackError(
                f"{self.path}: unreadable process state: {exc}",
                hint="stop the components by hand if any still run, then delete this file",
            ) from None
        return RuntimeState(data.get("project", self.project), processes, ports)

    def save(self, state: RuntimeState) -> None:
        atomic_write(self.path, state.to_json(), mode=0o600)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise up/down/start/stop of one project across shells."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _signal_group(record: ProcessRecord, signum: int) -> None:
    # Checked right before each signal: the recorded process, and only it (with its session).
    if not record.alive():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(record.pid, signum)
        except ProcessLookupError:
            os.kill(record.pid, signum)


def _reap(pid: int) -> None:
    """Collect our own exited child so that it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def poll_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Call `predicate` until it is true or `timeout` seconds have passed; its last answer."""
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda done: not done),
        retry_error_callback=lambda state: bool(state.outcome and state.outcome.result()),
    )
    return bool(retrying(predicate))


def _wait_gone(record: ProcessRecord, timeout: float) -> bool:
    def gone() -> bool:
        _reap(record.pid)
        return not record.alive()

    return poll_until(gone, timeout)


def terminate(record: ProcessRecord, timeout: float) -> str:
    """SIGTERM the recorded process (its whole session), SIGKILL after `timeout` seconds.

    Returns what happened: `gone` (was not running), `stopped` or `killed`.
    """
    if not record.alive():
        return "gone"
    _signal_group(record, signal.SIGTERM)
    if _wait_gone(record, timeout):
        return "stopped"
    _signal_group(record, signal.SIGKILL)
    _wait_gone(record, 10)
    return "killed"


def terminate_all(records: dict[str, ProcessRecord], timeout: float) -> dict[str, str]:
    """Stop several processes at once: SIGTERM to all, wait up to `timeout`, SIGKILL the rest."""
    outcome = {name: ("gone" if not record.alive() else "stopped") for name, record in records.items()}
    live = {name: record for name, record in records.items() if outcome[name] == "stopped"}
    for record in live.values():
        _signal_group(record, signal.SIGTERM)

    def all_gone() -> bool:
        for record in live.values():
            _reap(record.pid)
        return not any(record.alive() for record in live.values())

    if not poll_until(all_gone, timeout):
        for name, record in live.items():
            if record.alive():
                _signal_group(record, signal.SIGKILL)
                outcome[name] = "killed"
        poll_until(all_gone, 10)
    return outcome


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_owner(port: int) -> str | None:
    """`pid N (name)` of the process listening on TCP `port`, when this user may see it."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for proc in _PROC.iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        name = (proc / "comm").read_text().strip()
                        return f"pid {proc.name} ({name})"
    return "another program"
