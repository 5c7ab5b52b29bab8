from __future__ import annotations

from typing import Any

from stack.components.base import Component, ConfigFile, PortSpec, Probe, RenderContext, bundled_config
from stack.resources import bundled
from stack.settings import PrometheusSettings

RULES_DIR = "/etc/prometheus/rules"


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
        for rule_file in sorted((bundled("configs") / "prometheus" / "rules").glob("*.yml")):
            files.append(
                ConfigFile(
                    f"prometheus-rules-{rule_file.stem}",
                    f"{RULES_DIR}/{rule_file.name}",
                    rule_file.read_text(encoding="utf-8"),
                )
            )
        return files

    def command_flags(self, ctx: RenderContext) -> list[str]:
        settings = self.settings(ctx)
        assert isinstance(settings, PrometheusSettings)
        return [f"--storage.tsdb.retention.time={settings.retention}"]
