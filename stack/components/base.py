"""The shared interface of a component: what it renders, how it is probed, what state it keeps.

A component module defines one `Component` subclass; `stack.components.REGISTRY` lists them. Adding
a component means adding a module and a row there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from packaging.version import Version

from stack.imageref import ImageRef
from stack.resources import bundled
from stack.settings import ComponentSettings, Settings
from stack.yamlio import deep_merge, dumps, load_file

if TYPE_CHECKING:
    from stack.components.process import Address, BinarySpec, LocalProcess


@dataclass(frozen=True)
class PortSpec:
    """A port the component listens on inside its container (or as a local process)."""

    name: str
    container: int
    # The settings field that publishes it (`port`, `otlp_grpc_port`), or None: never published.
    setting: str | None = None


@dataclass(frozen=True)
class Probe:
    """An HTTP endpoint on one of the component's ports."""

    port: str
    path: str


@dataclass(frozen=True)
class ReadyAnswer:
    """What a 200 answer of the readiness probe says (some components answer 200 before they are usable)."""

    ready: bool
    detail: str = "ok"
    version: str | None = None


@dataclass(frozen=True)
class EndpointSpec:
    """A URL users or their applications need, listed after `up` when the port is reachable."""

    port: str
    label: str
    # Where it is listed: the UI users open first, then the backends, then where applications send.
    rank: int


@dataclass(frozen=True)
class ConfigFile:
    """A file the component reads: compose `configs:` entry `name`, mounted at `target`."""

    name: str
    target: str
    content: str


@dataclass(frozen=True)
class SecretMount:
    """A compose secret: `source` is its top-level definition ({environment: VAR} or {file: PATH})."""

    name: str
    source: dict[str, str]

    @property
    def target(self) -> str:
        return f"/run/secrets/{self.name}"


class Topology(Protocol):
    """How components reach each other: service names in compose, 127.0.0.1 for local processes."""

    # `port` matters to local processes, whose ports listen on different addresses.
    def host(self, component: str, port: str | None = None) -> str: ...

    def port(self, component: str, port: str) -> int: ...


@dataclass(frozen=True)
class ComposeTopology:
    """Inside a compose network: the service name and the container port."""

    def host(self, component: str, port: str | None = None) -> str:
        return component

    def port(self, component: str, port: str) -> int:
        from stack.components import get_component  # the registry imports this module

        return get_component(component).port_spec(port).container


@dataclass(frozen=True)
class SwarmTopology(ComposeTopology):
    """A Swarm stack: service names on the stack's overlay network, as in compose; components that
    read the engine (discovery, container logs) render for Swarm when they see this topology."""


@dataclass(frozen=True)
class RenderContext:
    settings: Settings
    topology: Topology = field(default_factory=ComposeTopology)
    # The version of the program that will read a component's configs, when it is not the pinned
    # image's: the process runtime's binaries (Debian's Prometheus is 2.42, the pin 3.x).
    versions: Mapping[str, str] = field(default_factory=dict)

    def enabled(self, name: str) -> bool:
        return self.settings.component(name).enabled

    def version(self, component: str) -> Version | None:
        """The version `component`'s configs are rendered for: the binary's, else the image tag's."""
        text = self.versions.get(component) or ImageRef.parse(self.settings.component(component).image).release
        return Version(text) if text else None

    def address(self, component: str, port: str) -> str:
        """`host:port` of `component`'s `port` as seen from another component."""
        return f"{self.topology.host(component, port)}:{self.topology.port(component, port)}"

    def url(self, component: str, port: str, path: str = "") -> str:
        return f"http://{self.address(component, port)}{path}"


@cache
def _bundled_yaml(tree: str, relative: str) -> Any:
    return load_file(bundled(tree) / relative).data


def bundled_config(relative: str, *, tree: str = "configs") -> Any:
    """A fresh copy of a bundled YAML file (under `configs/` unless `tree` says otherwise), as data."""
    return copy.deepcopy(_bundled_yaml(tree, relative))


@dataclass(frozen=True)
class Requirement:
    """A setting that makes this component's rendered config use a field only newer versions read."""

    feature: str
    minimum: str
    # The dotted settings key that asked for it (what the error names).
    setting: str


class Component:
    """One component of the stack. Subclasses set the class attributes and override `configs`."""

    name: str
    title: str
    # Images without a shell cannot run an in-container healthcheck; they are probed from outside.
    has_shell: bool = False
    # Whether the image ships curl (every HTTP method) besides busybox wget (GET and POST only): requests
    # made from inside the project's network use it when the request goes through this component.
    has_curl: bool = False
    ports: tuple[PortSpec, ...] = ()
    readiness: Probe
    metrics: Probe | None = None
    # Named state of the component: volume key -> path inside the container.
    state: dict[str, str] = {}
    # On Swarm: one task on every node (an agent), rather than one replica on the backend node.
    swarm_global: bool = False
    # Set when it does not run on Swarm: (what is wrong, what to do instead), said in one line.
    swarm_refusal: tuple[str, str] | None = None
    # The program that runs it as a local process (the process runtime).
    binary: BinarySpec
    # The URLs `up` lists for this component, and the port whose URL `status` shows (the readiness
    # probe's unless set).
    endpoints: tuple[EndpointSpec, ...] = ()
    status_port: str | None = None
    # Provisioned over its HTTP API once ready (the `provisioner` of `up` and `restore`).
    provisioned: bool = False
    # The secret-store name of the admin password the stack generates for it (`up` names the file).
    admin_password: str | None = None

    def shown_port(self) -> str:
        """The port whose URL `status` shows."""
        return self.status_port or self.readiness.port

    def ready_answer(self, body: bytes) -> ReadyAnswer:
        """Whether a 200 answer of the readiness probe (its body) means ready."""
        return ReadyAnswer(True)

    def public_urls(self, settings: Settings) -> list[tuple[str, str]]:
        """(label, URL) of addresses users open that are no published port of a component, listed first."""
        return []

    def unpublished_note(self, settings: Settings) -> str:
        """Why the port `status` shows has no URL on purpose, and where to look instead ("" if that is no choice)."""
        return ""

    def port_spec(self, name: str) -> PortSpec:
        for spec in self.ports:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no port {name!r}")

    def settings(self, ctx: RenderContext) -> ComponentSettings:
        return ctx.settings.component(self.name)

    def published(self, settings: Settings) -> list[tuple[PortSpec, int]]:
        """The ports published on the host, with their host port numbers."""
        comp = settings.component(self.name)
        found = []
        for spec in self.ports:
            if spec.setting and getattr(comp, spec.setting) is not None:
                found.append((spec, getattr(comp, spec.setting)))
        return found

    def listening(self, settings: Settings) -> tuple[PortSpec, ...]:
        """The ports it listens on with these settings: all of them, unless one belongs to a
        receiver that is switched off (a local process is watched until each of these answers)."""
        return self.ports

    def host_ip(self, settings: Settings) -> str:
        """The host address its published ports listen on."""
        return settings.bind_address

    def port_host_ip(self, settings: Settings, spec: PortSpec) -> str:
        """The host address one published port listens on: `host_ip` unless a port has its own."""
        return self.host_ip(settings)

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        """The files this component reads, rendered for `ctx`."""
        raise NotImplementedError

    def environment(self, ctx: RenderContext) -> dict[str, str]:
        """Environment variables beyond the base compose definition."""
        return {}

    def command_flags(self, ctx: RenderContext) -> list[str]:
        """Command-line flags beyond the base compose definition (settings-dependent)."""
        return []

    def mounts(self, ctx: RenderContext) -> list[str]:
        """Bind mounts (`host:container[:ro]`) the rendered config needs, e.g. Docker's log directory."""
        return []

    def user(self, ctx: RenderContext) -> str | None:
        """The user to run as when the image's default cannot read what it must, else None."""
        return None

    def secrets(self, ctx: RenderContext) -> list[SecretMount]:
        """Secrets mounted at /run/secrets/<name> (values never in the rendered files)."""
        return []

    def swarm_constraints(self, ctx: RenderContext) -> list[str]:
        """Placement constraints on Swarm beyond the backend label (agents, being global, have none)."""
        return []

    def stored_secrets(self) -> dict[str, str]:
        """Its secrets whose value the project generates and keeps itself (stack.secrets.SecretStore):
        compose secret name -> stored name. A local process reads the stored 0600 file where it is,
        so the value is never copied (the process runtime)."""
        return {}

    def requirements(self, settings: Settings) -> list[Requirement]:
        """What the settings need of this component's version (checked by validate and before start)."""
        return []

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        """What running as a local process (the process runtime) needs beyond the container's
        command, environment and configs, which are carried over already: listen addresses mostly,
        which inside a container are the image's defaults."""

    def with_overrides(self, ctx: RenderContext, config: Any) -> str:
        """Deep-merge the user's `overrides` into `config` and dump it."""
        return dumps(deep_merge(config, self.settings(ctx).overrides))
