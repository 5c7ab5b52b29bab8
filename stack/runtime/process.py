"""The process runtime: the same stack as supervised local processes, no Docker needed.

Each component runs from its own binary (process.bin_dir, then PATH) with the configs rendered for
127.0.0.1, in its own session, its output in `<root>/logs/<component>.log`. `<root>` is
`<process.data_dir or .stack-state/process>/<project>`; `state.json` there records what was
started (pid, start time, command) so that any later shell can report on it and stop it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import requests

from stack.components import REGISTRY
from stack.components.base import RenderContext
from stack.components.versions import VERSION_HINT, unmet_requirements
from stack.errors import RuntimeUnavailable, SettingsError, StackError, UsageError
from stack.fileio import atomic_write
from stack.health import Diagnosis, describe_state, hints_for
from stack.netaddr import http_url, shown_host, url_host
from stack.paths import Paths
from stack.polling import poll_until
from stack.runtime import binaries as bins
from stack.runtime.base import HttpReply, ServiceState
from stack.runtime.localrender import (
    RENDERED_DIR,
    LocalTopology,
    PathMap,
    ProcessPlan,
    assign_ports,
    listen_host,
    plan_processes,
    port_free,
    read_log_tail,
)
from stack.runtime.procstate import (
    ProcessRecord,
    RuntimeState,
    StateFile,
    boot_id,
    port_owner,
    start_ticks,
    terminate_all,
)
from stack.secrets import compose_environment
from stack.settings import Settings
from stack.tools import ToolResult, run
from stack.units import parse_duration, parse_since

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

_ADDRESS_IN_USE = re.compile(r":(\d+): bind: address already in use")


class StartupFailure(StackError):
    """A component exited while starting: its exit code and the last lines of its log."""

    def __init__(self, component: str, exit_code: int | None, log: Path, tail: list[str]) -> None:
        code = f"code {exit_code}" if exit_code is not None else "an unknown code"
        last = next((line.strip() for line in reversed(tail) if line.strip()), "its log is empty")
        super().__init__(
            f"{component} exited during start-up with {code}: {last}",
            hint=f"its last {len(tail)} log lines are in {log} (`stack logs {component}`)",
        )
        # Not `exit_code`: that is the CLI's own exit status, which a StackError carries.
        self.component, self.component_exit_code, self.log, self.tail = component, exit_code, log, tail
        taken = next((m for line in tail if (m := _ADDRESS_IN_USE.search(line))), None)
        self.taken_port = int(taken.group(1)) if taken else None

    def diagnosis(self) -> Diagnosis:
        """The same report as for a container that exited: state, last log lines, hints."""
        state = ServiceState(self.component, "exited", exit_code=self.component_exit_code)
        hints = hints_for(self.component, state, "", self.tail)
        hints.append(f"full log: {self.log}; the components this start launched were stopped again")
        return Diagnosis(self.component, f"{describe_state(state)} during start-up", "", self.tail, hints)


class PortInUse(StackError):
    """A port a component must listen on is taken by another program."""


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


class ProcessRuntime:
    name = "process"
    # Configs are rendered for this machine as processes start (127.0.0.1, the ports assigned
    # then): lifecycle.up writes no compose file for it, which nothing here would read.
    renders_itself = True

    def __init__(self, settings: Settings, paths: Paths) -> None:
        self.settings, self.paths = settings, paths
        options = settings.process
        base = paths.base_dir
        self.bin_dir = _resolve(base, options.bin_dir).absolute() if options.bin_dir else None
        data_dir = _resolve(base, options.data_dir) if options.data_dir else paths.state_dir / "process"
        # Absolute: processes run in their own directories and get these paths in their flags.
        self.root = (data_dir / settings.project).absolute()
        self.logs_dir = self.root / "logs"
        self.state_file = StateFile(self.root, settings.project)
        self.stop_timeout = parse_duration(options.stop_timeout)
        # Version mismatches and the like: the CLI shows them, nothing fails on them.
        self.warnings: list[str] = []
        self._all_warnings: list[str] = []
        # The processes this very object started: their exit codes are known (others' are not).
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._last_ports: dict[str, dict[str, int]] = {}

    # --- checks -------------------------------------------------------------------------------

    def check(self) -> None:
        """Linux with /proc; the binaries are looked up (for their version warnings) but a missing
        one fails only `up`/`start`: status, logs and down must work whatever was uninstalled."""
        self._binaries(self.settings.enabled(), strict=False)

    def _binaries(self, components: list[str], *, strict: bool = True) -> dict[str, bins.Binary]:
        if not Path("/proc/self/stat").exists():
            raise RuntimeUnavailable("the process runtime needs Linux (/proc)", hint="use --runtime docker")
        cache = self.root / "binaries.json"
        known: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text(encoding="utf-8"))
        before = json.dumps(known, sort_keys=True)
        found, missing = bins.locate(self.settings, components, self.bin_dir, known)
        if self.root.is_dir() and json.dumps(known, sort_keys=True) != before:
            with contextlib.suppress(OSError):
                atomic_write(cache, json.dumps(known, indent=1, sort_keys=True) + "\n", mode=0o600)
        self._all_warnings = [warning for binary in found.values() if (warning := binary.warning())]
        # Said once: a version difference shown by one `up` is not repeated by the next ones.
        shown = self._shown_warnings()
        self.warnings = [warning for warning in self._all_warnings if warning not in shown]
        if missing and strict:
            raise bins.missing_binaries(missing, self.bin_dir)
        return found

    def binaries(self) -> dict[str, bins.Binary]:
        """The binary of every enabled component (RuntimeUnavailable listing the missing ones)."""
        return self._binaries(self.settings.enabled())

    def check_start(self) -> None:
        """Refuse, before anything is written or started, what `up` would fail on: a missing binary
        (all of them named at once) or one too old for the settings."""
        found = self._binaries(self.settings.enabled())
        too_old = self.version_problems(found)
        if too_old:
            raise SettingsError(f"{self.paths.settings_file}: {too_old[0]}", hint=VERSION_HINT)

    def version_problems(self, found: dict[str, bins.Binary] | None = None) -> list[str]:
        """Settings the binaries found are too old for (e.g. `url_file` and Debian's Alertmanager 0.25)."""
        if found is None:
            found = self._binaries(self.settings.enabled(), strict=False)
        versions = {name: binary.version for name, binary in found.items()}
        return unmet_requirements(self.settings, versions, source="binary")

    def missing(self) -> list[str]:
        """The enabled components whose binary is not in process.bin_dir or on PATH."""
        _found, missing = bins.locate(self.settings, self.settings.enabled(), self.bin_dir)
        return missing

    def skipped_line(self, component: str) -> str:
        return bins.skipped_line(component, self.bin_dir)

    def _shown_warnings(self) -> set[str]:
        with contextlib.suppress(OSError, ValueError):
            shown = json.loads((self.root / "warnings-shown.json").read_text(encoding="utf-8"))
            if isinstance(shown, list):
                return {str(item) for item in shown}
        return set()

    def _remember_warnings(self) -> None:
        """Record the warnings the last check found as shown (after an `up` that showed them)."""
        if not self._all_warnings or set(self._all_warnings) <= self._shown_warnings():
            return
        with contextlib.suppress(OSError):
            atomic_write(self.root / "warnings-shown.json", json.dumps(sorted(self._all_warnings)) + "\n", mode=0o600)

    # --- lifecycle ----------------------------------------------------------------------------

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        """Start (or restart, when its config changed) each service; stop components no longer enabled.

        Waits only until each new process runs steadily; readiness is the caller's job. A component
        that exits at start-up raises StartupFailure after stopping everything this call started.
        """
        self._start(services, restart_changed=True)

    def start(self, services: list[str]) -> None:
        self._start(services, restart_changed=False)

    def _start(self, services: list[str] | None, *, restart_changed: bool) -> None:
        enabled = self.settings.enabled()
        unknown = [name for name in services or [] if name not in enabled]
        if unknown:
            raise StackError(f"not an enabled component: {', '.join(unknown)}", hint=f"enabled: {', '.join(enabled)}")
        with self.state_file.locked():
            try:
                self._start_locked(services, restart_changed=restart_changed, avoid=set())
            except StartupFailure as failure:
                # A port this runtime chose was taken between the check and the bind (another
                # program starting at the same moment): choose again, once.
                if failure.taken_port is None or failure.taken_port not in self._assigned_ports(failure.component):
                    raise
                self._start_locked(services, restart_changed=restart_changed, avoid={failure.taken_port})

    def _assigned_ports(self, component: str) -> set[int]:
        published = {port for _, port in REGISTRY[component].published(self.settings)}
        return set(self._last_ports.get(component, {}).values()) - published

    def _start_locked(self, services: list[str] | None, *, restart_changed: bool, avoid: set[int]) -> None:
        enabled = self.settings.enabled()
        targets = services or enabled
        found = self._binaries(targets)
        too_old = self.version_problems(found)
        if too_old:
            # Before anything starts: the binary would refuse its whole config at start-up.
            raise SettingsError(f"{self.paths.settings_file}: {too_old[0]}", hint=VERSION_HINT)
        binaries = {name: (binary.path, binary.prefix_args) for name, binary in found.items()}
        state = self.state_file.load()
        orphans = {name: rec for name, rec in state.processes.items() if name not in enabled}
        if orphans and services is None:
            terminate_all(orphans, self.stop_timeout)
            for name in orphans:
                del state.processes[name]
        running = {name for name, record in state.processes.items() if record.alive()}
        # What compose would read from its environment: the Grafana password, the proxy's TLS files.
        secret_env = compose_environment(self.settings, self.paths)
        stopping: dict[str, ProcessRecord] = {}
        while True:
            # Ports first (running components keep theirs), then configs; a component whose
            # config changed is stopped, which frees its ports, and everything is planned again
            # until no running component's config differs from what it runs with.
            ports = assign_ports(self.settings, state.ports, keep=running - set(stopping), avoid=avoid)
            plans = plan_processes(
                self.settings,
                self.root,
                self.paths.secrets_dir,
                ports,
                binaries,
                os.environ,
                secret_env=secret_env,
                base_dir=self.paths.base_dir,
                versions={name: binary.version for name, binary in found.items() if binary.version},
            )
            changed = {
                name: state.processes[name]
                for name in targets
                if name in running
                and name not in stopping
                and state.processes[name].config_hash != plans[name].config_hash
            }
            # A port chosen here may have been taken since (another program starting now): choose again.
            stopped = [name for name in targets if name not in running or name in stopping]
            taken = self._taken_assigned_ports([plans[name] for name in stopped])
            if taken and len(avoid) < 50:
                avoid |= taken
                continue
            if not changed or not restart_changed:
                break
            terminate_all(changed, self.stop_timeout)
            stopping.update(changed)
        to_start = [name for name in targets if name not in running or name in stopping]
        self._last_ports = ports
        self._check_ports([plans[name] for name in to_start])
        state.ports = {**state.ports, **ports}
        started: dict[str, ProcessRecord] = {}
        try:
            for name in to_start:
                started[name] = self._spawn(plans[name], found[name])
                state.processes[name] = started[name]
                self.state_file.save(state)
            self._watch({name: plans[name] for name in started}, started)
        except BaseException:
            terminate_all(started, self.stop_timeout)
            for name in started:
                state.processes.pop(name, None)
            self.state_file.save(state)
            raise
        self.state_file.save(state)
        self._remember_warnings()

    def _published(self, component: str) -> set[str]:
        return {spec.name for spec, _ in REGISTRY[component].published(self.settings)}

    def _taken_assigned_ports(self, plans: list[ProcessPlan]) -> set[int]:
        return {
            port
            for plan in plans
            for port_name, host, port in plan.listen
            if port_name not in self._published(plan.component) and not port_free(host, port)
        }

    def _check_ports(self, plans: list[ProcessPlan]) -> None:
        for plan in plans:
            for port_name, host, port in plan.listen:
                if port_free(host, port):
                    continue
                spec = REGISTRY[plan.component].port_spec(port_name)
                published = port_name in self._published(plan.component)
                setting = f"components.{plan.component}.{spec.setting}" if spec.setting and published else None
                owner = port_owner(port) or "another program"
                where = f" ({setting})" if setting else ""
                raise PortInUse(
                    f"{plan.component}: port {port} on {host}{where} is already in use by {owner}",
                    hint=f"stop that program, or set {setting} to a free port in stack.yaml"
                    if setting
                    else "stop that program and run again",
                )

    def _spawn(self, plan: ProcessPlan, binary: bins.Binary) -> ProcessRecord:
        plan.cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in plan.dirs:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Configs are regenerated whole: a rule file removed from the settings disappears here too.
        shutil.rmtree(plan.config_dir, ignore_errors=True)
        for path, content in plan.files.items():
            atomic_write(path, content, mode=0o600)
        log = self.logs_dir / f"{plan.component}.log"
        self.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if log.exists() and log.stat().st_size:
            # Like a recreated container, a new start begins a new log; the previous run's is kept.
            log.replace(log.with_name(log.name + ".1"))
        exit_file, run_file = self._exit_file(plan.component), self._run_file(plan.component)
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
            version=binary.version,
        )

    def _exit_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.exit"

    def _run_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.running"

    def _exit_code(self, component: str, record: ProcessRecord) -> int | None:
        """The component's last exit code (None when it never exited, or was killed with its runner)."""
        with contextlib.suppress(OSError, ValueError):
            return int(self._exit_file(component).read_text().strip())
        child = self._children.get(record.pid)
        return child.poll() if child is not None else None

    def _component_state(self, component: str, record: ProcessRecord) -> str:
        if not record.alive():
            return "exited"
        if self._run_file(component).exists() or not self._exit_file(component).exists():
            return "running"
        return "restarting"

    def _watch(self, plans: dict[str, ProcessPlan], records: dict[str, ProcessRecord]) -> None:
        """Until each new process is ready (or steadily listening); raise for one that exits."""
        listening_since: dict[str, float] = {}
        settled: set[str] = set()

        def check() -> bool:
            for name, record in records.items():
                if name in settled:
                    continue
                # The first exit of the component (its runner would restart it) or of the runner.
                if self._exit_file(name).exists() or not record.alive():
                    if not self._exit_file(name).exists():
                        poll_until(self._exit_file(name).exists, 2)
                    code = self._exit_code(name, record)
                    raise StartupFailure(name, code, Path(record.log), read_log_tail(Path(record.log), LOG_TAIL))
                plan = plans[name]
                if not all(_accepts(url_host(host), port) for _, host, port in plan.listen):
                    continue
                now = time.monotonic()
                listening_since.setdefault(name, now)
                if now - listening_since[name] >= SETTLE_SECONDS or self._ready(name, plan):
                    settled.add(name)
            return len(settled) == len(records)

        poll_until(check, WATCH_CAP_SECONDS, interval=0.05)

    def _ready(self, name: str, plan: ProcessPlan) -> bool:
        probe = REGISTRY[name].readiness
        for port_name, host, port in plan.listen:
            if port_name == probe.port:
                with contextlib.suppress(requests.RequestException):
                    return requests.get(f"http://{url_host(host)}:{port}{probe.path}", timeout=0.5).ok
        return False

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        with self.state_file.locked():
            state = self.state_file.load()
            terminate_all(state.processes, timeout)
            for record in state.processes.values():
                self._children.pop(record.pid, None)
            state.processes.clear()
            if volumes:
                for entry in self.root.iterdir():
                    if entry.name != ".lock":
                        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            else:
                self.state_file.save(state)

    def stop(self, services: list[str], *, timeout: float = 30) -> None:
        with self.state_file.locked():
            state = self.state_file.load()
            chosen = {name: record for name, record in state.processes.items() if name in services}
            terminate_all(chosen, timeout)

    # --- inspection ---------------------------------------------------------------------------

    def _state(self) -> RuntimeState:
        return self.state_file.load()

    @property
    def topology(self) -> LocalTopology:
        """How components reach each other here (the ports given at `up`): what a local Grafana's
        datasources were rendered with, so provisioning compares like with like."""
        return LocalTopology(self._state().ports, self.settings)

    def ps(self) -> list[ServiceState]:
        state = self._state()
        names = [*self.settings.enabled(), *(name for name in state.processes if name not in self.settings.enabled())]
        found: list[ServiceState] = []
        # Not running (before `up`, after `down`): the version is still the binary's that would run.
        idle = [name for name in names if name not in state.processes and name in self.settings.enabled()]
        binaries = self._binaries(idle, strict=False) if idle else {}
        for name in names:
            record = state.processes.get(name)
            if record is None:
                binary = binaries.get(name)
                image = f"{binary.path}:{binary.version}" if binary and binary.version else None
                found.append(ServiceState(name, "missing", image=image))
                continue
            phase = self._component_state(name, record)
            # `path:version`, read like an image tag by whoever shows versions.
            image = f"{record.argv[0]}:{record.version}" if record.version else record.argv[0]
            found.append(
                ServiceState(
                    name,
                    phase,
                    exit_code=None if phase == "running" else self._exit_code(name, record),
                    started_at=datetime.fromisoformat(record.started_at),
                    image=image,
                )
            )
        return found

    def _log_files(self, service: str | None) -> list[tuple[str, Path]]:
        if service is not None:
            return [(service, self.logs_dir / f"{service}.log")]
        state = self._state()
        names = [*self.settings.enabled(), *(name for name in state.processes if name not in self.settings.enabled())]
        return [(name, self.logs_dir / f"{name}.log") for name in names if (self.logs_dir / f"{name}.log").exists()]

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        files = self._log_files(service)
        cutoff = _since(since) if since else None
        prefix = service is None
        positions: dict[str, int] = {}
        for name, path in files:
            lines, positions[name] = _read_lines(path)
            if cutoff is not None:
                lines = _after(lines, cutoff)
            if tail is not None:
                lines = lines[-tail:] if tail else []
            for line in lines:
                yield f"{name} | {line}" if prefix else line
        if not follow:
            return
        state = self._state()
        while True:
            for name, path in files:
                lines, positions[name] = _read_lines(path, positions.get(name, 0))
                for line in lines:
                    yield f"{name} | {line}" if prefix else line
            if not any(state.processes[name].alive() for name, _ in files if name in state.processes):
                return
            time.sleep(0.2)

    # --- reaching components ------------------------------------------------------------------

    def _port(self, service: str, port: str) -> tuple[str, int]:
        given = self._state().ports.get(service, {}).get(port)
        if given is None:
            raise ConnectionError(f"{service} has no {port} port on this machine (is it up?)")
        return url_host(listen_host(self.settings, service, port)), given

    def http(
        self,
        service: str,
        port: str,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5,
    ) -> HttpReply:
        host, number = self._port(service, port)
        try:
            reply = requests.request(
                method, f"http://{host}:{number}{path}", data=body, headers=dict(headers or {}), timeout=timeout
            )
        except requests.Timeout as exc:
            raise TimeoutError(f"{service}: no answer on {host}:{number} within {timeout:g} s") from exc
        except requests.RequestException as exc:
            raise ConnectionError(f"{service}: nothing answers on {host}:{number}") from exc
        return HttpReply(reply.status_code, reply.content, dict(reply.headers))

    def base_url(self, service: str, port: str) -> str | None:
        component = REGISTRY[service]
        for spec, host_port in component.published(self.settings):
            if spec.name == port:
                # A port may listen on an address of its own (the Collector's frontend).
                return http_url(shown_host(component.port_host_ip(self.settings, spec)), host_port)
        return None

    # --- files and commands -------------------------------------------------------------------

    def _paths(self, service: str) -> PathMap:
        if service not in REGISTRY:
            raise StackError(f"unknown component {service!r}")
        component = REGISTRY[service]
        home = self.root / service
        prefixes: list[tuple[str, Path]] = [(path, home / key) for key, path in component.state.items()]
        ctx = RenderContext(settings=self.settings, topology=self.topology)
        with contextlib.suppress(Exception):
            for config in component.configs(ctx):
                top = str(PurePosixPath(*PurePosixPath(config.target).parts[:3]))
                prefixes.append((top, home / RENDERED_DIR / top.lstrip("/")))
        return PathMap(tuple(sorted(set(prefixes), key=lambda item: -len(item[0]))))

    def _local(self, service: str, path: str) -> Path:
        local = self._paths(service).local(path)
        if local is None:
            raise StackError(f"{service}: {path} is not part of its state or configs")
        return local

    def copy_out(self, service: str, path: str) -> IO[bytes]:
        """A tar stream of `path`, its members under the path's base name (as `docker cp` gives)."""
        local = self._local(service, path)
        if not local.exists():
            raise StackError(f"{service}: {path} does not exist ({local})")
        return cast(IO[bytes], _TarStream(local, PurePosixPath(path).name or local.name))

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Unpack a tar stream into `path` (created if missing); members may not leave it."""
        local = self._local(service, path)
        local.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(fileobj=archive, mode="r|*") as tar:
                tar.extractall(local, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise StackError(f"{service}: cannot unpack the archive into {path}: {exc}") from None

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Replace the state directory `path` with the archive's contents.

        The previous directory is moved aside (a rename on the same file system) and deleted only
        once the archive is unpacked; when unpacking fails it is moved back, so a failed restore
        leaves the component's state as it was."""
        if service not in REGISTRY or path not in REGISTRY[service].state.values():
            raise StackError(f"{service}: {path} is not one of its state directories")
        local = self._local(service, path)
        with self.state_file.locked():
            record = self.state_file.load().processes.get(service)
            if record is not None and record.alive():
                raise StackError(f"{service} is running: its state cannot be replaced", hint=f"stack stop {service}")
            local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Beside the state, so that moving it aside and back are renames that cannot half-fail.
            holder = Path(tempfile.mkdtemp(prefix=f".{local.name}.previous-", dir=local.parent))
            previous = holder / local.name
            existed = local.exists()
            moved = False
            try:
                mode = local.stat().st_mode & 0o7777 if existed else 0o700
                if existed:
                    local.rename(previous)
                    moved = True
                local.mkdir(mode=mode)
                os.chmod(local, mode)
                self.copy_in(service, path, archive)
            except BaseException as exc:
                # Only what this call made is removed: when the move aside failed, `local` is still the
                # previous state and must stay untouched.
                if moved or not existed:
                    shutil.rmtree(local, ignore_errors=True)
                if moved:
                    try:
                        previous.rename(local)
                    except OSError as back:
                        # The holder is kept: it is the only copy of the previous state now.
                        raise StackError(
                            f"{service}: cannot replace {path} and cannot put its previous state back: {back}",
                            hint=f"the previous state is in {previous}",
                        ) from None
                shutil.rmtree(holder, ignore_errors=True)
                back_note = "; its previous state is back in place" if existed else ""
                if isinstance(exc, OSError):
                    raise StackError(f"{service}: cannot replace {path}: {exc}{back_note}") from None
                if isinstance(exc, StackError):
                    # Same exception (its class may carry its own exit code), told that nothing was lost.
                    exc.message += back_note
                    exc.args = (exc.message,)
                raise
            shutil.rmtree(holder, ignore_errors=True)

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        """Run a command beside the component: container paths in its arguments become local ones."""
        if not argv:
            raise StackError("exec: empty command")
        paths = self._paths(service)
        program = PurePosixPath(argv[0]).name
        exe = None
        if self.bin_dir is not None and (self.bin_dir / program).is_file():
            exe = str(self.bin_dir / program)
        exe = exe or shutil.which(program)
        if exe is None:
            return ToolResult(tuple(argv), 127, "", f"{program}: not found in process.bin_dir or PATH")
        arguments = [paths.value(arg) for arg in argv[1:]]
        for given, mapped in zip(argv[1:], arguments, strict=True):
            # In a container an absolute path can only reach the container; here it would reach the
            # whole machine (`rm -rf /x`): only the component's own paths are allowed.
            path = given.partition("=")[2] if given.startswith("-") else given
            if given == mapped and path.startswith("/") and path != "/dev/null":
                raise StackError(f"{service}: {path} is not part of its state or configs", hint="exec refuses it")
        home = self.root / service
        home.mkdir(parents=True, exist_ok=True)
        return run([exe, *arguments], timeout=timeout, cwd=str(home))


def _accepts(host: str, port: int) -> bool:
    # `host` is a URL's host part: an IPv6 literal comes in brackets, which sockets do not take.
    with contextlib.suppress(OSError), socket.create_connection((host.strip("[]"), port), timeout=0.2):
        return True
    return False


_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


def _since(text: str) -> datetime:
    """`10m` (a duration back from now) or an RFC 3339 time (the CLI has checked it already)."""
    try:
        return parse_since(text)
    except ValueError as exc:
        raise UsageError(f"--since {exc}") from None


def _after(lines: list[str], cutoff: datetime) -> list[str]:
    """The lines logged at or after `cutoff`; a line without a time goes with the line before it."""
    kept: list[str] = []
    keep = True
    for line in lines:
        found = _TIMESTAMP.search(line)
        if found:
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
                keep = (moment if moment.tzinfo else moment.astimezone()) >= cutoff
        if keep:
            kept.append(line)
    return kept


def _read_lines(path: Path, offset: int = 0) -> tuple[list[str], int]:
    """Complete lines from `offset` on, and the offset after the last complete one."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, 2) < offset:
                offset = 0  # a new run started a new file
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", errors="replace").splitlines(), offset + end


class _TarStream(io.RawIOBase):
    """A tar of a directory, produced by a thread into a pipe while the caller reads it.

    A failure while archiving is raised to the reader at the end, so a truncated archive is never
    mistaken for a complete one.
    """

    def __init__(self, source: Path, arcname: str) -> None:
        read_fd, write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb", buffering=0)
        self._error: BaseException | None = None

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                    tar.add(source, arcname=arcname)
            except BaseException as exc:  # handed to the reader
                self._error = exc

        self._thread = threading.Thread(target=produce, name=f"tar {source}", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._reader.readinto(buffer)
        if not count:
            self._thread.join()
            if self._error is not None:
                raise StackError(f"archiving failed: {self._error}")
        return count or 0

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
            self._thread.join(timeout=5)
        super().close()
