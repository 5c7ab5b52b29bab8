"""Starting, watching and stopping local components.

Each component runs under a small sh (`_RUNNER`) in its own session, its output in
`<root>/logs/<component>.log`. A stop signals the recorded process' whole session, and only when the
record still names that very process (state.ProcessRecord.alive).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from stack.components import REGISTRY
from stack.errors import StackError
from stack.fileio import atomic_write
from stack.net.address import url_host
from stack.net.http import request
from stack.net.ports import port_answers
from stack.polling import poll_until
from stack.runtime.base import StartupFailure
from stack.runtime.process.logs import read_log_tail
from stack.runtime.process.plan import ProcessPlan
from stack.runtime.process.state import ProcessRecord, boot_id, start_ticks

LOG_TAIL = 30
# A start-up is watched until each new process is ready, or has listened this long, or this cap.
SETTLE_SECONDS = 1.5
WATCH_CAP_SECONDS = 15.0


# Each component runs under a small sh that restarts it when it exits (like Docker's `restart:
# unless-stopped`: after 1 s, doubling up to 60 s, back to 1 s once it has run for 10 s) and leaves
# `<component>.running` while it runs and its last exit code in `<component>.exit`, so that any later
# `stack status` can tell running from restarting and say with which code it exited. A TERM to the
# session reaches the component too; the trap makes sh wait for it, then stop instead of restarting.
_RUNNER = """exitfile=$1; runfile=$2; shift 2
stop=0
trap 'stop=1' TERM INT
delay=1
while :; do
  began=$(date +%s)
  : > "$runfile"
  "$@"
  code=$?
  rm -f "$runfile"
  echo "$code" > "$exitfile"
  [ "$stop" = 1 ] && exit "$code"
  [ $(( $(date +%s) - began )) -ge 10 ] && delay=1
  sleep "$delay"
  [ "$stop" = 1 ] && exit "$code"
  delay=$(( delay * 2 > 60 ? 60 : delay * 2 ))
done
"""


class Supervisor:
    """The processes of one project: started under the runner, their exits read from its files."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        # The processes this very object started: their exit codes are known (others' are not).
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def exit_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.exit"

    def run_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.running"

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def spawn(self, plan: ProcessPlan, version: str | None) -> ProcessRecord:
        """Write the plan's files and start its command under the runner, in a session of its own."""
        plan.cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in plan.dirs:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Configs are regenerated whole: a rule file removed from the settings disappears here too.
        shutil.rmtree(plan.config_dir, ignore_errors=True)
        for path, content in plan.files.items():
            atomic_write(path, content, mode=0o600)
        log = self.log_file(plan.component)
        self.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if log.exists() and log.stat().st_size:
            # Like a recreated container, a new start begins a new log; the previous run's is kept.
            log.replace(log.with_name(log.name + ".1"))
        exit_file, run_file = self.exit_file(plan.component), self.run_file(plan.component)
        exit_file.unlink(missing_ok=True)
        run_file.unlink(missing_ok=True)
        with log.open("ab") as out:
            os.chmod(log, 0o600)
            try:
                process = subprocess.Popen(
                    ["/bin/sh", "-c", _RUNNER, "stack-run", str(exit_file), str(run_file), *plan.argv],
                    cwd=plan.cwd,
                    env=plan.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # Its own session: Ctrl-C in this shell does not reach it, and down stops its group.
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise StackError(f"{plan.component}: cannot start {plan.argv[0]}: {exc.strerror}") from None
        self._children[process.pid] = process
        ticks = start_ticks(process.pid)
        return ProcessRecord(
            pid=process.pid,
            start_ticks=ticks if ticks is not None else -1,
            boot_id=boot_id(),
            argv=plan.argv,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            log=str(log),
            config_hash=plan.config_hash,
            version=version,
        )

    def forget(self, records: dict[str, ProcessRecord]) -> None:
        for record in records.values():
            self._children.pop(record.pid, None)

    def exit_code(self, component: str, record: ProcessRecord) -> int | None:
        """The component's last exit code (None when it never exited, or was killed with its runner)."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.exit_file(component).read_text().strip())
        child = self._children.get(record.pid)
        return child.poll() if child is not None else None

    def phase(self, component: str, record: ProcessRecord) -> str:
        """running, restarting (the runner waits to start it again) or exited."""
        if not record.alive():
            return "exited"
        if self.run_file(component).exists() or not self.exit_file(component).exists():
            return "running"
        return "restarting"

    def watch(self, plans: dict[str, ProcessPlan], records: dict[str, ProcessRecord]) -> None:
        """Until each new process is ready (or steadily listening); raise for one that exits."""
        listening_since: dict[str, float] = {}
        settled: set[str] = set()

        def check() -> bool:
            for name, record in records.items():
                if name in settled:
                    continue
                # The first exit of the component (its runner would restart it) or of the runner.
                if self.exit_file(name).exists() or not record.alive():
                    if not self.exit_file(name).exists():
                        poll_until(self.exit_file(name).exists, 2)
                    code = self.exit_code(name, record)
                    raise StartupFailure(name, code, Path(record.log), read_log_tail(Path(record.log), LOG_TAIL))
                plan = plans[name]
                if not all(port_answers(host, port, timeout=0.2) for _, host, port in plan.listen):
                    continue
                now = time.monotonic()
                listening_since.setdefault(name, now)
                if now - listening_since[name] >= SETTLE_SECONDS or _answers_ready(plan):
                    settled.add(name)
            return len(settled) == len(records)

        poll_until(check, WATCH_CAP_SECONDS, interval=0.05)


def _answers_ready(plan: ProcessPlan) -> bool:
    probe = REGISTRY[plan.component].readiness
    for port_name, host, port in plan.listen:
        if port_name == probe.port:
            with contextlib.suppress(ConnectionError, TimeoutError):
                return request("GET", f"http://{url_host(host)}:{port}{probe.path}", timeout=0.5).ok
    return False


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
