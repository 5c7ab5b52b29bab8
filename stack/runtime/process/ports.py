"""The ports of local components: given out at `up`, checked free before a start, their owner named
when another program holds one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import psutil

from stack.components import REGISTRY
from stack.errors import StackError
from stack.net.ports import LOOPBACK, free_port, port_free
from stack.settings import Settings

if TYPE_CHECKING:
    from stack.runtime.process.plan import ProcessPlan


class PortInUse(StackError):
    """A port a component must listen on is taken by another program."""


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
                chosen = free_port()
            ports.setdefault(name, {})[spec.name] = chosen
            used.add(chosen)
    return ports


def published_names(settings: Settings, component: str) -> set[str]:
    """The names of `component`'s ports that stack.yaml publishes (their numbers are the user's)."""
    return {spec.name for spec, _ in REGISTRY[component].published(settings)}


def taken_assigned_ports(settings: Settings, plans: Iterable[ProcessPlan]) -> set[int]:
    """The ports this runtime chose for `plans` that another program has taken since."""
    return {
        port
        for plan in plans
        for port_name, host, port in plan.listen
        if port_name not in published_names(settings, plan.component) and not port_free(host, port)
    }


def check_free(settings: Settings, plans: Iterable[ProcessPlan]) -> None:
    """PortInUse, naming the program and the setting, for the first port of `plans` that is taken."""
    for plan in plans:
        for port_name, host, port in plan.listen:
            if port_free(host, port):
                continue
            spec = REGISTRY[plan.component].port_spec(port_name)
            published = port_name in published_names(settings, plan.component)
            setting = f"components.{plan.component}.{spec.setting}" if spec.setting and published else None
            owner = port_owner(port) or "another program"
            where = f" ({setting})" if setting else ""
            raise PortInUse(
                f"{plan.component}: port {port} on {host}{where} is already in use by {owner}",
                hint=f"stop that program, or set {setting} to a free port in stack.yaml"
                if setting
                else "stop that program and run again",
            )


def port_owner(port: int) -> str | None:
    """`pid N (name)` of the process listening on TCP `port`, when this user may see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    listeners = [c for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
    if not listeners:
        return None
    for connection in listeners:
        if connection.pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            return f"pid {connection.pid} ({psutil.Process(connection.pid).name()})"
    return "another program"
