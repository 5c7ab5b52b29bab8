"""What the process runtime remembers about the processes it started, and how it checks them.

A pid alone is not an identity: pids are reused. A record holds the pid, the process' start time
(clock ticks since boot, through psutil) and the boot id, so that `status` and `down` run
from another shell recognise their own processes and never signal a stranger.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from stack.errors import StackError
from stack.fileio import atomic_write

STATE_VERSION = 1
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot, or None when there is no such process.

    Ticks, not psutil's wall-clock seconds: they are what the state file has always held, and they do
    not move when the clock is set. psutil adds the boot time to them, so it is taken off again.
    """
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return None
    return round((created - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))


def is_zombie(pid: int) -> bool:
    """True when `pid` has exited and waits to be reaped.

    The main thread of a multi-threaded program (every Go binary) shows as a zombie as soon as it
    exits, while its other threads still run and still hold its sockets: only when no other thread is
    left is the process gone (the kernel releases an exited thread other than the leader at once).
    """
    try:
        process = psutil.Process(pid)
        if process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        return process.num_threads() <= 1
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


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
