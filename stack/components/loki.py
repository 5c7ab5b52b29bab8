from __future__ import annotations

from stack.components.base import Component, ConfigFile, PortSpec, Probe, RenderContext, bundled_config
from stack.settings import LokiSettings
from stack.units import parse_duration


class Loki(Component):
    name = "loki"
    title = "Loki"
    ports = (PortSpec("http", 3100, "port"), PortSpec("grpc", 9096))
    readiness = Probe("http", "/ready")
    metrics = Probe("http", "/metrics")
    state = {"data": "/loki"}

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        settings = self.settings(ctx)
        assert isinstance(settings, LokiSettings)
        config = bundled_config("loki.yaml")
        config["server"]["http_listen_port"] = ctx.topology.port(self.name, "http")
        config["server"]["grpc_listen_port"] = ctx.topology.port(self.name, "grpc")
        # Loki's compactor deletes by whole index periods: anything under 24h is rounded up by Loki.
        hours = max(24, int(parse_duration(settings.retention) // 3600))
        config["limits_config"]["retention_period"] = f"{hours}h"
        return [ConfigFile("loki-config", "/etc/loki/config.yaml", self.with_overrides(ctx, config))]
