"""`Settings`, the whole of stack.yaml, and the sections that are neither components nor signals."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from stack.settings.components import (
    COMPONENT_NAMES,
    OPTIONAL_COMPONENT_NAMES,
    SERVER_PROFILE_DEFAULTS,
    Components,
    ComponentSettings,
)
from stack.settings.fields import Duration, Email, HostName, IpAddress, ProjectName, StrictModel
from stack.settings.signals import AlertingSettings, RulesSettings, SloSettings


class ScrapeTarget(StrictModel):
    job: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$")]
    targets: Annotated[list[Annotated[str, Field(pattern=r"^[^\s/]+:\d+$")]], Field(min_length=1)]
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    interval: Duration | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class DashboardSettings(StrictModel):
    # None: every bundled pack. The names are checked against the bundled ones after loading
    # (stack.components.grafana.unknown_dashboard_pack, run by stack.project), which knows them.
    packs: list[str] | None = Field(default=None, description="Bundled dashboard packs to provision (default: all).")
    dirs: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Directories of the user's own dashboard JSON, relative to stack.yaml."
    )

    @field_validator("packs", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        # Only the default means "all": a `packs:` left empty in stack.yaml is refused as before.
        if value is None:
            raise PydanticCustomError("list_type", "Input should be a valid list")
        return value


class TlsSettings(StrictModel):
    # auto: a certificate from Let's Encrypt (needs a public DNS name pointing at the server, ports
    # 80/443 reachable); files: the user's certificate and key; internal: Caddy's own CA (private hosts).
    mode: Literal["auto", "files", "internal"] = "auto"
    email: Email | None = None
    # PEM files on the machine running `stack` (relative to stack.yaml); sent as compose secrets.
    cert_file: str | None = None
    key_file: str | None = None


class ServerSettings(StrictModel):
    hostname: HostName | None = None
    # Where the proxy's HTTPS (and redirect) ports listen; the components stay on bind_address.
    listen_address: IpAddress = "0.0.0.0"
    tls: TlsSettings = Field(default_factory=TlsSettings)
    # Publishing Grafana on a non-loopback address without TLS is refused unless this is true.
    allow_plain_http: bool = False


def _fill(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the keys of `defaults` it lacks (recursively); never overrides what is there."""
    merged = dict(data)
    for key, value in defaults.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = _fill(value, merged[key])
    return merged


class ProcessSettings(StrictModel):
    """The process runtime: where its binaries are and where its state lives."""

    # Searched before PATH; relative paths are taken from the directory of stack.yaml.
    bin_dir: str | None = None
    # Per-project data, configs, logs and pids live in <data_dir>/<project>; default .stack-state/process.
    data_dir: str | None = None
    # How long `stack down` waits after SIGTERM before SIGKILL.
    stop_timeout: Duration = "30s"


def _node_label(value: str) -> str:
    key, sep, label = value.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", key) or not re.fullmatch(r"[A-Za-z0-9._-]+", label):
        raise ValueError(f"{value!r} is not a node label: write key=value, e.g. stack.role=backend")
    return value


class SwarmSettings(StrictModel):
    """The swarm runtime: `docker stack deploy` on the manager that DOCKER_HOST or --host names."""

    # The node label that places the backends (and their volumes) on one node.
    backend_label: Annotated[str, AfterValidator(_node_label)] = "stack.role=backend"
    # The engine's socket on the backend node: Prometheus reads it for dockerswarm_sd_configs
    # (and runs as root for it: see docs/scaling.md). Empty: no Swarm discovery, no socket.
    docker_socket: str = "/var/run/docker.sock"
    # The engines' data root on every node, where the Collector reads container logs.
    docker_data_root: str = "/var/lib/docker"
    # `docker stack deploy --resolve-image`: `always` pins every node to the registry's digest;
    # `never` for images that exist only on the nodes (built there, loaded with `docker load`).
    resolve_image: Literal["always", "changed", "never"] = "always"


class Settings(StrictModel):
    project: ProjectName = "observability"
    # local: a laptop or a single machine; server: larger limits and the TLS proxy in front of Grafana.
    profile: Literal["local", "server"] = "local"
    bind_address: IpAddress = "127.0.0.1"
    runtime: Literal["docker", "process", "swarm"] = "docker"
    components: Components = Field(default_factory=Components)
    scrape_targets: list[ScrapeTarget] = Field(default_factory=list)
    dashboards: DashboardSettings = Field(default_factory=DashboardSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    slos: list[SloSettings] = Field(default_factory=list)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    process: ProcessSettings = Field(default_factory=ProcessSettings)
    swarm: SwarmSettings = Field(default_factory=SwarmSettings)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and data.get("profile") == "server"):
            return data
        components = data.get("components") or {}
        if not isinstance(components, dict):
            return data  # reported by the normal validation
        filled = dict(components)
        for name, defaults in SERVER_PROFILE_DEFAULTS.items():
            key = name.replace("-", "_") if name.replace("-", "_") in filled else name
            given = filled.get(key) or {}
            if isinstance(given, dict):
                filled[key] = _fill(defaults, given)
        return {**data, "components": filled}

    def enabled(self) -> list[str]:
        """Names of the enabled components, in their canonical order (optional ones last)."""
        return [name for name in (*COMPONENT_NAMES, *OPTIONAL_COMPONENT_NAMES) if self.components.get(name).enabled]

    def component(self, name: str) -> ComponentSettings:
        return self.components.get(name)

    def without(self, names: list[str]) -> Settings:
        """These settings with the components `names` disabled (for this run only)."""
        changed = {name.replace("-", "_"): self.component(name).model_copy(update={"enabled": False}) for name in names}
        return self.model_copy(update={"components": self.components.model_copy(update=changed)})
