from __future__ import annotations

from typing import Any

from stack.components.base import (
    Component,
    ComposeTopology,
    ConfigFile,
    EndpointSpec,
    PortSpec,
    Probe,
    RenderContext,
    SwarmTopology,
    bundled_config,
)
from stack.components.process import BinarySpec
from stack.components.prometheus import otlp_metrics_endpoint
from stack.settings import CollectorSettings, FrontendSettings, Settings
from stack.units import parse_size

# Which backend each pipeline exports to.
_PIPELINE_BACKENDS = {
    "traces": "tempo",
    "metrics": "prometheus",
    "metrics/host": "prometheus",
    "logs": "loki",
    "logs/docker": "loki",
}
# Switchable pipelines: the settings field, and the receiver and processor only they use.
_SWITCHED = {
    "logs/docker": ("docker_logs", "file_log/docker", "resource/docker"),
    "metrics/host": ("host_metrics", "host_metrics", "resource/host"),
}
DOCKER_LOGS_DIR = "/var/lib/docker/containers"
FRONTEND_RECEIVER = "otlp/frontend"
REMOTE_WRITE_EXPORTER = "prometheus_remote_write"
OTLP_PROMETHEUS_EXPORTER = "otlp_http/prometheus"
HOSTFS = "/hostfs"
# On Swarm: the node the Collector task runs on (a service template Swarm fills in per task).
NODE_NAME_ENV = "STACK_NODE_NAME"
NODE_PROCESSOR = "resource/node"
COMPOSE_SERVICE_ATTR = 'attributes.attrs["com.docker.compose.service"]'
SWARM_SERVICE_ATTR = 'attributes.attrs["com.docker.swarm.service.name"]'


def _collector_settings(ctx: RenderContext) -> CollectorSettings:
    return ctx.settings.components.otel_collector


def _frontend_settings(settings: Settings) -> FrontendSettings:
    return settings.components.otel_collector.frontend


# What a browser may send in one request: Faro batches a few dozen signals; more is abuse.
FRONTEND_MAX_BODY = 1024 * 1024


def _add_frontend(config: dict[str, Any], frontend: FrontendSettings, port: int) -> None:
    """An OTLP/HTTP receiver for browsers, feeding the logs and traces pipelines.

    No Faro receiver can be built for the pinned Collector release (the Go module proxy answers 404
    for contrib's faroreceiver), so the Faro web SDK sends with its OTLP transport. Browsers post
    cross-origin: the receiver answers CORS preflights for the configured origins only, and keeps
    its own port so that the apps' OTLP endpoints can stay private while this one faces the internet.
    """
    config["receivers"][FRONTEND_RECEIVER] = {
        "protocols": {
            "http": {
                "endpoint": f"0.0.0.0:{port}",
                "max_request_body_size": FRONTEND_MAX_BODY,
                "cors": {"allowed_origins": list(frontend.cors_origins), "max_age": 7200},
            }
        }
    }
    pipelines = config["service"]["pipelines"]
    for name in ("logs", "traces"):
        if name in pipelines:
            pipelines[name]["receivers"].append(FRONTEND_RECEIVER)


def _metrics_over_otlp(config: dict[str, Any], endpoint: str | None) -> None:
    """Send metrics to Prometheus' own OTLP receiver where it has one (3.x), as upstream's LGTM image
    does: no translation to remote write, and Prometheus promotes the same resource attributes to
    labels (`otlp.promote_resource_attributes`). Remote write stays the path for 2.x."""
    if endpoint is None:
        return
    exporters = config["exporters"]
    exporters[OTLP_PROMETHEUS_EXPORTER] = {
        "metrics_endpoint": f"{endpoint}/v1/metrics",
        "tls": {"insecure": True},
        # The other backends' batching: Prometheus appends what one request carries in one commit.
        "sending_queue": dict(exporters["otlp_http/loki"]["sending_queue"]),
    }
    for pipeline in config["service"]["pipelines"].values():
        pipeline["exporters"] = [
            OTLP_PROMETHEUS_EXPORTER if name == REMOTE_WRITE_EXPORTER else name for name in pipeline["exporters"]
        ]


class Collector(Component):
    name = "otel-collector"
    title = "OpenTelemetry Collector"
    binary = BinarySpec(
        (("otelcol-contrib", ()),),
        "--version",
        "`make collector` builds it from Go modules (needs Go), or download otelcol-contrib from "
        "https://github.com/open-telemetry/opentelemetry-collector-releases/releases",
        own_build=True,
    )
    ports = (
        PortSpec("otlp_grpc", 4317, "otlp_grpc_port"),
        PortSpec("otlp_http", 4318, "otlp_http_port"),
        PortSpec("health", 13133, "port"),
        PortSpec("metrics", 8888),
        # Browser telemetry (stack.yaml `frontend`): published only when it is on, see published().
        PortSpec("frontend", 4320),
    )
    readiness = Probe("health", "/")
    metrics = Probe("metrics", "/metrics")
    swarm_global = True
    endpoints = (
        EndpointSpec("otlp_grpc", "OTLP gRPC (apps)", 50),
        EndpointSpec("otlp_http", "OTLP HTTP (apps)", 51),
        EndpointSpec("frontend", "OTLP HTTP (browsers, Faro)", 52),
    )
    # Where applications send: more use to a reader of `status` than the health port.
    status_port = "otlp_http"

    def document(self, ctx: RenderContext) -> dict[str, Any]:
        """The Collector's config as data, before the user's overrides."""
        settings = _collector_settings(ctx)
        config = bundled_config("otel-collector.yaml")
        receivers, processors, exporters = config["receivers"], config["processors"], config["exporters"]
        pipelines = config["service"]["pipelines"]
        receivers["otlp"]["protocols"]["grpc"]["endpoint"] = f"0.0.0.0:{ctx.topology.port(self.name, 'otlp_grpc')}"
        receivers["otlp"]["protocols"]["http"]["endpoint"] = f"0.0.0.0:{ctx.topology.port(self.name, 'otlp_http')}"
        config["extensions"]["health_check"]["endpoint"] = f"0.0.0.0:{ctx.topology.port(self.name, 'health')}"
        reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
        reader["port"] = ctx.topology.port(self.name, "metrics")
        exporters["otlp_grpc/tempo"]["endpoint"] = ctx.address("tempo", "otlp_grpc")
        exporters["otlp_http/loki"]["endpoint"] = ctx.url("loki", "http", "/otlp")
        exporters[REMOTE_WRITE_EXPORTER]["http"]["endpoint"] = ctx.url("prometheus", "http", "/api/v1/write")
        _metrics_over_otlp(config, otlp_metrics_endpoint(ctx))
        if settings.frontend.enabled:
            _add_frontend(config, settings.frontend, ctx.topology.port(self.name, "frontend"))
        in_containers = isinstance(ctx.topology, ComposeTopology)
        for pipeline, (field_name, receiver, processor) in _SWITCHED.items():
            # Local processes have no Docker log directory of their own to read.
            off = not getattr(settings, field_name) or (pipeline == "logs/docker" and not in_containers)
            if off:
                del pipelines[pipeline], receivers[receiver], processors[processor]
        if "host_metrics" in receivers and not in_containers:
            # A local process reads this machine's own / (said explicitly: left unset, a Collector that
            # finds itself in a container warns that it reports the container's filesystems).
            receivers["host_metrics"]["root_path"] = "/"
        for pipeline, backend in _PIPELINE_BACKENDS.items():
            if pipeline in pipelines and not ctx.enabled(backend):
                del pipelines[pipeline]
        if not pipelines:
            # The Collector refuses to start without a pipeline; keep one that drops nothing silently
            # (defined before the unused receivers are pruned: it needs otlp).
            exporters["debug"] = {"verbosity": "basic"}
            pipelines["traces"] = {"receivers": ["otlp"], "processors": ["memory_limiter"], "exporters": ["debug"]}
        # The Collector rejects nothing unused, but a config that says only what runs is easier to read.
        for kind, defined in (("receivers", receivers), ("processors", processors), ("exporters", exporters)):
            used = {name for pipeline in pipelines.values() for name in pipeline[kind]}
            for name in [name for name in defined if name not in used]:
                del defined[name]
        if "traces" in pipelines and settings.sampling_ratio < 1.0:
            processors["probabilistic_sampler"] = {"sampling_percentage": round(settings.sampling_ratio * 100, 4)}
            pipelines["traces"]["processors"] = ["memory_limiter", "probabilistic_sampler"]
        if isinstance(ctx.topology, SwarmTopology):
            _for_swarm(config)
        return config

    def published(self, settings: Settings) -> list[tuple[PortSpec, int]]:
        found = super().published(settings)
        frontend = _frontend_settings(settings)
        if frontend.enabled:
            found.append((self.port_spec("frontend"), frontend.port))
        return found

    def listening(self, settings: Settings) -> tuple[PortSpec, ...]:
        if _frontend_settings(settings).enabled:
            return self.ports
        return tuple(spec for spec in self.ports if spec.name != "frontend")

    def port_host_ip(self, settings: Settings, spec: PortSpec) -> str:
        frontend = _frontend_settings(settings)
        if spec.name == "frontend" and frontend.address is not None:
            return frontend.address
        return super().port_host_ip(settings, spec)

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        return [
            ConfigFile(
                "otel-collector-config",
                "/etc/otelcol-contrib/config.yaml",
                self.with_overrides(ctx, self.document(ctx)),
            )
        ]

    def environment(self, ctx: RenderContext) -> dict[str, str]:
        # The Go runtime should collect garbage before the container limit is hit: about 80% of it.
        limit = parse_size(self.settings(ctx).memory)
        found = {"GOMEMLIMIT": f"{int(limit * 0.8 / 1024**2)}MiB"}
        if isinstance(ctx.topology, SwarmTopology):
            found[NODE_NAME_ENV] = "{{.Node.Hostname}}"
        return found

    def mounts(self, ctx: RenderContext) -> list[str]:
        settings = _collector_settings(ctx)
        if not isinstance(ctx.topology, ComposeTopology):
            return []
        mounts = []
        if settings.docker_logs and ctx.enabled("loki"):
            # Bind mounts resolve on the engine's host, which is where the container logs are.
            source = DOCKER_LOGS_DIR
            if isinstance(ctx.topology, SwarmTopology):
                source = f"{ctx.settings.swarm.docker_data_root.rstrip('/')}/containers"
            mounts.append(f"{source}:{DOCKER_LOGS_DIR}:ro")
        if settings.host_metrics and ctx.enabled("prometheus"):
            mounts.append(f"/:{HOSTFS}:ro")
        return mounts

    def user(self, ctx: RenderContext) -> str | None:
        # Docker's log files are root-only (0640); the image's own user (10001) cannot read them.
        settings = _collector_settings(ctx)
        in_containers = isinstance(ctx.topology, ComposeTopology)
        return "0" if in_containers and settings.docker_logs and ctx.enabled("loki") else None


def _for_swarm(config: dict[str, Any]) -> None:
    """Every signal carries the name of the node its Collector runs on (`host.name`), and container
    logs are named by their Swarm service (Swarm's containers have no compose service label)."""
    config["processors"][NODE_PROCESSOR] = {
        "attributes": [{"key": "host.name", "value": f"${{env:{NODE_NAME_ENV}:-unknown}}", "action": "upsert"}]
    }
    for pipeline in config["service"]["pipelines"].values():
        processors = pipeline["processors"]
        # Right after memory_limiter, which must stay first.
        at = 1 if processors[:1] == ["memory_limiter"] else 0
        processors.insert(at, NODE_PROCESSOR)
    receiver = config["receivers"].get("file_log/docker")
    if receiver:
        for operator in receiver["operators"]:
            for key in ("if", "from"):
                if isinstance(operator.get(key), str):
                    operator[key] = operator[key].replace(COMPOSE_SERVICE_ATTR, SWARM_SERVICE_ATTR)
