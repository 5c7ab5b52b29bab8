"""What each local process runs: its command, environment and files, from the rendered project.

The same renderer as for Docker runs with a `LocalTopology` (service names become 127.0.0.1,
container ports become the published port, or a port assigned on this machine); then each
service's command, environment and config files are carried over from container paths to the
project's directory (paths.PathMap), and each component adapts what a process needs beyond that.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack.components import REGISTRY
from stack.components.base import RenderContext
from stack.errors import StackError
from stack.render import render_project
from stack.runtime.process.binaries import binary_names
from stack.runtime.process.paths import RENDERED_DIR, PathMap, config_top, resolve
from stack.runtime.process.topology import LocalTopology, listen_host
from stack.settings import Settings
from stack.units import parse_size
from stack.yamlio import dumps

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WILDCARDS = ("0.0.0.0", "::", "[::]")


@dataclass
class ProcessPlan:
    """How to run one component as a process."""

    component: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    # File -> content; written before start (configs) with their mode.
    files: dict[Path, str]
    dirs: list[Path]
    # (port name, host, port) the process listens on.
    listen: list[tuple[str, str, int]]
    paths: PathMap
    config_dir: Path
    config_hash: str = field(default="")

    def compute_hash(self) -> str:
        payload = json.dumps(
            {"argv": self.argv, "env": self.env, "files": {str(k): v for k, v in sorted(self.files.items())}},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def _walk(data: Any, change: Callable[[Any], Any]) -> Any:
    data = change(data)
    if isinstance(data, dict):
        return {key: _walk(value, change) for key, value in data.items()}
    if isinstance(data, list):
        return [_walk(item, change) for item in data]
    return data


_LISTENER = re.compile(r"^(?:0\.0\.0\.0|::|\[::\])?:(\d+)$")


def _adapt_config(content: str, target: str, paths: PathMap, listen: Mapping[int, str]) -> str:
    """Container paths and listeners on every interface (`0.0.0.0:<port>`, `:<port>`) in a YAML or
    JSON config, made local."""
    mentions_path = any(prefix in content for prefix, _ in paths.prefixes)
    mentions_listener = any(w in content for w in WILDCARDS) or re.search(r"[\"' ]:\d+", content)
    if not mentions_path and not mentions_listener:
        return content  # most rule files: nothing to change, no need to parse them
    is_json = target.endswith(".json")
    try:
        data = json.loads(content) if is_json else yaml.load(content, Loader=_LOADER)
    except (ValueError, yaml.YAMLError):
        return content

    def change(value: Any) -> Any:
        if isinstance(value, str):
            found = _LISTENER.match(value)
            if found and int(found.group(1)) in listen:
                return listen[int(found.group(1))]
            return paths.value(value)
        if isinstance(value, dict) and value.get("host") in WILDCARDS and value.get("port") in listen:
            host, _, port = listen[value["port"]].rpartition(":")
            return {**value, "host": host, "port": int(port)}
        return value

    adapted = _walk(data, change)
    if adapted == data:
        return content
    return json.dumps(adapted, indent=2, sort_keys=True) + "\n" if is_json else dumps(adapted)


# Passed through from the user's environment; anything else (GF_*, OTEL_*...) could silently change
# a component's configuration, as it cannot in a container.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")


def base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {key: environ[key] for key in _PASSED_ENV if key in environ}


def plan_processes(
    settings: Settings,
    root: Path,
    secrets_dir: Path,
    ports: Mapping[str, Mapping[str, int]],
    binaries: Mapping[str, tuple[str, tuple[str, ...]]],
    environ: Mapping[str, str],
    *,
    secret_env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    versions: Mapping[str, str] | None = None,
) -> dict[str, ProcessPlan]:
    """A plan for every enabled component in `binaries` (component -> (path, prefix arguments)).

    `secret_env` holds the values of secrets compose would read from its environment (defaults
    to `environ`); `base_dir` resolves relative `file:` secrets; `versions` are the binaries'
    versions, which the configs are rendered for.
    """
    topology = LocalTopology(ports, settings)
    project = render_project(settings, RenderContext(settings=settings, topology=topology, versions=versions or {}))
    services: dict[str, Any] = project.compose["services"]
    secret_sources: dict[str, dict[str, str]] = project.compose.get("secrets", {})
    secret_values = {**environ, **(secret_env or {})}
    plans: dict[str, ProcessPlan] = {}
    for name, service in services.items():
        if name not in binaries:
            continue
        component = REGISTRY[name]
        home = root / name
        config_dir = home / RENDERED_DIR
        prefixes: list[tuple[str, Path]] = []
        # Every named volume of the service (its state, and others such as Prometheus' file_sd
        # target directory) becomes a directory of its own under the component's home.
        volumes = dict(component.state)
        for entry in service.get("volumes", []):
            source, _, rest = str(entry).partition(":")
            if source.startswith(f"{name}-") and rest:
                volumes.setdefault(source.removeprefix(f"{name}-"), rest.split(":")[0])
        for key, container_path in volumes.items():
            prefixes.append((container_path, home / key))
        configs = project.configs.get(name, [])
        for config in configs:
            top = config_top(config.target)
            prefixes.append((top, config_dir / top.lstrip("/")))
        files: dict[Path, str] = {}
        stored = component.stored_secrets()
        for entry in service.get("secrets", []):
            secret, secret_source = entry["source"], secret_sources.get(entry["source"], {})
            container_path = f"/run/secrets/{entry.get('target', secret)}"
            if secret in stored:
                # Read where the project keeps it; absolute: the process runs in its own directory.
                prefixes.append((container_path, secrets_dir.absolute() / stored[secret]))
            elif "file" in secret_source:
                prefixes.append((container_path, resolve(base_dir, secret_source["file"])))
            else:
                variable = secret_source.get("environment", "")
                if not secret_values.get(variable):
                    raise StackError(
                        f"{name}: secret {secret!r} comes from the environment variable {variable}, which is not set",
                        hint=f"export {variable}=... before running stack",
                    )
                local = config_dir / "run" / "secrets" / secret
                prefixes.append((container_path, local))
                files[local] = secret_values[variable]
        paths = PathMap.of(prefixes)

        def address(port: str, name: str = name) -> str:
            host = listen_host(settings, name, port)
            return f"{'[' + host + ']' if ':' in host else host}:{ports[name][port]}"

        # Listeners appear in configs on every interface with the container port (bundled files) or
        # with the port the topology gave (rendered values): both become this machine's address.
        listen_by_port = {spec.container: address(spec.name) for spec in component.ports}
        listen_by_port.update({ports[name][spec.name]: address(spec.name) for spec in component.ports})
        for config in configs:
            target = paths.local(config.target)
            assert target is not None
            files[target] = _adapt_config(config.content, config.target, paths, listen_by_port)
        env = base_environment(environ)
        # No cgroup limit for a process: the memory setting becomes the Go runtime's soft limit.
        env["GOMEMLIMIT"] = f"{int(parse_size(settings.component(name).memory) * 0.9 / 1024**2)}MiB"
        for key, value in service.get("environment", {}).items():
            env[key] = paths.value(str(value).replace("$$", "$"))
        path, prefix = binaries[name]
        command = [str(arg) for arg in service.get("command", [])]
        if command and not command[0].startswith("-") and command[0] in {Path(path).name, *binary_names(name)}:
            command = command[1:]  # the image's entry point repeated in `command:` (Caddy's)
        plan = ProcessPlan(
            component=name,
            argv=[path, *prefix, *(paths.value(arg) for arg in command)],
            env=env,
            cwd=home,
            files=files,
            dirs=[home / key for key in volumes],
            listen=[
                (spec.name, listen_host(settings, name, spec.name), ports[name][spec.name])
                for spec in component.listening(settings)
            ],
            paths=paths,
            config_dir=config_dir,
        )
        component.adapt_process(plan, address)
        plan.config_hash = plan.compute_hash()
        plans[name] = plan
    return plans
