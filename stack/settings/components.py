"""The settings of each component (`components.<name>` in stack.yaml), one model per component.

`Components` holds them as typed fields: `settings.components.grafana` is a `GrafanaSettings`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from stack.settings.fields import AdminUser, Duration, Image, IpAddress, MemorySize, Port, Ratio, StrictModel

COMPONENT_NAMES = ("otel-collector", "prometheus", "loki", "tempo", "grafana", "alertmanager")
# Components that are off unless a profile or the user turns them on (listed after the core six).
OPTIONAL_COMPONENT_NAMES = ("proxy",)

# `profile: server` raises these defaults; whatever the user wrote still wins.
SERVER_PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "otel-collector": {"memory": "512M"},
    "prometheus": {"memory": "2G"},
    "loki": {"memory": "1G"},
    "tempo": {"memory": "1G"},
    "grafana": {"memory": "768M"},
    "alertmanager": {"memory": "256M"},
    "proxy": {"enabled": True},
}


class ComponentSettings(StrictModel):
    enabled: bool = True
    image: Image
    port: Port | None = None
    memory: MemorySize
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="YAML deep-merged into this component's rendered config (null deletes a key).",
    )


_ORIGIN = re.compile(r"https?://(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?")


def _origin(value: str) -> str:
    if not _ORIGIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a web origin: scheme://host[:port] with no path, e.g. https://app.example.com "
            "(https://*.example.com for every subdomain; a bare * is refused)"
        )
    return value


class FrontendSettings(StrictModel):
    """Browser telemetry (Grafana Faro web SDK, OTLP transport) into the Collector: an OTLP/HTTP
    endpoint of its own that answers CORS for the web app's origins only."""

    enabled: bool = False
    port: Port = 4320
    # Where the endpoint listens on the host; default bind_address. Browsers of your users must reach
    # it: a public address, or a reverse proxy of your own in front of 127.0.0.1.
    address: IpAddress | None = None
    cors_origins: list[Annotated[str, AfterValidator(_origin)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _origins_when_on(self) -> FrontendSettings:
        if self.enabled and not self.cors_origins:
            raise ValueError("the frontend endpoint needs cors_origins, the origins your web app is served from")
        return self


class CollectorSettings(ComponentSettings):
    image: Image = "otel/opentelemetry-collector-contrib:0.160.0"
    port: Port | None = 13133
    otlp_grpc_port: Port | None = 4317
    otlp_http_port: Port | None = 4318
    memory: MemorySize = "256M"
    sampling_ratio: Ratio = Field(1.0, ge=0.0, le=1.0)
    docker_logs: bool = True
    host_metrics: bool = False
    frontend: FrontendSettings = Field(default_factory=FrontendSettings)


class PrometheusSettings(ComponentSettings):
    image: Image = "prom/prometheus:v3.14.0"
    # Not published by default: the admin API (snapshots for backups) shares the web port.
    port: Port | None = None
    memory: MemorySize = "1G"
    retention: Duration = "15d"
    scrape_interval: Duration = "15s"


class LokiSettings(ComponentSettings):
    image: Image = "grafana/loki:3.7.8"
    port: Port | None = 3100
    memory: MemorySize = "512M"
    retention: Duration = "7d"


class TempoSettings(ComponentSettings):
    image: Image = "grafana/tempo:2.10.8"
    port: Port | None = 3200
    memory: MemorySize = "512M"
    retention: Duration = "72h"


class GrafanaSettings(ComponentSettings):
    image: Image = "grafana/grafana:13.2.0"
    port: Port | None = 3000
    memory: MemorySize = "512M"
    admin_user: AdminUser = "admin"


class AlertmanagerSettings(ComponentSettings):
    image: Image = "prom/alertmanager:v0.35.1"
    port: Port | None = 9093
    memory: MemorySize = "128M"


class ProxySettings(ComponentSettings):
    """Caddy in front of Grafana: TLS (automatic certificates or the user's files) on a public address."""

    enabled: bool = False
    image: Image = "caddy:2.11.4"
    # HTTPS on server.listen_address.
    port: Port | None = 443
    # Plain HTTP: only redirects to HTTPS and answers ACME HTTP-01 challenges.
    http_port: Port | None = 80
    memory: MemorySize = "128M"


class Components(StrictModel):
    otel_collector: CollectorSettings = Field(default_factory=CollectorSettings, alias="otel-collector")
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    tempo: TempoSettings = Field(default_factory=TempoSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)

    def get(self, name: str) -> ComponentSettings:
        """The settings of the component called `name` (its compose service name)."""
        return getattr(self, name.replace("-", "_"))
