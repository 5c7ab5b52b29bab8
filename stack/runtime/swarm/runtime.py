"""The Swarm runtime: the project deployed as a Swarm stack (`docker stack deploy`) on the manager that
DOCKER_HOST or --host names.

Services and tasks are read through the Engine API (docker SDK). Commands inside a container (readiness
of unpublished ports, backups) run in the task's container on the engine this runtime talks to: that
engine must be the backend node's (see docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import time
from collections.abc import Iterator
from typing import IO, Any

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from stack.errors import StackError
from stack.imageref import ImageRef
from stack.paths import Paths
from stack.render import LABEL_PREFIX
from stack.runtime.base import HttpReply, ServiceState
from stack.runtime.docker.errors import api_error, explain
from stack.runtime.docker.runtime import DockerRuntime
from stack.runtime.swarm.logs import interleaved
from stack.runtime.swarm.tasks import (
    FAILED_STATES,
    FAILED_UPDATES,
    NAMESPACE_LABEL,
    SERVICE_LABEL,
    UPDATE_GRACE,
    UPDATE_TIMEOUT,
    UPDATING,
    SwarmError,
    service_state,
    update_state,
)
from stack.runtime.swarmrender import STACK_FILE, render_swarm, swarm_dir, write_swarm
from stack.settings import Settings


class SwarmRuntime(DockerRuntime):
    """The Runtime protocol over `docker stack` and the Engine API of a swarm manager."""

    name = "swarm"
    # `up` renders the stack itself (compose.yaml is of no use to `docker stack deploy`).
    renders_itself = True

    def __init__(self, settings: Settings, paths: Paths, *, host: str | None = None) -> None:
        super().__init__(settings, paths, host=host)

    # -- engine and swarm ---------------------------------------------------------------------------

    def check(self) -> None:
        if self._checked:
            return
        info = self.engine_info()
        swarm = info.get("Swarm") or {}
        where = self.host or "the Docker engine"
        if swarm.get("LocalNodeState") != "active":
            raise SwarmError(
                f"{where} is not part of a swarm (state: {swarm.get('LocalNodeState') or 'inactive'})",
                hint="run `docker swarm init` on it, or point --host at a swarm manager",
            )
        if not swarm.get("ControlAvailable"):
            raise SwarmError(
                f"{where} is a swarm worker, not a manager: stacks are deployed through a manager",
                hint="point --host (or DOCKER_HOST) at a manager (`docker node ls` there shows which)",
            )
        self._checked = True

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._api("nodes", self.engine.client.api.nodes))

    def backend_nodes(self) -> list[dict[str, Any]]:
        key, _, value = self.settings.swarm.backend_label.partition("=")
        return [node for node in self.nodes() if node.get("Spec", {}).get("Labels", {}).get(key) == value]

    def _api(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        import docker

        try:
            return call(*args, **kwargs)
        except docker.errors.APIError as exc:
            raise api_error(exc, f"cannot list the swarm's {what}", self.settings) from None

    def services(self) -> dict[str, dict[str, Any]]:
        """The stack's services by component name."""
        found = self._api(
            "services", self.engine.client.api.services, filters={"label": f"{NAMESPACE_LABEL}={self.settings.project}"}
        )
        prefix = f"{self.settings.project}_"
        return {service["Spec"]["Name"].removeprefix(prefix): service for service in found}

    def tasks(self) -> dict[str, list[dict[str, Any]]]:
        """Every task of the stack (current and past), by component name."""
        services = self.services()
        by_id = {service["ID"]: name for name, service in services.items()}
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in services}
        if not services:
            return found
        listed = self._api(
            "tasks", self.engine.client.api.tasks, filters={"label": f"{NAMESPACE_LABEL}={self.settings.project}"}
        )
        for task in listed:
            name = by_id.get(task.get("ServiceID", ""))
            if name is not None:
                found[name].append(task)
        return found

    def node_names(self) -> dict[str, str]:
        return {node["ID"]: node.get("Description", {}).get("Hostname", node["ID"][:12]) for node in self.nodes()}

    def placement(self) -> dict[str, list[dict[str, str]]]:
        """Where each service's current tasks are: node name and task state (with Swarm's error)."""
        names = self.node_names()
        found: dict[str, list[dict[str, str]]] = {}
        for service, tasks in self.tasks().items():
            rows = []
            for task in tasks:
                if task.get("DesiredState") != "running":
                    continue
                status = task.get("Status", {})
                node = names.get(task.get("NodeID", ""), task.get("NodeID", "")[:12] or "-")
                rows.append({"node": node, "state": status.get("State", "unknown"), "error": status.get("Err", "")})
            found[service] = sorted(rows, key=lambda row: row["node"])
        return found

    # -- Runtime protocol ---------------------------------------------------------------------------

    def up(self, *, services: list[str] | None = None, pull: bool = True) -> None:
        if not self.backend_nodes():
            label = self.settings.swarm.backend_label
            raise SwarmError(
                f"no swarm node has the label {label}: the backends (and their volumes) have nowhere to run",
                hint=f"docker node update --label-add {label} <node> (or set swarm.backend_label in stack.yaml)",
            )
        out = swarm_dir(self.paths).resolve()
        write_swarm(render_swarm(self.settings, self.paths), out)
        argv = self.cli.docker(
            "stack",
            "deploy",
            "--compose-file",
            str(out / STACK_FILE),
            "--resolve-image",
            self.settings.swarm.resolve_image,
            "--prune",
            self.settings.project,
        )
        existing = self.services()
        # By spec, not by version: `stack deploy` bumps every service's version even when nothing changed.
        before = {name: service.get("Spec") for name, service in existing.items()}
        result = self.cli.execute(argv, timeout=300, cwd=str(out))
        if not result.ok:
            raise explain(result.stderr or result.stdout, self.settings, command=argv, action="docker stack deploy")
        # Only services that existed can be updating; new ones are the readiness wait's.
        changed = [
            name for name, service in self.services().items() if name in before and before[name] != service.get("Spec")
        ]
        self._wait_updates({name: existing[name].get("UpdateStatus") or {} for name in changed}, changed)
        self._prune_unused()

    def _wait_updates(self, before: dict[str, Any], names: list[str], timeout: float = UPDATE_TIMEOUT) -> None:
        """Until the rolling updates of the changed services `names` end (Swarm watches each new task
        for MONITOR first). `before` holds their UpdateStatus before the deploy: an update has ended
        when Swarm reports a new, final one; a service whose tasks fail is left to the readiness wait,
        which names their error; a change that replaces no task is over once its tasks run. An update
        Swarm rolled back is one clear error."""
        started = time.monotonic()

        def over(name: str, service: dict[str, Any] | None, tasks: list[dict[str, Any]]) -> bool:
            if service is None:
                return True
            status = service.get("UpdateStatus") or {}
            if status.get("State") in UPDATING:
                return False
            if status and status != before.get(name):
                return True
            state = service_state(name, service, tasks)
            return state.state in FAILED_STATES or (state.running and time.monotonic() - started > UPDATE_GRACE)

        def pending() -> list[str]:
            services, tasks = self.services(), self.tasks()
            return [name for name in names if not over(name, services.get(name), tasks.get(name, []))]

        waiting = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.5), retry=retry_if_result(bool))
        try:
            waiting(pending)
        except RetryError:
            raise SwarmError(
                f"the update of {', '.join(pending())} did not end within {timeout:g} s",
                hint=f"see `docker service ps {self.settings.project}_<service>` for its tasks' errors",
            ) from None
        services = self.services()
        for name in names:
            state = update_state(services.get(name))
            if state in FAILED_UPDATES:
                message = (services[name].get("UpdateStatus") or {}).get("Message", "")
                raise SwarmError(
                    f"the update of {name} failed and Swarm {FAILED_UPDATES[state]}: {message}",
                    hint=f"stack logs {name}; the previous version runs on",
                )

    def _prune_unused(self) -> None:
        """Remove the stack's configs and secrets no service uses any more (each change makes new ones)."""
        import docker

        label = {"label": f"{LABEL_PREFIX}.project={self.settings.project}"}
        used: set[str] = set()
        for service in self.services().values():
            spec = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
            used.update(ref.get("ConfigID", "") for ref in spec.get("Configs") or [])
            used.update(ref.get("SecretID", "") for ref in spec.get("Secrets") or [])
        api = self.engine.client.api
        stale = [(api.remove_config, item["ID"]) for item in api.configs(filters=label) if item["ID"] not in used]
        stale += [(api.remove_secret, item["ID"]) for item in api.secrets(filters=label) if item["ID"] not in used]
        for remove, ident in stale:
            # One still held by a task being replaced stays: the next deploy removes it.
            with contextlib.suppress(docker.errors.APIError):
                remove(ident)

    def down(self, *, volumes: bool = False, timeout: float = 30) -> None:
        if self.services():
            self.cli.run(self.cli.docker("stack", "rm", self.settings.project), action="docker stack rm")
        # `stack rm` returns at once; the containers (which hold the volumes) go in the background.
        self._wait_gone(timeout=max(timeout, 60))
        if volumes:
            import docker

            label = {"label": f"{NAMESPACE_LABEL}={self.settings.project}"}
            for volume in self.engine.client.volumes.list(filters=label):
                try:
                    volume.remove()
                except docker.errors.APIError as exc:
                    raise api_error(exc, f"cannot remove volume {volume.name}", self.settings) from None

    def _containers(self, service: str | None = None, *, all: bool = False) -> list[Any]:
        label = (
            f"{SERVICE_LABEL}={self.settings.project}_{service}"
            if service
            else f"{NAMESPACE_LABEL}={self.settings.project}"
        )
        return list(self.engine.client.containers.list(all=all, filters={"label": label}))

    def _wait_gone(self, *, timeout: float) -> None:
        waiting = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.5), retry=retry_if_result(bool))
        try:
            waiting(lambda: self._containers(all=True) or self._stack_networks())
        except RetryError:
            raise SwarmError(
                f"the stack's containers were still there {timeout:g} s after `docker stack rm`",
                hint=f"see `docker stack ps {self.settings.project}`, then run `stack down` again",
            ) from None

    def _stack_networks(self) -> list[Any]:
        return list(self.engine.client.networks.list(filters={"label": f"{NAMESPACE_LABEL}={self.settings.project}"}))

    def _scale(self, services: list[str], replicas: int) -> None:
        from stack.components import REGISTRY

        for name in services:
            if REGISTRY[name].swarm_global:
                raise SwarmError(f"{name} runs on every node (a global service): it cannot be stopped alone")
        pairs = [f"{self.settings.project}_{name}={replicas}" for name in services]
        self.cli.run(self.cli.docker("service", "scale", "--detach=false", *pairs), action="docker service scale")

    def stop(self, services: list[str], *, timeout: float = 30) -> None:
        self._scale(services, 0)
        # Scaled to 0, the task's container stops; wait for that, so the volume is free.
        waiting = Retrying(stop=stop_after_delay(max(timeout, 30)), wait=wait_fixed(0.3), retry=retry_if_result(bool))
        try:
            waiting(lambda: [c for name in services for c in self._containers(name)])
        except RetryError:
            raise SwarmError(f"{', '.join(services)} did not stop within {timeout:g} s") from None

    def start(self, services: list[str]) -> None:
        self._scale(services, 1)

    def checked_ps(self) -> list[ServiceState]:
        # In turn, unlike the compose runtime it builds on: both share one SDK client, made on first use.
        self.check()
        return self.ps()

    def ps(self) -> list[ServiceState]:
        services = self.services()
        tasks = self.tasks()
        found = [service_state(name, services.get(name), tasks.get(name, [])) for name in self.settings.enabled()]
        for extra in sorted(set(services) - set(self.settings.enabled())):
            found.append(service_state(extra, services[extra], tasks.get(extra, [])))
        return found

    def logs(
        self, service: str | None = None, *, tail: int | None = None, follow: bool = False, since: str | None = None
    ) -> Iterator[str]:
        names = [service] if service else [name for name in self.settings.enabled() if name in self.services()]
        if len(names) == 1:
            yield from self._service_logs(
                names[0], tail=tail, follow=follow, since=since, prefix="" if service else f"{names[0]} | "
            )
            return
        read = functools.partial(self._service_logs, tail=tail, follow=follow, since=since)
        streams = {name: functools.partial(read, name, prefix=f"{name} | ") for name in names}
        yield from interleaved(streams)

    def _service_logs(
        self, service: str, *, tail: int | None, follow: bool, since: str | None, prefix: str
    ) -> Iterator[str]:
        argv = self.cli.docker("service", "logs", "--no-task-ids", "--no-trunc", "--raw")
        if tail is not None:
            argv += ["--tail", str(tail)]
        if follow:
            argv.append("--follow")
        if since:
            argv += ["--since", since]
        argv.append(f"{self.settings.project}_{service}")
        for line in self.cli.stream(argv, action="docker service logs"):
            yield prefix + line

    # -- containers on this engine --------------------------------------------------------------------

    def _container_id(self, service: str) -> str:
        running = self._containers(service)
        if running:
            return str(running[0].id)
        raise SwarmError(
            f"{service} has no running task on this engine ({self.describe()})",
            hint="run the command against the engine of the node it runs on (--host), or `stack up` first",
        )

    def _http_inside(self, service: str, port: str, path: str, **kwargs: Any) -> HttpReply:
        try:
            return super()._http_inside(service, port, path, **kwargs)
        except SwarmError as exc:
            # No task running yet is, to a probe, nothing answering yet.
            raise ConnectionError(exc.message) from None

    def _exec_argv(self, service: str) -> list[str]:
        return self.cli.docker("exec", "-i", self._container_id(service))

    def replace_state(self, service: str, path: str, archive: IO[bytes]) -> None:
        """Replace the service's volume at `path` (the service is scaled to 0): the volume is removed, a
        new one of the same name is made and filled through a container that is created, never started,
        from the service's image; the next task mounts it. Volumes live on the backend node: this engine
        must be that node's."""
        import docker

        from stack.components import REGISTRY

        if self._containers(service):
            raise SwarmError(f"{service} is running: its state cannot be replaced", hint=f"stack stop {service}")
        key = next((key for key, mounted in REGISTRY[service].state.items() if mounted == path), None)
        spec = self.services().get(service, {}).get("Spec", {})
        image = ImageRef.parse(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")).tagged
        if key is None or not image:
            raise SwarmError(f"{service}: {path} is not a volume of its service: its state cannot be replaced")
        volume = f"{self.settings.project}_{service}-{key}"
        try:
            labels = self.engine.client.volumes.get(volume).attrs.get("Labels") or {}
        except docker.errors.NotFound:
            raise SwarmError(
                f"{service}: its volume {volume} is not on this engine ({self.describe()})",
                hint="run restore against the backend node's engine (--host)",
            ) from None
        try:
            # Stopped containers of the service's past tasks still hold the volume.
            for container in self._containers(service, all=True):
                container.remove()
            self.engine.client.volumes.get(volume).remove()
        except docker.errors.APIError as exc:
            raise SwarmError(f"{service}: cannot remove its volume {volume}: {exc.explanation or exc}") from None
        try:
            self.engine.client.volumes.create(name=volume, labels=labels)
            helper = self.engine.client.containers.create(image, volumes={volume: {"bind": path, "mode": "rw"}})
            try:
                if not helper.put_archive(path, archive):
                    raise SwarmError(f"{service}: the engine refused the archive for {path}")
            finally:
                helper.remove(force=True)
        except (docker.errors.APIError, StackError) as exc:
            message = exc.message if isinstance(exc, StackError) else str(exc.explanation or exc)
            raise StackError(
                f"{service}: {message}; its previous state was already removed",
                hint="the archive is intact: run the restore again",
            ) from None

    def describe(self) -> str:
        return "swarm " + super().describe().removeprefix("docker ")

    def command_line(self, *args: str) -> str:
        return shlex.join(self.cli.docker("stack", *args))
