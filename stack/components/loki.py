from __future__ import annotations

from pathlib import Path
from typing import Any

from stack.components.base import Component, ConfigFile, EndpointSpec, PortSpec, Probe, RenderContext, bundled_config
from stack.components.process import Address, BinarySpec, LocalProcess, set_addresses, set_listen_hosts
from stack.rules.packs import LOKI, render_pack
from stack.units import parse_duration

# Loki's ruler reads rule files from <directory>/<tenant>/; without auth the tenant is "fake".
# Where the query frontend and the querier find the query scheduler: Loki's own gRPC listener. Left
# to the ring, which both poll, the scheduler was connected to 8 s after start, and /ready waits for
# that (Loki 3.7.8 on this config: ready after 10.3 s through the ring, 2.4 s with the address).
SCHEDULER_KEYS = ("frontend.scheduler_address", "frontend_worker.scheduler_address")
RULES_DIR = "/etc/loki/rules"
TENANT = "fake"


class Loki(Component):
    name = "loki"
    title = "Loki"
    binary = BinarySpec(
        (("loki", ()), ("loki-linux-amd64", ()), ("loki-linux-arm64", ())),
        "-version",
        "download loki from https://github.com/grafana/loki/releases",
    )
    ports = (PortSpec("http", 3100, "port"), PortSpec("grpc", 9096))
    readiness = Probe("http", "/ready")
    endpoints = (EndpointSpec("http", "Loki", 30),)
    metrics = Probe("http", "/metrics")
    state = {"data": "/loki"}

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        set_listen_hosts(process, address, {"server.http_listen_address": "http", "server.grpc_listen_address": "grpc"})
        set_addresses(process, address, dict.fromkeys(SCHEDULER_KEYS, "grpc"))

    def rule_files(self, ctx: RenderContext) -> dict[str, str]:
        """Rendered LogQL rule files by file name: the enabled Loki packs (stack.yaml `rules.errors`)
        and the user's own (`rules.loki_files`)."""
        rules = ctx.settings.rules
        files = {
            f"{name}.yml": render_pack(name, pack.thresholds, rules.runbook_base_url, LOKI)
            for name, pack in rules.loki_packs().items()
            if pack.enabled
        }
        for path in map(Path, rules.loki_files):
            # Inlined like every other config, so that the render works on a remote engine too.
            files[f"custom-{path.stem}.yml"] = path.read_text(encoding="utf-8")
        return files

    def ruler(self, ctx: RenderContext) -> dict[str, Any]:
        """The ruler's config: rules from the rendered files, alerts to the stack's Alertmanager."""
        ruler: dict[str, Any] = {
            "storage": {"type": "local", "local": {"directory": RULES_DIR}},
            # Scratch space where the ruler keeps the rule files it evaluates.
            "rule_path": "/loki/ruler",
            "evaluation_interval": "1m",
            "ring": {"kvstore": {"store": "inmemory"}},
            "enable_api": True,
        }
        if ctx.enabled("alertmanager"):
            ruler["alertmanager_url"] = ctx.url("alertmanager", "http")
        return ruler

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        settings = ctx.settings.components.loki
        config = bundled_config("loki.yaml")
        config["server"]["http_listen_port"] = ctx.topology.port(self.name, "http")
        config["server"]["grpc_listen_port"] = ctx.topology.port(self.name, "grpc")
        # In its container gRPC listens on every interface, so the loopback reaches it (one node).
        for key in SCHEDULER_KEYS:
            section, field = key.split(".")
            config.setdefault(section, {})[field] = f"127.0.0.1:{config['server']['grpc_listen_port']}"
        # Loki's compactor deletes by whole index periods: anything under 24h is rounded up by Loki.
        hours = max(24, int(parse_duration(settings.retention) // 3600))
        config["limits_config"]["retention_period"] = f"{hours}h"
        rule_files = self.rule_files(ctx)
        if rule_files:
            config["ruler"] = self.ruler(ctx)
        files = [ConfigFile("loki-config", "/etc/loki/config.yaml", self.with_overrides(ctx, config))]
        for file_name, content in rule_files.items():
            stem = file_name.removesuffix(".yml")
            files.append(ConfigFile(f"loki-rules-{stem}", f"{RULES_DIR}/{TENANT}/{file_name}", content))
        return files
