"""How a component runs as a local process (the process runtime) rather than in its image.

The runtime carries the container's command, environment and configs over to this machine; what a
process needs beyond that (listen addresses, which in a container are the image's defaults, data
directories, file references) each component adds in `Component.adapt_process`, through the
`LocalProcess` it is handed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from stack.yamlio import dumps

LOOPBACK = "127.0.0.1"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# `address(port name)` -> `host:port` the component's port listens on here (`[::1]:3000`).
Address = Callable[[str], str]


@dataclass(frozen=True)
class BinarySpec:
    """The program that runs a component as a local process, and how to get it."""

    # Names tried in order, each with the arguments that come before the flags (Grafana's `server`).
    names: tuple[tuple[str, tuple[str, ...]], ...]
    version_flag: str
    # How to get it: what a missing binary's message says.
    get_it: str
    # Its config and flags are rendered for the version of the binary found (RenderContext.versions).
    renders_for_version: bool = False
    # The stack builds it itself (`make collector`, stack.collector_build): that build comes before PATH.
    own_build: bool = False


class LocalProcess(Protocol):
    """One component's process as planned: what `adapt_process` may change before it starts."""

    component: str
    argv: list[str]
    env: dict[str, str]
    # Its own directory (the working directory; its state directories are under it).
    cwd: Path
    # File -> content, written before start: the rendered configs at their local paths.
    files: dict[Path, str]
    # Directories created before start.
    dirs: list[Path]
    # (port name, host, port) the process listens on.
    listen: list[tuple[str, str, int]]


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _set_in_configs(process: LocalProcess, values: dict[str, Any]) -> None:
    """In each `config.*` YAML file of the process, set each dotted key to its value."""
    for path, content in list(process.files.items()):
        if not path.name.startswith("config."):
            continue
        config = yaml.load(content, Loader=_LOADER)
        for key, value in values.items():
            _set(config, key, value)
        process.files[path] = dumps(config)


def set_addresses(process: LocalProcess, address: Address, keys: dict[str, str]) -> None:
    """In each `config.*` YAML file, set each dotted key to the `host:port` of one of its own ports
    here (`frontend.scheduler_address` -> `grpc`): where a component reaches itself."""
    _set_in_configs(process, {key: address(port) for key, port in keys.items()})


def set_listen_hosts(process: LocalProcess, address: Address, keys: dict[str, str]) -> None:
    """In each `config.*` YAML file, set each dotted key to the host its port listens on here
    (`server.http_listen_address` -> `http`); a key mapped to "" listens on the loopback."""
    hosts = {key: address(port).rpartition(":")[0] if port else LOOPBACK for key, port in keys.items()}
    _set_in_configs(process, hosts)
