from __future__ import annotations

from pathlib import Path
from typing import Any

from stack.components.base import (
    Component,
    ConfigFile,
    PortSpec,
    Probe,
    RenderContext,
    bundled_config,
)
from stack.rules.packs import memory_limit_group, render_pack
from stack.rules.slo import render_slos
from stack.settings import PrometheusSettings, Settings
from stack.units import parse_duration, parse_size
from stack.yamlio import dumps

RULES_DIR = "/etc/prometheus/rules"
# Target files (Prometheus file_sd format, YAML or JSON) in the `prometheus-targets` volume mounted
# here are picked up without a restart (compose/services.yaml mounts it).
TARGETS_DIR = "/etc/prometheus/targets"
FILE_SD_JOB = "file_sd"


class Prometheus(Component):
    name = "prometheus"
    title = "Prometheus"
    has_shell = True
    ports = (PortSpec("http", 9090, "port"),)
    readiness = Probe("http", "/-/ready")
    metrics = Probe("http", "/metrics")
    state = {"data": "/prometheus"}

    def scrape_configs(self, ctx: RenderContext) -> list[dict[str, Any]]:
        from stack.components import REGISTRY  # the registry imports this module

        jobs: list[dict[str, Any]] = []
        for component in REGISTRY.values():
            if component.metrics is None or not ctx.enabled(component.name):
                continue
            address = (
                f"localhost:{ctx.topology.port(self.name, 'http')}"
                if component.name == self.name
                else ctx.address(component.name, component.metrics.port)
            )
            jobs.append(
                {
                    "job_name": component.name,
                    "metrics_path": component.metrics.path,
                    "static_configs": [{"targets": [address], "labels": {"stack_component": component.name}}],
                }
            )
        jobs.append(
            {
                # The job label comes from each target group's labels (`job: api`), else "file_sd".
                "job_name": FILE_SD_JOB,
                "file_sd_configs": [
                    {"files": [f"{TARGETS_DIR}/*.yml", f"{TARGETS_DIR}/*.yaml", f"{TARGETS_DIR}/*.json"]}
                ],
            }
        )
        for target in ctx.settings.scrape_targets:
            job: dict[str, Any] = {"job_name": target.job, "metrics_path": target.metrics_path, "scheme": target.scheme}
            if target.interval:
                job["scrape_interval"] = target.interval
            static: dict[str, Any] = {"targets": list(target.targets)}
            if target.labels:
                static["labels"] = dict(target.labels)
            job["static_configs"] = [static]
            jobs.append(job)
        return jobs

    def rule_files(self, ctx: RenderContext) -> dict[str, str]:
        """Rendered rule files by file name: the enabled packs, the memory limits, the SLOs."""
        rules = ctx.settings.rules
        files: dict[str, str] = {}
        for name, pack in rules.packs().items():
            if pack.enabled:
                files[f"{name}.yml"] = render_pack(name, pack.thresholds, rules.runbook_base_url)
        if rules.stack.enabled:
            limits = {name: parse_size(ctx.settings.component(name).memory) for name in ctx.settings.enabled()}
            files["stack-limits.yml"] = (
                "# Memory limits of the components (stack.yaml `memory`), for StackComponentMemoryHigh.\n"
                + dumps({"groups": [memory_limit_group(limits)]})
            )
        if ctx.settings.slos:
            files["slos.yml"] = render_slos(list(ctx.settings.slos), rules.runbook_base_url)
        for path in map(Path, rules.files):
            # Inlined like every other config, so that the render works on a remote engine too.
            files[f"custom-{path.stem}.yml"] = path.read_text(encoding="utf-8")
        return files

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        settings = self.settings(ctx)
        assert isinstance(settings, PrometheusSettings)
        config = bundled_config("prometheus.yml")
        config["global"]["scrape_interval"] = settings.scrape_interval
        config["global"]["external_labels"]["stack"] = ctx.settings.project
        if ctx.enabled("alertmanager"):
            config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
                ctx.address("alertmanager", "http")
            ]
        else:
            del config["alerting"]
        config["rule_files"] = [f"{RULES_DIR}/*.yml"]
        config["scrape_configs"] = self.scrape_configs(ctx)
        files = [ConfigFile("prometheus-config", "/etc/prometheus/prometheus.yml", self.with_overrides(ctx, config))]
        for file_name, content in self.rule_files(ctx).items():
            stem = file_name.removesuffix(".yml")
            files.append(ConfigFile(f"prometheus-rules-{stem}", f"{RULES_DIR}/{file_name}", content))
        return files

    def command_flags(self, ctx: RenderContext) -> list[str]:
        settings = self.settings(ctx)
        assert isinstance(settings, PrometheusSettings)
        return [f"--storage.tsdb.retention.time={effective_retention(ctx.settings)}"]


def effective_retention(settings: Settings) -> str:
    """Prometheus' retention: the configured one, stretched to the longest SLO window, since an
    error budget over 30 days needs 30 days of data."""
    retention = settings.component("prometheus")
    assert isinstance(retention, PrometheusSettings)
    longest = max(settings.slos, key=lambda slo: parse_duration(slo.window), default=None)
    if longest is not None and parse_duration(longest.window) > parse_duration(retention.retention):
        return longest.window
    return retention.retention
