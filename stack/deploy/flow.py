"""The deploy flow: target -> facts -> preflight -> tunnel -> the same up flow as `stack up`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from stack import lifecycle
from stack.components import REGISTRY
from stack.deploy.facts import Facts, engine_facts, own_published_ports, read_host_facts
from stack.deploy.preflight import Check, blocking, run_preflight
from stack.deploy.ssh import Tunnel, open_tunnel
from stack.errors import StackError
from stack.health import DEFAULT_TIMEOUT
from stack.hosttarget import Target, parse_target, ssh_target_of_endpoint
from stack.paths import Paths
from stack.project import render_to_disk
from stack.runtime.docker.runtime import DockerRuntime
from stack.settings import Settings
from stack.sshcli import config_hostname


class DeployRefused(StackError):
    """Preflight failed: nothing was changed on the server."""

    def __init__(self, checks: list[Check]) -> None:
        names = ", ".join(check.name for check in checks)
        security = any(check.security or not check.forceable for check in checks)
        hint = "fix each one" + (
            " (security and compatibility checks cannot be skipped)" if security else ", or rerun with --force"
        )
        super().__init__(f"preflight failed, nothing was changed on the server: {names}", hint=hint)
        self.checks = checks


class TunnelledDockerRuntime(DockerRuntime):
    """The Docker runtime on a remote engine, whose published ports are reached through an SSH tunnel
    to the server's loopback address (readiness, provisioning), so nothing needs a public port."""

    tunnel: Tunnel | None = None

    def base_url(self, service: str, port: str) -> str | None:
        if self.tunnel is not None:
            published = self.published_port(service, port)
            if published is not None and self.tunnel.url(published):
                return self.tunnel.url(published)
        return super().base_url(service, port)


@dataclass
class DeployResult:
    target: Target
    checks: list[Check]
    up: lifecycle.UpResult
    public_url: str | None
    # How to reach the loopback-only components later (Grafana too when no proxy).
    tunnel_command: str | None

    @property
    def ok(self) -> bool:
        return self.up.ok

    @property
    def forced(self) -> list[Check]:
        return [check for check in self.checks if not check.ok and not check.unknown]


def tunnel_ports(settings: Settings) -> list[int]:
    """The server ports worth forwarding: what the components publish on bind_address (not the proxy)."""
    ports = []
    for name in settings.enabled():
        component = REGISTRY[name]
        ports += [
            port
            for spec, port in component.published(settings)
            if component.port_host_ip(settings, spec) == settings.bind_address
        ]
    return ports


def remote_loopback(settings: Settings) -> str:
    return "127.0.0.1" if settings.bind_address in ("0.0.0.0", "::") else settings.bind_address


def ssh_target(target: Target, runtime: DockerRuntime) -> Target | None:
    """The SSH side of the target: itself, or the endpoint of the docker context when it is ssh://."""
    if target.kind == "ssh":
        return target
    endpoint = runtime.context_endpoint()
    return ssh_target_of_endpoint(endpoint or "", target.raw)


def gather_facts(runtime: DockerRuntime, target: Target | None, *, ssh_options: Sequence[str] | None = None) -> Facts:
    facts = engine_facts(runtime.engine_info(), runtime.compose_version().strip())
    facts.own_ports = own_published_ports(runtime.ps_rows())
    if target is None:
        facts.host_facts_missing = "the docker context's endpoint is not ssh://"
        return facts
    try:
        read_host_facts(facts, target, options=list(ssh_options) if ssh_options is not None else None)
    except StackError as exc:
        facts.host_facts_missing = exc.one_line()
    return facts


def _tunnel_command(target: Target | None, settings: Settings) -> str | None:
    grafana = settings.component("grafana")
    if target is None or not grafana.enabled or grafana.port is None:
        return None
    port = f" -p {target.port}" if target.port else ""
    address = remote_loopback(settings)
    return f"ssh -N{port} -L {grafana.port}:{address}:{grafana.port} {target.destination}"


def deploy(
    paths: Paths,
    settings: Settings,
    host: str,
    *,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    pull: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_checks: Callable[[list[Check]], None] | None = None,
    on_readiness: Callable[[Any], None] | None = None,
    provisioner: lifecycle.Provisioner | None = None,
    ssh_options: Sequence[str] | None = None,
    runtime_factory: Callable[[Settings, Paths, str], TunnelledDockerRuntime] | None = None,
) -> DeployResult:
    """Deploy the stack to `host` (ssh://user@server[:port], user@server or a docker context).

    Raises DeployRefused, before anything changes on the server, when a preflight check fails.
    """
    from stack.components.proxy import public_url

    step = on_step or (lambda _message: None)
    target = parse_target(host)
    factory = runtime_factory or (lambda s, p, h: TunnelledDockerRuntime(s, p, host=h))
    runtime = factory(settings, paths, target.docker_host)
    step(f"Connecting to {target.describe()}")
    runtime.check()
    via_ssh = ssh_target(target, runtime)
    step("Rendering the project (on this machine)")
    result = render_to_disk(paths, settings)
    document = yaml.safe_load(result.compose_file.read_text(encoding="utf-8"))
    step("Reading the server's facts")
    facts = gather_facts(runtime, via_ssh, ssh_options=ssh_options)
    server_host = config_hostname(via_ssh.host.strip("[]")) if via_ssh is not None and via_ssh.host else None
    checks = run_preflight(settings, paths, facts, document, server_host=server_host)
    if on_checks:
        on_checks(checks)
    refused = blocking(checks, force=force)
    if refused:
        raise DeployRefused(refused)
    tunnel_cm: contextlib.AbstractContextManager[Tunnel | None]
    if via_ssh is not None:
        step("Opening an SSH tunnel to the server's loopback ports")
        tunnel_cm = open_tunnel(
            via_ssh, tunnel_ports(settings), remote_address=remote_loopback(settings), options=ssh_options
        )
    else:
        tunnel_cm = contextlib.nullcontext(None)
    with tunnel_cm as tunnel:
        runtime.tunnel = tunnel
        try:
            up_result = lifecycle.up(
                paths,
                settings,
                runtime,
                timeout=timeout,
                pull=pull,
                on_step=on_step,
                on_readiness=on_readiness,
                provisioner=provisioner,
            )
        finally:
            runtime.tunnel = None
    return DeployResult(
        target=target,
        checks=checks,
        up=up_result,
        public_url=public_url(settings),
        tunnel_command=_tunnel_command(via_ssh, settings),
    )
