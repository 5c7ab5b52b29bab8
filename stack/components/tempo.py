from __future__ import annotations

from stack.components.base import Component, ConfigFile, EndpointSpec, PortSpec, Probe, RenderContext, bundled_config
from stack.components.process import Address, BinarySpec, LocalProcess, set_listen_hosts
from stack.units import go_duration, parse_duration


class Tempo(Component):
    name = "tempo"
    title = "Tempo"
    binary = BinarySpec(
        (("tempo", ()),),
        "-version",
        "download tempo from https://github.com/grafana/tempo/releases",
    )
    ports = (PortSpec("http", 3200, "port"), PortSpec("otlp_grpc", 4317), PortSpec("otlp_http", 4318))
    readiness = Probe("http", "/ready")
    endpoints = (EndpointSpec("http", "Tempo", 40),)
    metrics = Probe("http", "/metrics")
    state = {"data": "/var/tempo"}

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        # Tempo's gRPC server (querier to query-frontend) stays on the loopback: no port of its own here.
        set_listen_hosts(process, address, {"server.http_listen_address": "http", "server.grpc_listen_address": ""})

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        settings = ctx.settings.components.tempo
        config = bundled_config("tempo.yaml")
        config["server"]["http_listen_port"] = ctx.topology.port(self.name, "http")
        protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
        protocols["grpc"]["endpoint"] = f"0.0.0.0:{ctx.topology.port(self.name, 'otlp_grpc')}"
        protocols["http"]["endpoint"] = f"0.0.0.0:{ctx.topology.port(self.name, 'otlp_http')}"
        # Go durations: Tempo rejects `d`.
        config["compactor"]["compaction"]["block_retention"] = go_duration(parse_duration(settings.retention))
        if ctx.enabled("prometheus"):
            config["metrics_generator"]["storage"]["remote_write"][0]["url"] = ctx.url(
                "prometheus", "http", "/api/v1/write"
            )
        else:
            # Without Prometheus the generated metrics have nowhere to go; keep only local-blocks.
            del config["metrics_generator"]["storage"]["remote_write"]
            config["overrides"]["defaults"]["metrics_generator"]["processors"] = ["local-blocks"]
        return [ConfigFile("tempo-config", "/etc/tempo/config.yaml", self.with_overrides(ctx, config))]
