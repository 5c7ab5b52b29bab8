"""The rendered project, for local processes: every component on 127.0.0.1 at its own port.

The same renderer as for Docker runs with a `LocalTopology` (service names become 127.0.0.1,
container ports become the published port, or a port assigned on this machine); then each
service's command, environment and config files are carried over from container paths to the
project's directory: a config at `/etc/prometheus/x.yml` goes to `<root>/prometheus/rendered/etc/
prometheus/x.yml`, the `data` volume mounted at `/prometheus` becomes `<root>/prometheus/data`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from stack.components import REGISTRY
from stack.components.base import RenderContext
from stack.errors import StackError
from stack.netaddr import url_host
from stack.render import GRAFANA_SECRET, render_project
from stack.runtime.binaries import binary_names
from stack.secrets import GRAFANA_ADMIN_PASSWORD
from stack.settings import Settings
from stack.units import parse_size
from stack.yamlio import dumps

LOOPBACK = "127.0.0.1"
# Regenerated at every start; a name no component uses for its state.
RENDERED_DIR = "rendered"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WILDCARDS = ("0.0.0.0", "::", "[::]")


def listen_host(settings: Settings, component: str, port: str) -> str:
    """Published ports listen on the component's host address (bind_address); others on 127.0.0.1."""
    published = {spec.name: spec for spec, _ in REGISTRY[component].published(settings)}
    return REGISTRY[component].port_host_ip(settings, published[port]) if port in published else LOOPBACK


def connect_host(settings: Settings, component: str, port: str) -> str:
    """Where another process on this machine reaches `component`'s `port`: the address it listens
    on, in URL form. `::1` and `::` are reached at [::1]: 127.0.0.1 does not reach a port bound to
    [::1] only (Prometheus scraped, and sent alerts to, an Alertmanager it could not reach)."""
    host = listen_host(settings, component, port)
    if host in ("0.0.0.0", "localhost"):
        return LOOPBACK
    if host.startswith("127."):
        return host
    return url_host(host)


@dataclass(frozen=True)
class LocalTopology:
    """Components reach each other on this machine: 127.0.0.1 (or the specific address a published
    port listens on) at the port given to them here."""

    ports: Mapping[str, Mapping[str, int]]
    settings: Settings | None = None

    def host(self, component: str, port: str | None = None) -> str:
        if self.settings is None or port is None or not self.settings.component(component).enabled:
            return LOOPBACK
        return connect_host(self.settings, component, port)

    def port(self, component: str, port: str) -> int:
        given = self.ports.get(component, {}).get(port)
        # Disabled components are asked about too (before their references are pruned).
        return given if given is not None else REGISTRY[component].port_spec(port).container


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (as a server would bind it: SO_REUSEADDR on)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def assign_ports(
    settings: Settings,
    previous: Mapping[str, Mapping[str, int]],
    keep: set[str],
    avoid: set[int] | None = None,
) -> dict[str, dict[str, int]]:
    """The port of every port of every enabled component.

    Published ports are the configured ones. The others keep the port they had (`previous`) when
    their component still runs (`keep`) or the port is still free, else take the container port when
    free, else any free port; never a port in `avoid`.
    """
    ports: dict[str, dict[str, int]] = {}
    used: set[int] = set(avoid or ())
    for name in settings.enabled():
        for spec, host_port in REGISTRY[name].published(settings):
            ports.setdefault(name, {})[spec.name] = host_port
            used.add(host_port)
    for name in settings.enabled():
        for spec in REGISTRY[name].ports:
            if spec.name in ports.get(name, {}):
                continue
            before = previous.get(name, {}).get(spec.name)
            chosen: int | None = None
            if before is not None and before not in used and (name in keep or port_free(LOOPBACK, before)):
                chosen = before
            elif spec.container not in used and port_free(LOOPBACK, spec.container):
                chosen = spec.container
            while chosen is None or chosen in used:
                chosen = any_free_port()
            ports.setdefault(name, {})[spec.name] = chosen
            used.add(chosen)
    return ports


@dataclass(frozen=True)
class PathMap:
    """Container paths of one component -> paths on this machine (longest prefix first)."""

    prefixes: tuple[tuple[str, Path], ...]

    def local(self, container_path: str) -> Path | None:
        for prefix, local in self.prefixes:
            if container_path == prefix:
                return local
            if container_path.startswith(prefix.rstrip("/") + "/"):
                return local / container_path[len(prefix.rstrip("/")) + 1 :]
        return None

    def value(self, text: str) -> str:
        """A value that may be a container path, or `--flag=PATH`."""
        found = self.local(text)
        if found is not None:
            return str(found)
        flag, equals, rest = text.partition("=")
        if equals and flag.startswith("-"):
            found = self.local(rest)
            if found is not None:
                return f"{flag}={found}"
        return text


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


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


# Per component: what a process needs beyond the container's command (listen addresses mostly,
# which inside a container are the image's defaults).
def _prometheus(plan: ProcessPlan, address: Callable[[str], str]) -> None:
    plan.argv.append(f"--web.listen-address={address('http')}")


def _alertmanager(plan: ProcessPlan, address: Callable[[str], str]) -> None:
    plan.argv.append(f"--web.listen-address={address('http')}")


def _server_addresses(names: dict[str, str]) -> Callable[[ProcessPlan, Callable[[str], str]], None]:
    def adapt(plan: ProcessPlan, address: Callable[[str], str]) -> None:
        for path, content in list(plan.files.items()):
            if not path.name.startswith("config."):
                continue
            config = yaml.load(content, Loader=_LOADER)
            for key, port in names.items():
                _set(config, key, address(port).rpartition(":")[0] if port else LOOPBACK)
            plan.files[path] = dumps(config)

    return adapt


def file_references(env: dict[str, str]) -> dict[str, str]:
    """`GF_<KEY>__FILE=/path` (the Docker image's run.sh reads the file into `GF_<KEY>`) as the
    Grafana binary understands it: `GF_<KEY>=$__file{/path}`, which Grafana expands after applying
    the environment. The secret stays in its 0600 file, never in the environment or an argv."""
    changed = {}
    for key, value in env.items():
        if key.startswith("GF_") and key.endswith("__FILE"):
            changed[key.removesuffix("__FILE")] = f"$__file{{{Path(value).absolute()}}}"
        else:
            changed[key] = value
    return changed


def _grafana(plan: ProcessPlan, address: Callable[[str], str]) -> None:
    plan.env = file_references(plan.env)
    host, _, port = address("http").rpartition(":")
    data = plan.cwd / "data"
    plan.env.update(
        {
            "GF_SERVER_HTTP_ADDR": host,
            "GF_SERVER_HTTP_PORT": port,
            "GF_PATHS_DATA": str(data),
            "GF_PATHS_LOGS": str(plan.cwd / "logs"),
            "GF_PATHS_PLUGINS": str(data / "plugins"),
        }
    )
    plan.dirs.append(plan.cwd / "logs")
    # Grafana finds its home (conf/defaults.ini, public/) beside a tarball's bin/; distribution
    # packages put the binary elsewhere and the home in /usr/share/grafana.
    exe = Path(plan.argv[0])
    packaged = Path("/usr/share/grafana")
    if not (exe.parent.parent / "conf" / "defaults.ini").exists() and (packaged / "conf" / "defaults.ini").exists():
        plan.argv.append(f"--homepath={packaged}")


def _proxy(plan: ProcessPlan, address: Callable[[str], str]) -> None:
    # The image points Caddy's storage (certificates, ACME account) at /data and /config.
    plan.env.update({"XDG_DATA_HOME": str(plan.cwd / "data"), "XDG_CONFIG_HOME": str(plan.cwd / "config")})
    ports = {name: int(number) for name, _, number in plan.listen}
    for path, content in list(plan.files.items()):
        if path.suffix != ".json":
            continue
        config = json.loads(content)
        http = config.get("apps", {}).get("http", {})
        # Redirects and certificates name the ports the world uses: the published ones.
        if "https" in ports:
            http["https_port"] = ports["https"]
        if "http" in ports:
            http["http_port"] = ports["http"]
        plan.files[path] = json.dumps(config, indent=2, sort_keys=True) + "\n"


_ADAPTERS: dict[str, Callable[[ProcessPlan, Callable[[str], str]], None]] = {
    "proxy": _proxy,
    "prometheus": _prometheus,
    "alertmanager": _alertmanager,
    "loki": _server_addresses(
        {"server.http_listen_address": "http", "server.grpc_listen_address": "grpc"},
    ),
    "tempo": _server_addresses({"server.http_listen_address": "http", "server.grpc_listen_address": ""}),
    "grafana": _grafana,
}

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
            top = PurePosixPath(*PurePosixPath(config.target).parts[:3])
            prefixes.append((str(top), config_dir / str(top).lstrip("/")))
        files: dict[Path, str] = {}
        for entry in service.get("secrets", []):
            secret, secret_source = entry["source"], secret_sources.get(entry["source"], {})
            container_path = f"/run/secrets/{entry.get('target', secret)}"
            if secret == GRAFANA_SECRET:
                # Absolute: the process runs in its own directory, not the CLI's.
                prefixes.append((container_path, secrets_dir.absolute() / GRAFANA_ADMIN_PASSWORD))
            elif "file" in secret_source:
                prefixes.append((container_path, _resolve(base_dir, secret_source["file"])))
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
        paths = PathMap(tuple(sorted(set(prefixes), key=lambda item: -len(item[0]))))

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
                (spec.name, listen_host(settings, name, spec.name), ports[name][spec.name]) for spec in component.ports
            ],
            paths=paths,
            config_dir=config_dir,
        )
        adapter = _ADAPTERS.get(name)
        if adapter:
            adapter(plan, address)
        plan.config_hash = plan.compute_hash()
        plans[name] = plan
    return plans


def _resolve(base: Path | None, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else (base / path).absolute()


def read_log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (reading only its end)."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        block = min(size, max(65536, lines * 400))
        handle.seek(size - block)
        text = handle.read().decode("utf-8", errors="replace")
        return text.splitlines()[-lines:] if lines else []
    return []
