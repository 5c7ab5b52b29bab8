"""Where each local component listens, and how the others reach it, when all run on this machine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stack.components import REGISTRY
from stack.net.address import url_host
from stack.settings import Settings

LOOPBACK = "127.0.0.1"


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
