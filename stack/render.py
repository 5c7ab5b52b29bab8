"""settings -> one self-contained compose project (compose.yaml with every config inlined)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack import __version__
from stack.components import REGISTRY
from stack.components.base import ConfigFile, RenderContext, bundled_config
from stack.errors import OutputError
from stack.fileio import atomic_write, check_writable_dir
from stack.settings import Settings
from stack.units import format_mib, parse_size
from stack.yamlio import dumps

LABEL_PREFIX = "dev.stack"


@dataclass
class RenderedProject:
    """What `render` produces: the compose document and, for each service, its config files."""

    compose: dict[str, Any]
    configs: dict[str, list[ConfigFile]] = field(default_factory=dict)

    def text(self) -> str:
        header = (
            f"# Rendered by stack {__version__} from stack.yaml: do not edit, run `stack render` instead.\n"
            "# Every component config is inlined below (configs: content), so this file alone is enough,\n"
            "# on this machine or on a remote Docker host.\n"
        )
        return header + dumps(self.compose)


def escape_compose(text: str) -> str:
    """Escape `$` for Compose interpolation, which also applies to inline config content."""
    return text.replace("$", "$$")


def _volume_name(component: str, key: str) -> str:
    return f"{component}-{key}"


def _service(name: str, base: dict[str, Any], ctx: RenderContext, configs: list[ConfigFile]) -> dict[str, Any]:
    component = REGISTRY[name]
    settings = ctx.settings
    comp = settings.component(name)
    service: dict[str, Any] = {"image": comp.image}
    command = list(base.get("command", [])) + component.command_flags(ctx)
    if command:
        service["command"] = command
    environment = {**base.get("environment", {}), **component.environment(ctx)}
    if environment:
        service["environment"] = {key: escape_compose(str(value)) for key, value in sorted(environment.items())}
    secrets = [{"source": secret.name, "target": secret.name} for secret in component.secrets(ctx)]
    if secrets:
        service["secrets"] = secrets
    user = component.user(ctx)
    if user is not None:
        service["user"] = user
    if configs:
        service["configs"] = [{"source": config.name, "target": config.target} for config in configs]
    ports = [
        {
            "target": spec.container,
            "published": str(host_port),
            "host_ip": component.port_host_ip(settings, spec),
            "protocol": "tcp",
        }
        for spec, host_port in component.published(settings)
    ]
    if ports:
        service["ports"] = ports
    volumes = [f"{_volume_name(name, key)}:{path}" for key, path in base.get("volumes", {}).items()]
    volumes += component.mounts(ctx)
    if volumes:
        service["volumes"] = volumes
    if "healthcheck" in base and component.has_shell:
        service["healthcheck"] = base["healthcheck"]
    depends = [dep for dep in base.get("depends_on", []) if settings.component(dep).enabled]
    if depends:
        # Started, not healthy: components come up in parallel; readiness is the CLI's job.
        service["depends_on"] = {dep: {"condition": "service_started"} for dep in depends}
    service["restart"] = "unless-stopped"
    service["deploy"] = {"resources": {"limits": {"memory": format_mib(parse_size(comp.memory))}}}
    # `labels` makes Docker add the compose service name to every line, for the Collector's docker logs.
    service["logging"] = {
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "3", "labels": "com.docker.compose.service"},
    }
    service["labels"] = {f"{LABEL_PREFIX}.project": settings.project, f"{LABEL_PREFIX}.component": name}
    return service


def render_project(settings: Settings, ctx: RenderContext | None = None) -> RenderedProject:
    """Build the compose project for `settings`. Pure: same settings, same result."""
    ctx = ctx or RenderContext(settings=settings)
    base_services = bundled_config("services.yaml", tree="compose")["services"]
    project = RenderedProject(compose={"name": settings.project, "services": {}})
    services: dict[str, Any] = project.compose["services"]
    top_configs: dict[str, Any] = {}
    top_secrets: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for name in settings.enabled():
        configs = REGISTRY[name].configs(ctx)
        project.configs[name] = configs
        services[name] = _service(name, base_services[name], ctx, configs)
        for config in configs:
            top_configs[config.name] = {"content": escape_compose(config.content)}
        for secret in REGISTRY[name].secrets(ctx):
            top_secrets[secret.name] = dict(secret.source)
        for key in base_services[name].get("volumes", {}):
            volumes[_volume_name(name, key)] = {"labels": {f"{LABEL_PREFIX}.project": settings.project}}
    if volumes:
        project.compose["volumes"] = volumes
    if top_configs:
        project.compose["configs"] = top_configs
    if top_secrets:
        project.compose["secrets"] = top_secrets
    return project


def write_project(project: RenderedProject, out_dir: Path) -> Path:
    """Write compose.yaml into `out_dir` atomically; return its path."""
    problem = check_writable_dir(out_dir)
    if problem:
        raise OutputError(f"{out_dir}: cannot write the rendered project: {problem}", hint="use --out DIR")
    target = out_dir / "compose.yaml"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(target, project.text())
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror}", hint="use --out DIR") from None
    return target
