"""The table of components: one row each, in the order they are listed everywhere."""

from __future__ import annotations

from stack.components.alertmanager import Alertmanager
from stack.components.base import Component
from stack.components.collector import Collector
from stack.components.grafana import Grafana
from stack.components.loki import Loki
from stack.components.prometheus import Prometheus
from stack.components.proxy import Proxy
from stack.components.tempo import Tempo

REGISTRY: dict[str, Component] = {
    component.name: component
    for component in (Collector(), Prometheus(), Loki(), Tempo(), Grafana(), Alertmanager(), Proxy())
}


def get_component(name: str) -> Component:
    return REGISTRY[name]
