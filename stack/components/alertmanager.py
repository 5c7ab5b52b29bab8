from __future__ import annotations

from stack.components.base import Component, ConfigFile, PortSpec, Probe, RenderContext, bundled_config


class Alertmanager(Component):
    name = "alertmanager"
    title = "Alertmanager"
    has_shell = True
    ports = (PortSpec("http", 9093, "port"),)
    readiness = Probe("http", "/-/ready")
    metrics = Probe("http", "/metrics")
    state = {"data": "/alertmanager"}

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        config = bundled_config("alertmanager.yml")
        return [
            ConfigFile("alertmanager-config", "/etc/alertmanager/alertmanager.yml", self.with_overrides(ctx, config))
        ]
