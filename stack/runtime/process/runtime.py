"""The process runtime: the same stack as supervised local processes, no Docker needed.

Each component runs from its own binary (process.bin_dir, then PATH) with the configs rendered for
127.0.0.1, in its own session, its output in `<root>/logs/<component>.log`. `<root>` is
`<process.data_dir or .stack-state/process>/<project>`; `state.json` there records what was
started (pid, start time, command) so that any later shell can report on it and stop it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO

from stack.components import REGISTRY
from stack.components.versions import VERSION_HINT, unmet_requirements
from stack.errors import SettingsError, StackError
from stack.net.address import http_url, shown_host, url_host
from stack.net.http import HttpReply, request
from stack.paths import Paths
from stack.runtime.base import ServiceState, StartupFailure
from stack.runtime.process import archives, ports
from stack.runtime.process.binaries import Binary, ProjectBinaries, skipped_line
from stack.runtime.process.logs import read_logs
from stack.runtime.process.paths import PathMap, bin_dir, component_paths, process_root
from stack.runtime.process.plan import ProcessPlan, plan_processes
from stack.runtime.process.state import ProcessRecord, RuntimeState, StateFile
from stack.runtime.process.supervisor import Supervisor, terminate_all
from stack.runtime.process.topology import LocalTopology, listen_host
from stack.secrets import compose_environment
from stack.settings import Settings
from stack.tools import ToolResult, run
from stack.units import parse_duration


class ProcessRuntime:
    name = "process"
    # Configs are rendered for this machine as processes start (127.0.0.1, the ports assigned
    # then): lifecycle.up writes no compose file for it, which nothing here would read.
    renders_itself = True

    def __init__(self, settings: Settings, paths: Paths) -> None:
        self.settings, self.paths = settings, paths
        self.bin_dir = bin_dir(settings, paths)
        self.root = process_root(settings, paths)
        self.logs_dir = self.root / "logs"
        self.state_file = StateFile(self.root, settings.project)
        self.stop_timeout = parse_duration(settings.process.stop_timeout)
        self._binaries = ProjectBinaries(settings, self.bin_dir, self.root)
        self._supervisor = Supervisor(self.logs_dir)
        self._last_ports: dict[str, dict[str, int]] = {}

    @property
    def warnings(self) -> list[str]:
        """Version mismatches and the like, not shown before: the CLI shows them, nothing fails on them."""
        return self._binaries.warnings

    # --- checks -------------------------------------------------------------------------------

    def check(self) -> None:
        """Linux with /proc; the binaries are looked up (for their version warnings) but a missing
        one fails only `up`/`start`: status, logs and down must work whatever was uninstalled."""
        self._binaries.find(self.settings.enabled(), strict=False)

    def binaries(self) -> dict[str, Binary]:
        """The binary of every enabled component (RuntimeUnavailable listing the missing ones)."""
        return self._binaries.find(self.settings.enabled())

    def check_start(self) -> None:
        """Refuse, before anything is written or started, what `up` would fail on: a missing binary
        (all of them named at once) or one too old for the settings."""
        found = self._binaries.find(self.settings.enabled())
        too_old = self.version_problems(found)
        if too_old:
            raise SettingsError(f"{self.paths.settings_file}: {too_old[0]}", hint=VERSION_HINT)

    def version_problems(self, found: dict[str, Binary] | None = None) -> list[str]:
        """Settings the binaries found are too old for (e.g. `url_file` and Debian's Alertmanager 0.25)."""
        if found is None:
            found = self._binaries.find(self.settings.enabled(), strict=False)
        versions = {name: binary.version for name, binary in found.items()}
        return unmet_requirements(self.settings, versions, source="binary")

    def missing(self) -> list[str]:
        """The enabled components whose binary is not in process.bin_dir or on PATH."""
        return self._binaries.missing(self.settings.enabled())

    def skipped_line(self, component: str) -> str:
        return skipped_line(component, self.bin_dir)

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
        found = self._binaries.find(targets)
        too_old = self.version_problems(found)
        if too_old:
            # Before anything starts: the binary would refuse its whole config at start-up.
            raise SettingsError(f"{self.paths.settings_file}: {too_old[0]}", hint=VERSION_HINT)
        state = self.state_file.load()
        orphans = {name: rec for name, rec in state.processes.items() if name not in enabled}
        if orphans and services is None:
            terminate_all(orphans, self.stop_timeout)
            for name in orphans:
                del state.processes[name]
        running = {name for name, record in state.processes.items() if record.alive()}
        stopping: dict[str, ProcessRecord] = {}
        while True:
            # Ports first (running components keep theirs), then configs; a component whose
            # config changed is stopped, which frees its ports, and everything is planned again
            # until no running component's config differs from what it runs with.
            given = ports.assign_ports(self.settings, state.ports, keep=running - set(stopping), avoid=avoid)
            plans = self._plan(given, found)
            changed = {
                name: state.processes[name]
                for name in targets
                if name in running
                and name not in stopping
                and state.processes[name].config_hash != plans[name].config_hash
            }
            # A port chosen here may have been taken since (another program starting now): choose again.
            stopped = [name for name in targets if name not in running or name in stopping]
            taken = ports.taken_assigned_ports(self.settings, [plans[name] for name in stopped])
            if taken and len(avoid) < 50:
                avoid |= taken
                continue
            if not changed or not restart_changed:
                break
            terminate_all(changed, self.stop_timeout)
            stopping.update(changed)
        to_start = [name for name in targets if name not in running or name in stopping]
        self._last_ports = given
        ports.check_free(self.settings, [plans[name] for name in to_start])
        state.ports = {**state.ports, **given}
        started: dict[str, ProcessRecord] = {}
        try:
            for name in to_start:
                started[name] = self._supervisor.spawn(plans[name], found[name].version)
                state.processes[name] = started[name]
                self.state_file.save(state)
            self._supervisor.watch({name: plans[name] for name in started}, started)
        except BaseException:
            terminate_all(started, self.stop_timeout)
            for name in started:
                state.processes.pop(name, None)
            self.state_file.save(state)
            raise
        self.state_file.save(state)
        self._binaries.remember_warnings()

    def _plan(self, given: Mapping[str, Mapping[str, int]], found: dict[str, Binary]) -> dict[str, ProcessPlan]:
        return plan_processes(
            self.settings,
            self.root,
            self.paths.secrets_dir,
            given,
            {name: (binary.path, binary.prefix_args) for name, binary in found.items()},
            os.environ,
            # What compose would read from its environment: the Grafana password, the proxy's TLS files.
            secret_env=compose_environment(self.settings, self.paths),
            base_dir=self.paths.base_dir,
            versions={name: binary.version for name, binary in found.items() if binary.version},
        )

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        with self.state_file.locked():
            state = self.state_file.load()
            terminate_all(state.processes, timeout)
            self._supervisor.forget(state.processes)
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

    def _names(self, state: RuntimeState) -> list[str]:
        """The enabled components, then those that still run though no longer enabled."""
        enabled = self.settings.enabled()
        return [*enabled, *(name for name in state.processes if name not in enabled)]

    def ps(self) -> list[ServiceState]:
        state = self._state()
        names = self._names(state)
        found: list[ServiceState] = []
        # Not running (before `up`, after `down`): the version is still the binary's that would run.
        idle = [name for name in names if name not in state.processes and name in self.settings.enabled()]
        binaries = self._binaries.find(idle, strict=False) if idle else {}
        for name in names:
            record = state.processes.get(name)
            if record is None:
                binary = binaries.get(name)
                image = f"{binary.path}:{binary.version}" if binary and binary.version else None
                found.append(ServiceState(name, "missing", image=image))
                continue
            phase = self._supervisor.phase(name, record)
            # `path:version`, read like an image tag by whoever shows versions.
            image = f"{record.argv[0]}:{record.version}" if record.version else record.argv[0]
            found.append(
                ServiceState(
                    name,
                    phase,
                    exit_code=None if phase == "running" else self._supervisor.exit_code(name, record),
                    started_at=datetime.fromisoformat(record.started_at),
                    image=image,
                )
            )
        return found

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        if service is not None:
            files = [(service, self._supervisor.log_file(service))]
        else:
            named = ((name, self._supervisor.log_file(name)) for name in self._names(self._state()))
            files = [(name, path) for name, path in named if path.exists()]
        follow_while = None
        if follow:
            processes = self._state().processes

            def follow_while(names: list[str]) -> bool:
                return any(processes[name].alive() for name in names if name in processes)

        return read_logs(files, prefix=service is None, tail=tail, since=since, follow_while=follow_while)

    # --- reaching components ------------------------------------------------------------------

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
        number = self._state().ports.get(service, {}).get(port)
        if number is None:
            raise ConnectionError(f"{service} has no {port} port on this machine (is it up?)")
        host = url_host(listen_host(self.settings, service, port))
        try:
            return request(method, f"http://{host}:{number}{path}", body=body, headers=headers, timeout=timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{service}: no answer on {host}:{number} within {timeout:g} s") from exc
        except ConnectionError as exc:
            raise ConnectionError(f"{service}: nothing answers on {host}:{number}") from exc

    def base_url(self, service: str, port: str) -> str | None:
        component = REGISTRY[service]
        for spec, host_port in component.published(self.settings):
            if spec.name == port:
                # A port may listen on an address of its own (the Collector's frontend).
                return http_url(shown_host(component.port_host_ip(self.settings, spec)), host_port)
        return None

    # --- files and commands -------------------------------------------------------------------

    def _paths(self, service: str) -> PathMap:
        return component_paths(self.settings, self.root, service, self.topology)

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
        return archives.tar_stream(local, PurePosixPath(path).name or local.name)

    def copy_in(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Unpack a tar stream into `path` (created if missing); members may not leave it."""
        archives.unpack(service, path, self._local(service, path), archive)

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Replace the state directory `path` with the archive's contents; the previous one comes back
        when unpacking fails (archives.replace_directory)."""
        if service not in REGISTRY or path not in REGISTRY[service].state.values():
            raise StackError(f"{service}: {path} is not one of its state directories")
        local = self._local(service, path)
        with self.state_file.locked():
            record = self.state_file.load().processes.get(service)
            if record is not None and record.alive():
                raise StackError(f"{service} is running: its state cannot be replaced", hint=f"stack stop {service}")
            archives.replace_directory(service, path, local, archive)

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
        arguments = paths.arguments(service, argv[1:])
        home = self.root / service
        home.mkdir(parents=True, exist_ok=True)
        return run([exe, *arguments], timeout=timeout, cwd=str(home))
