from __future__ import annotations

from stack.components.base import Component, ConfigFile, PortSpec, Probe, RenderContext, bundled_config
from stack.settings import CollectorSettings
from stack.units import parse_size

# Which backend each pipeline exports to, and the exporter that does it.
_PIPELINE_BACKENDS = {
    "traces": ("tempo", "otlp_grpc/tempo"),
    "metrics": ("prometheus", "prometheus_remote_write"),
    "logs": ("loki", "otlp_http/loki"),
}


class Collector(Component):
    name = "otel-collector"
    title = "OpenTelemetry Collector"
    ports = (
        PortSpec("otlp_grpc", 4317, "otlp_grpc_port"),
        PortSpec("otlp_http", 4318, "otlp_http_port"),
        PortSpec("health", 13133, "port"),
        PortSpec("metrics", 8888),
    )
    readiness = Probe("health", "/")
    metrics = Probe("metrics", "/metrics")

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        settings = self.settings(ctx)
        assert isinstance(settings, CollectorSettings)
        config = bundled_config("otel-collector.yaml")
        exporters = config["exporters"]
        exporters["otlp_grpc/tempo"]["endpoint"] = ctx.address("tempo", "otlp_grpc")
        exporters["otlp_http/loki"]["endpoint"] = ctx.url("loki", "http", "/otlp")
        exporters["prometheus_remote_write"]["endpoint"] = ctx.url("prometheus", "http", "/api/v1/write")
        pipelines = config["service"]["pipelines"]
        for pipeline, (backend, exporter) in _PIPELINE_BACKENDS.items():
            if not ctx.enabled(backend):
                del exporters[exporter]
                del pipelines[pipeline]
        if "traces" in pipelines and settings.sampling_ratio < 1.0:
            config["processors"]["probabilistic_sampler"] = {
                "sampling_percentage": round(settings.sampling_ratio * 100, 4)
            }
            pipelines["traces"]["processors"] = ["memory_limiter", "probabilistic_sampler", "batch"]
        if not pipelines:
            # The Collector refuses to start without a pipeline; keep one that drops nothing silently.
            exporters["debug"] = {"verbosity": "basic"}
            pipelines["traces"] = {"receivers": ["otlp"], "processors": ["memory_limiter"], "exporters": ["debug"]}
        return [
            ConfigFile("otel-collector-config", "/etc/otelcol-contrib/config.yaml", self.with_overrides(ctx, config))
        ]

    def environment(self, ctx: RenderContext) -> dict[str, str]:
        # The Go runtime should collect garbage before the container limit is hit: about 80% of it.
        limit = parse_size(self.settings(ctx).memory)
        return {"GOMEMLIMIT": f"{int(limit * 0.8 / 1024**2)}MiB"}
