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

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from stack.dashboards import bundled_packs, unknown_pack_hint
from stack.errors import SettingsError
from stack.units import parse_duration, parse_size
from stack.yamlio import KeyPath, LoadedYaml, YamlSyntaxError, load_file

COMPONENT_NAMES = ("otel-collector", "prometheus", "loki", "tempo", "grafana", "alertmanager")


def _duration(value: str) -> str:
    value = str(value).strip()
    if value.startswith("-") or value in ("0", ""):
        raise ValueError(f"{value!r} must be longer than zero")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return value


def _size(value: str | int) -> str:
    size = parse_size(value)
    if size < 16 * 1024**2:
        raise ValueError(f"{value!r} is below the 16M a component needs at the very least")
    return str(value).strip()


def _image(value: str) -> str:
    name = value.rsplit("/", 1)[-1]
    if "@sha256:" in value:
        return value
    if ":" not in name:
        raise ValueError(f"{value!r} has no tag; pin a version")
    if name.endswith(":latest"):
        raise ValueError(f"{value!r} uses 'latest'; pin a version")
    return value


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (use 127.0.0.1, 0.0.0.0 or a specific address)") from None
    return value


def _project(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"{value!r} must be lowercase letters, digits, '-' or '_', starting with a letter or digit")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
MemorySize = Annotated[str | int, AfterValidator(_size)]
Image = Annotated[str, AfterValidator(_image)]
Port = Annotated[int, Field(ge=1, le=65535)]


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


class CollectorSettings(ComponentSettings):
    image: Image = "otel/opentelemetry-collector-contrib:0.160.0"
    port: Port | None = 13133
    otlp_grpc_port: Port | None = 4317
    otlp_http_port: Port | None = 4318
    memory: MemorySize = "256M"
    sampling_ratio: float = Field(1.0, ge=0.0, le=1.0)
    docker_logs: bool = True
    host_metrics: bool = False


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
    image: Image = "grafana/tempo:2.10.6"
    port: Port | None = 3200
    memory: MemorySize = "512M"
    retention: Duration = "72h"


class GrafanaSettings(ComponentSettings):
    image: Image = "grafana/grafana:13.2.0"
    port: Port | None = 3000
    memory: MemorySize = "512M"
    admin_user: str = "admin"


class AlertmanagerSettings(ComponentSettings):
    image: Image = "prom/alertmanager:v0.35.0"
    port: Port | None = 9093
    memory: MemorySize = "128M"


class Components(StrictModel):
    otel_collector: CollectorSettings = Field(default_factory=CollectorSettings, alias="otel-collector")
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    tempo: TempoSettings = Field(default_factory=TempoSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)

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


class ProcessSettings(StrictModel):
    """The process runtime: where its binaries are and where its state lives."""

    # Searched before PATH; relative paths are taken from the directory of stack.yaml.
    bin_dir: str | None = None
    # Per-project data, configs, logs and pids live in <data_dir>/<project>; default .stack-state/process.
    data_dir: str | None = None
    # How long `stack down` waits after SIGTERM before SIGKILL.
    stop_timeout: Duration = "30s"


class Settings(StrictModel):
    project: Annotated[str, AfterValidator(_project)] = "observability"
    bind_address: Annotated[str, AfterValidator(_address)] = "127.0.0.1"
    runtime: Literal["docker", "process"] = "docker"
    components: Components = Field(default_factory=Components)
    scrape_targets: list[ScrapeTarget] = Field(default_factory=list)
    dashboards: DashboardSettings = Field(default_factory=DashboardSettings)
    process: ProcessSettings = Field(default_factory=ProcessSettings)

    def enabled(self) -> list[str]:
        """Names of the enabled components, in their canonical order."""
        return [name for name in COMPONENT_NAMES if self.components.get(name).enabled]

    def component(self, name: str) -> ComponentSettings:
        return self.components.get(name)


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
        if "duration" in message or "longer than zero" in message:
            hint = "use a positive duration such as 15d, 72h or 30m"
        elif "size" in message or "16M" in message:
            hint = "use a size such as 256M or 1G"
        elif "pin a version" in message:
            hint = "e.g. grafana/grafana:13.2.0"
        elif "is not a dashboard pack" in message:
            hint = unknown_pack_hint(str(given))
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
    return found


def _consistency(settings: Settings, loaded: LoadedYaml) -> tuple[KeyPath, str, str] | None:
    seen: dict[int, KeyPath] = {}
    for path, port in _published_ports(settings):
        if port in seen:
            # Blame the port the user wrote, not a default they may not know about.
            blame, other = (
                (path, seen[port]) if path in loaded.lines or seen[port] not in loaded.lines else (seen[port], path)
            )
            return blame, f"port {port} is also published by {_dotted(other)}", "choose another port"
        seen[port] = path
    jobs: set[str] = set(COMPONENT_NAMES)
    for index, target in enumerate(settings.scrape_targets):
        if target.job in jobs:
            return (
                ("scrape_targets", index, "job"),
                f"job {target.job!r} is already used",
                "give every scrape target a job name of its own",
            )
        jobs.add(target.job)
    return None


def parse_settings(data: Any, *, loaded: LoadedYaml | None = None, source: Path | None = None) -> Settings:
    """Validate a settings mapping; raise SettingsError naming the file, line and key path."""
    loaded = loaded or LoadedYaml(data=data)
    where_file = str(source) if source else "stack.yaml"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{where_file}: expected a mapping of settings at the top level")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        path, message, hint = _describe(exc.errors()[0], loaded)
        raise SettingsError(f"{_where(source, loaded, path)}: {_dotted(path)}: {message}", hint=hint) from None
    problem = _consistency(settings, loaded)
    if problem:
        path, message, hint = problem
        raise SettingsError(f"{_where(source, loaded, path)}: {_dotted(path)}: {message}", hint=hint)
    return settings


def load_settings(path: Path | None) -> Settings:
    """Settings from `path`, or the defaults when `path` is None or does not exist."""
    if path is None or not path.exists():
        return Settings()
    try:
        loaded = load_file(path)
    except YamlSyntaxError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise SettingsError(
            f"{where}: malformed YAML: {exc.problem}", hint="check the indentation and quoting"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot be read: {exc}") from None
    return parse_settings(loaded.data, loaded=loaded, source=path)
