"""stack.yaml: the user's settings, validated, with a sane default for every key.

Names that docs and scripts rely on: `project`, `bind_address`, `runtime`, and
`components.<name>.enabled` with the compose service names as component names.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stack.dashboards import bundled_packs, unknown_pack_hint
from stack.errors import SettingsError
from stack.imageref import ImageRef
from stack.paths import settings_file_problem
from stack.units import parse_duration, parse_size
from stack.yamlio import KeyPath, LoadedYaml, YamlLimitError, YamlSyntaxError, load_file

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


# Every duration ends up in a Go `time.Duration` (int64 nanoseconds) in Prometheus, Loki, Tempo or
# Alertmanager; past this they exit at start ("duration out of range").
MAX_GO_DURATION_SECONDS = (2**63 - 1) / 1e9
# GOMEMLIMIT and Docker's memory limit are int64 bytes; past this Go dies with a fatal error.
MAX_MEMORY_BYTES = 2**63 - 1
# Docker Compose names a container `<project>-<service>-1`, which is also its host name: a DNS
# label of at most 63 characters. The longest service, `-otel-collector-1`, takes 17 of them.
MAX_PROJECT_LENGTH = 63 - len("-otel-collector-1")
# Grafana keeps a login in a varchar(190); a ':' cannot be sent in HTTP basic auth.
MAX_ADMIN_USER_LENGTH = 190


def _duration(value: str) -> str:
    value = str(value).strip()
    if value.startswith("-") or value in ("0", ""):
        raise ValueError(f"{value!r} must be longer than zero")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    if seconds > MAX_GO_DURATION_SECONDS:
        raise ValueError(f"{value!r} is longer than a Go duration can hold (about 292 years)")
    return value


def _size(value: str | int) -> str:
    size = parse_size(value)
    if size < 16 * 1024**2:
        raise ValueError(f"{value!r} is below the 16M a component needs at the very least")
    if size > MAX_MEMORY_BYTES:
        raise ValueError(f"{value!r} is more than a Go memory limit can hold (8 EiB)")
    return str(value).strip()


# The image reference grammar of the OCI distribution spec (github.com/distribution/reference):
# [host[:port]/]path[:tag][@digest], path components lowercase with `.`, `_`, `__` or `-` between.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|[-]+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
# The spec's limit on the name part (without tag and digest).
MAX_IMAGE_NAME_LENGTH = 255


def _image(value: str) -> str:
    # Name, tag and a sha512 digest fit in 512; the length check keeps the regex linear.
    if len(value) > 512 or not _IMAGE_REFERENCE.fullmatch(value):
        raise ValueError(f"{value!r} is not an image reference such as registry.example.com/grafana/grafana:13.2.0")
    ref = ImageRef.parse(value)
    if len(ref.repository) > MAX_IMAGE_NAME_LENGTH:
        raise ValueError(f"{value!r} is not an image reference: its name is longer than {MAX_IMAGE_NAME_LENGTH}")
    problem = ref.pin_problem()
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


def _admin_user(value: str) -> str:
    if not value or value != value.strip():
        raise ValueError(f"{value!r} is not a user name: empty, or blank at either end")
    if any(ord(char) < 32 or ord(char) == 127 for char in value) or ":" in value:
        raise ValueError(f"{value!r} is not a user name: it holds a control character or ':'")
    if len(value) > MAX_ADMIN_USER_LENGTH:
        raise ValueError(f"{value[:20]!r}... is not a user name: longer than {MAX_ADMIN_USER_LENGTH} characters")
    return value


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (use 127.0.0.1, 0.0.0.0 or a specific address)") from None
    return value


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.I
)


def _hostname(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name (e.g. grafana.example.com) or an IP address")
    return value.lower()


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1: ports bound there are reachable from this machine only."""
    return ipaddress.ip_address(address).is_loopback


def _project(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"{value!r} must be lowercase letters, digits, '-' or '_', starting with a letter or digit")
    if len(value) > MAX_PROJECT_LENGTH:
        raise ValueError(
            f"{value[:20]!r}... is a project name longer than {MAX_PROJECT_LENGTH} characters"
            " (container host names are at most 63)"
        )
    return value


Duration = Annotated[str, AfterValidator(_duration)]
MemorySize = Annotated[str | int, AfterValidator(_size)]
Image = Annotated[str, AfterValidator(_image)]
# Strict: YAML's `true` or "80" is no port (pydantic would publish `true` as port 1).
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Ratio = Annotated[float, Strict()]


class StrictModel(BaseModel):
    """Unknown keys are errors (with a did-you-mean), never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


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
    address: Annotated[str, AfterValidator(_address)] | None = None
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
    admin_user: Annotated[str, AfterValidator(_admin_user)] = "admin"


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


class ScrapeTarget(StrictModel):
    job: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$")]
    targets: Annotated[list[Annotated[str, Field(pattern=r"^[^\s/]+:\d+$")]], Field(min_length=1)]
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    interval: Duration | None = None
    labels: dict[str, str] = Field(default_factory=dict)


def _pack(value: str) -> str:
    if value not in bundled_packs():
        raise ValueError(f"{value!r} is not a dashboard pack")
    return value


def _all_packs() -> list[str]:
    return bundled_packs()


class DashboardSettings(StrictModel):
    packs: list[Annotated[str, AfterValidator(_pack)]] = Field(
        default_factory=_all_packs, description="Bundled dashboard packs to provision (default: all)."
    )
    dirs: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Directories of the user's own dashboard JSON, relative to stack.yaml."
    )


class TlsSettings(StrictModel):
    # auto: a certificate from Let's Encrypt (needs a public DNS name pointing at the server, ports
    # 80/443 reachable); files: the user's certificate and key; internal: Caddy's own CA (private hosts).
    mode: Literal["auto", "files", "internal"] = "auto"
    email: Annotated[str, AfterValidator(_email)] | None = None
    # PEM files on the machine running `stack` (relative to stack.yaml); sent as compose secrets.
    cert_file: str | None = None
    key_file: str | None = None


class ServerSettings(StrictModel):
    hostname: Annotated[str, AfterValidator(_hostname)] | None = None
    # Where the proxy's HTTPS (and redirect) ports listen; the components stay on bind_address.
    listen_address: Annotated[str, AfterValidator(_address)] = "0.0.0.0"
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


# --- rules, SLOs and alerting (signals) ----------------------------------------------------


class RulePackSettings(StrictModel):
    enabled: bool = True
    # Names are checked against the pack's own list (stack/rules/packs.py) after validation.
    thresholds: dict[str, Annotated[float, Strict(), Field(ge=0)]] = Field(default_factory=dict)


# A rule file of thousands of generated rules is still far below these.
RULE_FILE_MAX_BYTES = 16 * 1024**2
RULE_FILE_MAX_NODES = 2_000_000


class RulesSettings(StrictModel):
    """Alert rule packs (configs/prometheus/rules/<pack>.yml), each on by default."""

    stack: RulePackSettings = Field(default_factory=RulePackSettings)
    http: RulePackSettings = Field(default_factory=RulePackSettings)
    queues: RulePackSettings = Field(default_factory=RulePackSettings)
    llm: RulePackSettings = Field(default_factory=RulePackSettings)
    workflows: RulePackSettings = Field(default_factory=RulePackSettings)
    realtime: RulePackSettings = Field(default_factory=RulePackSettings)
    security: RulePackSettings = Field(default_factory=RulePackSettings)
    # LogQL alerts (configs/loki/rules/errors.yml) that Loki's ruler evaluates: new exception types,
    # error log spikes, panics.
    errors: RulePackSettings = Field(default_factory=RulePackSettings)
    # Prefix of every alert's runbook_url (`<prefix><AlertName>.md`): point it at your wiki or repository.
    runbook_base_url: str = "docs/runbooks/"
    # Your own Prometheus rule files (relative to stack.yaml), inlined into the render like the packs.
    files: list[str] = Field(default_factory=list)
    # Your own LogQL rule files (same format, LogQL in `expr`) for Loki's ruler, inlined the same way.
    loki_files: list[str] = Field(default_factory=list)

    @field_validator("files", "loki_files")
    @classmethod
    def _rule_files(cls, value: list[str], info: ValidationInfo) -> list[str]:
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        found = []
        for name in value:
            path = (base / Path(name).expanduser()).resolve()
            if not path.is_file():
                raise ValueError(f"rule file {str(path)!r} does not exist")
            try:
                # Bounded like stack.yaml (alias bombs, depth), with room for a large generated file.
                document = load_file(path, max_bytes=RULE_FILE_MAX_BYTES, max_nodes=RULE_FILE_MAX_NODES).data
            except YamlLimitError as exc:
                raise ValueError(f"rule file {str(path)!r} is refused: {exc.problem}") from None
            except (YamlSyntaxError, UnicodeDecodeError, OSError) as exc:
                raise ValueError(f"rule file {str(path)!r} is not valid YAML ({exc.__class__.__name__})") from None
            if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
                kind = "Loki" if info.field_name == "loki_files" else "Prometheus"
                raise ValueError(f"rule file {str(path)!r} is not a {kind} rule file (no `groups:` list)")
            found.append(str(path))
        if len({Path(path).name for path in found}) != len(found):
            raise ValueError("two rule files have the same file name")
        return found

    def packs(self) -> dict[str, RulePackSettings]:
        """The Prometheus packs."""
        return {name: getattr(self, name) for name in RULE_PACKS}

    def loki_packs(self) -> dict[str, RulePackSettings]:
        """The packs Loki's ruler evaluates."""
        return {name: getattr(self, name) for name in LOKI_RULE_PACKS}


RULE_PACKS = ("stack", "http", "queues", "llm", "workflows", "realtime", "security")
LOKI_RULE_PACKS = ("errors",)

_WINDOW_PLACEHOLDER = "$window"
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_MATCHERS = re.compile(rf"^(?:{_MATCHER}(?:,{_MATCHER})*,?\s*)?$")


def _label_matchers(value: str) -> str:
    if not _MATCHERS.match(value):
        raise ValueError(f'{value!r} is not a list of label matchers such as job="api", route=~"/checkout.*"')
    return value.strip().rstrip(",")


class SliSettings(StrictModel):
    """How an SLO measures good and bad events."""

    kind: Literal["availability", "latency", "ratio"]
    # availability / latency: label matchers added to every selector, e.g. job="api", http_route="/checkout".
    selector: Annotated[str, AfterValidator(_label_matchers)] = ""
    # Which metric names the ready-made kinds read: classic Prometheus clients or OpenTelemetry.
    convention: Literal["classic", "otel"] = "classic"
    metric: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] | None = None
    status_label: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] | None = None
    threshold: Annotated[float, Strict(), Field(gt=0)] | None = None
    # ratio: PromQL with `$window` where the range goes, e.g. sum(rate(x_total{code=~"5.."}[$window])).
    errors: str | None = None
    good: str | None = None
    total: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> SliSettings:
        if self.kind == "latency" and self.threshold is None:
            raise ValueError("a latency SLI needs `threshold` (seconds), e.g. threshold: 0.5")
        if self.kind != "latency" and self.threshold is not None:
            raise ValueError("`threshold` applies to latency SLIs only")
        if self.kind == "ratio":
            if self.total is None or (self.errors is None) == (self.good is None):
                raise ValueError("a ratio SLI needs `total` and exactly one of `errors` or `good`")
            for query in (self.errors, self.good, self.total):
                if query is not None and _WINDOW_PLACEHOLDER not in query:
                    raise ValueError(f"{query!r} has no {_WINDOW_PLACEHOLDER} where the range goes, e.g. [$window]")
        elif any(q is not None for q in (self.errors, self.good, self.total)):
            raise ValueError("`errors`, `good` and `total` apply to ratio SLIs only")
        return self


class SloSettings(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    objective: Annotated[float, Strict(), Field(gt=0, lt=100)]
    window: Duration = "30d"
    service: str | None = None
    description: str = ""
    sli: SliSettings


class SecretRef(StrictModel):
    """A secret named by where it lives, never by its value: `{env: NAME}` or `{file: PATH}`."""

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    # Relative paths are taken from the directory of stack.yaml and stored absolute.
    file: str | None = None

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            raise ValueError(f"secret file {str(path)!r} does not exist")
        return str(path)

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is {env: VARIABLE} or {file: PATH}, exactly one of them")
        return self


def _secret_ref(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            "secrets are never written in stack.yaml: use {env: VARIABLE} or {file: PATH} (a file readable only by you)"
        )
    return value


Secret = Annotated[SecretRef, BeforeValidator(_secret_ref)]


class WebhookReceiver(StrictModel):
    # A plain URL, or a secret when the URL itself carries a token (needs Alertmanager >= 0.26).
    url: str | SecretRef
    bearer_token: Secret | None = None
    send_resolved: bool = True


class SlackReceiver(StrictModel):
    api_url: Secret
    channel: str | None = None
    send_resolved: bool = True


class EmailReceiver(StrictModel):
    to: str
    from_: str = Field(alias="from")
    smarthost: Annotated[str, Field(pattern=r"^[^\s:]+:\d+$")]
    auth_username: str | None = None
    auth_password: Secret | None = None
    require_tls: bool = True
    send_resolved: bool = True


class PagerDutyReceiver(StrictModel):
    routing_key: Secret
    send_resolved: bool = True


class ReceiverSettings(StrictModel):
    webhook: WebhookReceiver | None = None
    slack: SlackReceiver | None = None
    email: EmailReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None

    @model_validator(mode="after")
    def _something(self) -> ReceiverSettings:
        if not any((self.webhook, self.slack, self.email, self.pagerduty)):
            raise ValueError("a receiver needs at least one of webhook, slack, email, pagerduty")
        return self


class AlertingSettings(StrictModel):
    receivers: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], ReceiverSettings] = Field(
        default_factory=dict
    )
    # Critical alerts go to `page`, warnings to `ticket`; unset means nobody is notified.
    page: str | None = None
    ticket: str | None = None
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service"])
    # Where Grafana sends the alerts of rules made in its own UI: `alertmanager`, the stack's (the
    # same receivers, routes, silences and inhibitions as the Prometheus alerts; Grafana's built-in
    # Alertmanager has no receiver set up and would drop them), `grafana` (its built-in one only),
    # or `both`. Without the alertmanager component, `grafana` is what happens.
    grafana_alerts: Literal["alertmanager", "grafana", "both"] = "alertmanager"
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"


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
    project: Annotated[str, AfterValidator(_project)] = "observability"
    # local: a laptop or a single machine; server: larger limits and the TLS proxy in front of Grafana.
    profile: Literal["local", "server"] = "local"
    bind_address: Annotated[str, AfterValidator(_address)] = "127.0.0.1"
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


# --- loading and error reporting -------------------------------------------------------------

_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, list, dict and Annotated)."""
    origin = get_origin(annotation)
    if origin is None:
        return [annotation]
    found: list[Any] = []
    for arg in get_args(annotation):
        found.extend(_unwrap(arg))
    return found


def _fields_at(path: KeyPath) -> list[str]:
    """The keys a mapping at `path` accepts (for did-you-mean)."""
    models: list[Any] = [Settings]
    for part in path:
        if isinstance(part, int):
            continue
        nxt: list[Any] = []
        for model in models:
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            for name, info in model.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_unwrap(info.annotation))
        models = nxt
    keys: list[str] = []
    for model in models:
        if isinstance(model, type) and issubclass(model, BaseModel):
            keys.extend(info.alias or name for name, info in model.model_fields.items())
    return keys


def _describe(error: Any, loaded: LoadedYaml) -> tuple[KeyPath, str, str | None]:
    path: KeyPath = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    hint: str | None
    if kind == "extra_forbidden":
        key = str(path[-1])
        close = difflib.get_close_matches(key, _fields_at(path[:-1]), n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(_fields_at(path[:-1]))}"
        return path, "unknown key", hint
    if kind == "missing":
        return path, "required key is missing", None
    if kind in _TYPE_WORDS:
        return path, f"expected {_TYPE_WORDS[kind]}, got {given!r}", None
    if kind == "literal_error":
        return path, f"{given!r} is not allowed", f"use one of {error['ctx']['expected']}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return path, f"{given!r} is out of range ({error['msg'].lower()})", None
    if kind == "string_pattern_mismatch":
        return path, f"{given!r} has the wrong form", f"expected a match for {error['ctx']['pattern']}"
    if kind == "too_short":
        return path, "must not be empty", None
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        hint = None
        if "Go duration" in message:
            hint = "Prometheus, Loki, Tempo and Alertmanager hold at most 2562047h; use e.g. 10y"
        elif "Go memory limit" in message:
            hint = "use a size such as 256M or 1G"
        elif "duration" in message or "longer than zero" in message:
            hint = "use a positive duration such as 15d, 72h or 30m"
        elif "size" in message or "16M" in message:
            hint = "use a size such as 256M or 1G"
        elif "rule file" in message and path[:2] == ("rules", "loki_files"):
            hint = "give a Loki rule file (`groups:`, LogQL in `expr`) relative to stack.yaml; stack validate checks it"
        elif "rule file" in message:
            hint = "give a Prometheus rule file (`groups:`), relative to stack.yaml; `promtool check rules` checks it"
        elif "secret file" in message:
            hint = "create the file (chmod 600) or fix the path, which is relative to stack.yaml"
        elif "pin a version" in message:
            hint = "e.g. grafana/grafana:13.2.0"
        elif "image reference" in message:
            hint = "[registry/]name:tag or name@sha256:digest, with no spaces or options"
        elif "user name" in message:
            hint = "use a plain login such as admin"
        elif "project name" in message:
            hint = f"use at most {MAX_PROJECT_LENGTH} characters"
        elif "is not a dashboard pack" in message:
            hint = unknown_pack_hint(str(given))
        elif "cors_origins" in message:
            hint = "e.g. cors_origins: [https://app.example.com]"
        elif "host name" in message:
            hint = "use the public DNS name of the server"
        return path, message, hint
    return path, error["msg"], None


def _where(source: Path | None, loaded: LoadedYaml, path: KeyPath) -> str:
    name = str(source) if source else "stack.yaml (defaults)"
    line = loaded.line_of(path)
    return f"{name}:{line}" if line else name


def _published_ports(settings: Settings) -> list[tuple[KeyPath, int]]:
    found: list[tuple[KeyPath, int]] = []
    for name in settings.enabled():
        comp = settings.component(name)
        for field_name in type(comp).model_fields:
            if field_name == "port" or field_name.endswith("_port"):
                value = getattr(comp, field_name)
                if value is not None:
                    found.append((("components", name, field_name), value))
        frontend = getattr(comp, "frontend", None)
        if isinstance(frontend, FrontendSettings) and frontend.enabled:
            found.append((("components", name, "frontend", "port"), frontend.port))
    return found


PLAIN_HTTP_HINT = (
    "keep bind_address 127.0.0.1 and serve Grafana through the TLS proxy (profile: server, server.hostname), "
    "or set server.allow_plain_http: true if a TLS terminator of your own sits in front"
)


def plain_http_exposure(settings: Settings) -> tuple[KeyPath, str] | None:
    """Grafana published on a non-loopback address over plain HTTP (passwords and cookies in clear)."""
    grafana = settings.component("grafana")
    if grafana.enabled and grafana.port is not None and not is_loopback(settings.bind_address):
        return (
            ("bind_address",),
            f"{settings.bind_address} publishes Grafana (port {grafana.port}) without TLS",
        )
    return None


def _proxy_problem(settings: Settings, loaded: LoadedYaml) -> tuple[KeyPath, str, str] | None:
    proxy = settings.components.proxy
    if not proxy.enabled:
        return None
    blame: KeyPath = (
        ("components", "proxy", "enabled") if ("components", "proxy", "enabled") in loaded.lines else (("profile",))
    )
    server = settings.server
    if not settings.component("grafana").enabled:
        return blame, "the TLS proxy fronts Grafana, which is disabled", "enable grafana or disable the proxy"
    if proxy.port is None:
        return ("components", "proxy", "port"), "the TLS proxy needs its HTTPS port", "set a port such as 443"
    if server.hostname is None:
        return (
            ("server", "hostname") if ("server",) in loaded.lines else blame,
            "the TLS proxy needs server.hostname (the name users open Grafana at)",
            "set server.hostname: grafana.example.com",
        )
    tls = server.tls
    if tls.mode == "auto":
        try:
            ipaddress.ip_address(server.hostname)
        except ValueError:
            pass
        else:
            return (
                ("server", "tls", "mode"),
                f"automatic certificates need a DNS name, not the address {server.hostname}",
                "use tls.mode: internal (Caddy's own CA) or files (your certificate), or a DNS name",
            )
        if proxy.http_port is None:
            return (
                ("components", "proxy", "http_port"),
                "automatic certificates need the HTTP port (ACME HTTP-01 challenge)",
                "set http_port: 80, or use tls.mode: files",
            )
    if tls.mode == "files":
        for key in ("cert_file", "key_file"):
            if getattr(tls, key) is None:
                return ("server", "tls", key), f"tls.mode files needs tls.{key}", "give the path of the PEM file"
    return None


def _consistency(settings: Settings, loaded: LoadedYaml, *, security: bool = True) -> tuple[KeyPath, str, str] | None:
    seen: dict[int, KeyPath] = {}
    for path, port in _published_ports(settings):
        if port in seen:
            # Blame the port the user wrote, not a default they may not know about.
            blame, other = (
                (path, seen[port]) if path in loaded.lines or seen[port] not in loaded.lines else (seen[port], path)
            )
            return blame, f"port {port} is also published by {_dotted(other)}", "choose another port"
        seen[port] = path
    # "file_sd" is the job of the target files Prometheus watches (stack/components/prometheus.py).
    jobs: set[str] = {*COMPONENT_NAMES, "file_sd"}
    for index, target in enumerate(settings.scrape_targets):
        if target.job in jobs:
            return (
                ("scrape_targets", index, "job"),
                f"job {target.job!r} is already used",
                "give every scrape target a job name of its own",
            )
        jobs.add(target.job)
    problem = _proxy_problem(settings, loaded)
    if problem:
        return problem
    if security and not settings.server.allow_plain_http:
        exposure = plain_http_exposure(settings)
        if exposure:
            return exposure[0], exposure[1], PLAIN_HTTP_HINT
    return _signals_consistency(settings)


def _signals_consistency(settings: Settings) -> tuple[KeyPath, str, str] | None:
    from stack.rules.packs import LOKI, PROMETHEUS, pack_thresholds  # reads the packs only when settings load

    engines = {**dict.fromkeys(settings.rules.packs(), PROMETHEUS), **dict.fromkeys(settings.rules.loki_packs(), LOKI)}
    for pack, chosen in {**settings.rules.packs(), **settings.rules.loki_packs()}.items():
        known = pack_thresholds(pack, engines[pack])
        for key in chosen.thresholds:
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
                hint = f"did you mean '{close[0]}'?" if close else f"known thresholds: {', '.join(known)}"
                return ("rules", pack, "thresholds", key), "unknown threshold", hint
    names: set[str] = set()
    for index, slo in enumerate(settings.slos):
        if slo.name in names:
            return ("slos", index, "name"), f"SLO {slo.name!r} is declared twice", "give every SLO a name of its own"
        names.add(slo.name)
    alerting = settings.alerting
    for key in ("page", "ticket"):
        chosen_receiver = getattr(alerting, key)
        if chosen_receiver is not None and chosen_receiver not in alerting.receivers:
            known_receivers = ", ".join(alerting.receivers) or "none declared under alerting.receivers"
            return (
                ("alerting", key),
                f"receiver {chosen_receiver!r} is not declared",
                f"known receivers: {known_receivers}",
            )
    return None


def parse_settings(
    data: Any, *, loaded: LoadedYaml | None = None, source: Path | None = None, security: bool = True
) -> Settings:
    """Validate a settings mapping; raise SettingsError naming the file, line and key path.

    `security=False` lets insecure but well-formed settings through, for `stack doctor` to report on.
    """
    loaded = loaded or LoadedYaml(data=data)
    where_file = str(source) if source else "stack.yaml"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{where_file}: expected a mapping of settings at the top level")
    try:
        base_dir = source.parent if source else None
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        path, message, hint = _describe(exc.errors()[0], loaded)
        raise SettingsError(f"{_where(source, loaded, path)}: {_dotted(path)}: {message}", hint=hint) from None
    problem = _consistency(settings, loaded, security=security)
    if problem:
        path, message, hint = problem
        raise SettingsError(f"{_where(source, loaded, path)}: {_dotted(path)}: {message}", hint=hint)
    return settings


def read_settings_file(path: Path) -> LoadedYaml:
    """Parse the settings file at `path`; SettingsError (one line, file and line) when it cannot be."""
    try:
        return load_file(path)
    except YamlLimitError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise SettingsError(
            f"{where}: refused: {exc.problem}",
            hint="a settings file is a small regular YAML file; see docs/hostile-input.md",
        ) from None
    except YamlSyntaxError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise SettingsError(
            f"{where}: malformed YAML: {exc.problem}", hint="check the indentation and quoting"
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: cannot be read: not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def load_settings(path: Path | None, *, security: bool = True) -> Settings:
    """Settings from `path`, or the defaults when `path` is None or does not exist.

    A name taken by something other than a regular file is an error (see settings_file_problem).
    """
    if path is None:
        return Settings()
    problem = settings_file_problem(path)
    if problem:
        raise SettingsError(f"{path}: {problem}", hint="point -c (or STACK_CONFIG) at a regular YAML file")
    if not path.exists():
        return Settings()
    loaded = read_settings_file(path)
    return parse_settings(loaded.data, loaded=loaded, source=path, security=security)
