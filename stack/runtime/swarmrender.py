"""settings -> a Swarm stack: the compose project rendered for `docker stack deploy`.

Swarm reads the compose format with a few differences that this module makes:
- no inline `configs: content:`: every config is a file beside stack.yaml, and its Swarm name ends
  with a hash of its content, so that a changed config is a new config and rolls its service (and
  only that service);
- secrets come from files (`.stack-secrets/`, 0600), named by a hash too;
- no `host_ip` on ports: published ports use `mode: host` (the routing mesh needs IPVS, and a
  node-local agent must answer on its own node);
- `deploy:` says where each service runs and how it is updated: agents (the Collector) are global,
  the stateful backends run once on the node with the backend label, next to their volumes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack import __version__
from stack.components import REGISTRY
from stack.components.base import RenderContext, SwarmTopology
from stack.errors import OutputError, SettingsError
from stack.fileio import atomic_write, check_writable_dir
from stack.paths import Paths
from stack.render import LABEL_PREFIX, render_project
from stack.secrets import SecretStore
from stack.settings import Settings
from stack.yamlio import dumps

STACK_FILE = "stack.yaml"
CONFIGS_DIR = "configs"
# A task must run this long after an update before Swarm counts the update a success.
MONITOR = "15s"


@dataclass
class SwarmProject:
    """The stack file as data, and the config files it names (path relative to the swarm dir -> text)."""

    stack: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        header = (
            f"# Rendered by stack {__version__} from stack.yaml for `docker stack deploy`: do not edit,\n"
            "# run `stack render --runtime swarm` instead. Configs are the files beside this one.\n"
        )
        return header + dumps(self.stack)


def swarm_dir(paths: Paths) -> Path:
    return paths.render_dir / "swarm"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def backend_constraint(settings: Settings) -> str:
    key, _, value = settings.swarm.backend_label.partition("=")
    return f"node.labels.{key} == {value}"


def _check_supported(settings: Settings) -> None:
    for name in settings.enabled():
        refusal = REGISTRY[name].swarm_refusal
        if refusal:
            raise SettingsError(f"components.{name}: {refusal[0]}", hint=refusal[1])


def _deploy(name: str, service: dict[str, Any], ctx: RenderContext) -> dict[str, Any]:
    settings = ctx.settings
    component = REGISTRY[name]
    deploy: dict[str, Any] = dict(service.get("deploy", {}))
    # dnsrr: service names resolve to the tasks themselves (no virtual IP, which needs IPVS).
    deploy["endpoint_mode"] = "dnsrr"
    deploy["labels"] = dict(service["labels"])
    deploy["restart_policy"] = {"condition": "any", "delay": "5s"}
    if component.swarm_global:
        deploy["mode"] = "global"
    else:
        deploy["mode"] = "replicated"
        deploy["replicas"] = 1
        deploy["placement"] = {"constraints": [backend_constraint(settings), *component.swarm_constraints(ctx)]}
    # stop-first everywhere: the backends hold their data in a volume one process at a time, and a
    # Collector publishes its ports in host mode, which a second task on the node cannot bind.
    policy = {"parallelism": 1, "order": "stop-first", "failure_action": "rollback", "monitor": MONITOR}
    deploy["update_config"] = policy
    deploy["rollback_config"] = {"parallelism": 1, "order": "stop-first", "monitor": MONITOR}
    return deploy


def _service(name: str, service: dict[str, Any], ctx: RenderContext) -> dict[str, Any]:
    out = {key: value for key, value in service.items() if key not in ("restart", "depends_on", "container_name")}
    if "ports" in out:
        out["ports"] = [
            {
                "target": port["target"],
                "published": int(port["published"]),
                "protocol": port["protocol"],
                "mode": "host",
            }
            for port in out["ports"]
        ]
    if "environment" in out:
        # render.py escaped `$` for compose; a stack file is interpolated the same way, keep it.
        out["environment"] = dict(out["environment"])
    options = dict(out["logging"]["options"])
    # Swarm's containers carry no compose label: name log lines by their Swarm service.
    options["labels"] = "com.docker.swarm.service.name"
    out["logging"] = {**out["logging"], "options": options}
    out["deploy"] = _deploy(name, service, ctx)
    return out


def render_swarm(settings: Settings, paths: Paths) -> SwarmProject:
    """The stack for `settings`: pure but for reading the stored Grafana password (for its hash)."""
    _check_supported(settings)
    ctx = RenderContext(settings=settings, topology=SwarmTopology())
    project = render_project(settings, ctx)
    compose = project.compose
    label = {f"{LABEL_PREFIX}.project": settings.project}
    swarm = SwarmProject(stack={"services": {}})
    configs: dict[str, Any] = {}
    for files in project.configs.values():
        for config in files:
            relative = f"{CONFIGS_DIR}/{config.name}"
            swarm.files[relative] = config.content
            swarm_name = f"{settings.project}_{config.name}_{digest(config.content)}"
            configs[config.name] = {"file": f"./{relative}", "name": swarm_name, "labels": label}
    for name, service in compose["services"].items():
        swarm.stack["services"][name] = _service(name, service, ctx)
    # Attachable: app services (or a one-off container) can join it, to be scraped or to send OTLP.
    swarm.stack["networks"] = {"default": {"driver": "overlay", "attachable": True, "labels": label}}
    if "volumes" in compose:
        swarm.stack["volumes"] = compose["volumes"]
    if configs:
        swarm.stack["configs"] = configs
    # The secrets the project generates (Grafana's admin password) come from its 0600 store.
    store = SecretStore.for_paths(paths)
    secrets: dict[str, Any] = {}
    for name in compose["services"]:
        for secret, stored in REGISTRY[name].stored_secrets().items():
            value = store.ensure(stored)
            secrets[secret] = {
                "file": str(store.path(stored).resolve()),
                "name": f"{settings.project}_{secret}_{digest(value)}",
                "labels": label,
            }
    if secrets:
        swarm.stack["secrets"] = secrets
    return swarm


def write_swarm(swarm: SwarmProject, out_dir: Path) -> Path:
    """Write the stack file and its configs into `out_dir` atomically (each file); the stack file's path."""
    problem = check_writable_dir(out_dir)
    if problem:
        raise OutputError(f"{out_dir}: cannot write the rendered stack: {problem}", hint="use --out DIR")
    target = out_dir / STACK_FILE
    try:
        (out_dir / CONFIGS_DIR).mkdir(parents=True, exist_ok=True)
        for relative, text in swarm.files.items():
            atomic_write(out_dir / relative, text)
        for stale in (out_dir / CONFIGS_DIR).iterdir():
            if f"{CONFIGS_DIR}/{stale.name}" not in swarm.files:
                stale.unlink()
        atomic_write(target, swarm.text())
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror}", hint="use --out DIR") from None
    return target
