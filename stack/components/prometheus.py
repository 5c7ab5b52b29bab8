from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.version import Version

from stack.components.base import (
    Component,
    ConfigFile,
    EndpointSpec,
    PortSpec,
    Probe,
    RenderContext,
    SwarmTopology,
    bundled_config,
)
from stack.components.process import Address, BinarySpec, LocalProcess
from stack.rules.packs import memory_limit_group, render_pack
from stack.rules.slo import render_slos
from stack.settings import Settings
from stack.units import parse_duration, parse_size
from stack.yamlio import dumps

RULES_DIR = "/etc/prometheus/rules"
# Target files (Prometheus file_sd format, YAML or JSON) in the `prometheus-targets` volume mounted
# here are picked up without a restart (compose/services.yaml mounts it).
TARGETS_DIR = "/etc/prometheus/targets"
FILE_SD_JOB = "file_sd"
# Prometheus 3.8 deprecated the retention flags for `storage.tsdb.retention` in the config file and
# made native histograms stable (the feature flag that earlier versions need became a no-op).
RETENTION_IN_CONFIG = Version("3.8")
NATIVE_HISTOGRAMS_STABLE = Version("3.8")
# The native OTLP receiver (`/api/v1/otlp`, `otlp:` in the config) is there from 3.0 on.
OTLP_RECEIVER = Version("3.0")
# Resource attributes that become labels of every metric from OTLP (the rest stays in target_info).
PROMOTED_RESOURCE_ATTRIBUTES = (
    "service.name",
    "service.namespace",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
    "host.name",
    "container.name",
    "k8s.namespace.name",
    "k8s.pod.name",
)
# On Swarm, where Prometheus finds the engine's API for dockerswarm_sd_configs (the node's socket,
# mounted read-only), and the job of the app services that opt in with the label `dev.stack.scrape`.
SWARM_SOCKET = "/var/run/docker.sock"
SWARM_SERVICES_JOB = "swarm_services"
UNPUBLISHED = "not published (its admin API shares the port): query it in Grafana > Explore"
UNPUBLISHED_NO_GRAFANA = (
    "not published (its admin API shares the port): set components.prometheus.port to reach it, admin API included"
)


class Prometheus(Component):
    name = "prometheus"
    title = "Prometheus"
    binary = BinarySpec(
        (("prometheus", ()),),
        "--version",
        "`apt-get install prometheus`, or download it from https://prometheus.io/download/",
        renders_for_version=True,
    )
    has_shell = True
    ports = (PortSpec("http", 9090, "port"),)
    readiness = Probe("http", "/-/ready")
    metrics = Probe("http", "/metrics")
    state = {"data": "/prometheus"}
    endpoints = (EndpointSpec("http", "Prometheus", 10),)

    def unpublished_note(self, settings: Settings) -> str:
        # Never published on Docker unless asked: its admin API (snapshots) answers on the same port.
        if settings.component("grafana").enabled:
            return UNPUBLISHED
        # Without Grafana there is no Explore to point at: say how to reach it, and what that costs.
        return UNPUBLISHED_NO_GRAFANA

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        process.argv.append(f"--web.listen-address={address('http')}")

    def scrape_configs(self, ctx: RenderContext) -> list[dict[str, Any]]:
        from stack.components import REGISTRY  # the registry imports this module

        jobs: list[dict[str, Any]] = []
        for component in REGISTRY.values():
            if component.metrics is None or not ctx.enabled(component.name):
                continue
            if component.swarm_global and self._swarm_discovery(ctx):
                jobs.append(
                    self._swarm_agent_job(
                        ctx,
                        component.name,
                        component.port_spec(component.metrics.port).container,
                        component.metrics.path,
                    )
                )
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
        if self._swarm_discovery(ctx):
            jobs.append(self._swarm_services_job(ctx))
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

    @staticmethod
    def _swarm_discovery(ctx: RenderContext) -> bool:
        return isinstance(ctx.topology, SwarmTopology) and bool(ctx.settings.swarm.docker_socket)

    @staticmethod
    def _swarm_network(ctx: RenderContext) -> str:
        return f"{ctx.settings.project}_default"

    def _swarm_agent_job(self, ctx: RenderContext, component: str, port: int, path: str) -> dict[str, Any]:
        """One target per task of a global service (one per node), named by its node."""
        return {
            "job_name": component,
            "metrics_path": path,
            "dockerswarm_sd_configs": [{"host": f"unix://{SWARM_SOCKET}", "role": "tasks", "port": port}],
            "relabel_configs": [
                {
                    "source_labels": ["__meta_dockerswarm_service_label_dev_stack_project"],
                    "regex": ctx.settings.project,
                    "action": "keep",
                },
                {
                    "source_labels": ["__meta_dockerswarm_service_label_dev_stack_component"],
                    "regex": component,
                    "action": "keep",
                },
                {"source_labels": ["__meta_dockerswarm_task_desired_state"], "regex": "running", "action": "keep"},
                # The task's address on the stack's own network (its ports are not published for this).
                {
                    "source_labels": ["__meta_dockerswarm_network_name"],
                    "regex": self._swarm_network(ctx),
                    "action": "keep",
                },
                # A task with published ports is one target per port: all become the metrics port (and
                # identical targets are scraped once).
                {
                    "source_labels": ["__address__"],
                    "regex": "(.+):\\d+",
                    "replacement": f"$1:{port}",
                    "target_label": "__address__",
                },
                {"source_labels": ["__meta_dockerswarm_node_hostname"], "target_label": "node"},
                {"target_label": "stack_component", "replacement": component},
            ],
        }

    def _swarm_services_job(self, ctx: RenderContext) -> dict[str, Any]:
        """The app services that opt in with deploy labels `dev.stack.scrape: "true"` and
        `dev.stack.port` (and `dev.stack.path`), on a network Prometheus shares (the stack's)."""
        return {
            "job_name": SWARM_SERVICES_JOB,
            "dockerswarm_sd_configs": [{"host": f"unix://{SWARM_SOCKET}", "role": "tasks"}],
            "relabel_configs": [
                {
                    "source_labels": ["__meta_dockerswarm_service_label_dev_stack_scrape"],
                    "regex": "true",
                    "action": "keep",
                },
                {"source_labels": ["__meta_dockerswarm_task_desired_state"], "regex": "running", "action": "keep"},
                {
                    "source_labels": ["__meta_dockerswarm_network_name"],
                    "regex": self._swarm_network(ctx),
                    "action": "keep",
                },
                {
                    "source_labels": ["__address__", "__meta_dockerswarm_service_label_dev_stack_port"],
                    "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                    "replacement": "$1:$2",
                    "target_label": "__address__",
                },
                {
                    "source_labels": ["__meta_dockerswarm_service_label_dev_stack_path"],
                    "regex": "(.+)",
                    "target_label": "__metrics_path__",
                },
                {"source_labels": ["__meta_dockerswarm_service_name"], "target_label": "job"},
                {"source_labels": ["__meta_dockerswarm_node_hostname"], "target_label": "node"},
            ],
        }

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
        settings = ctx.settings.components.prometheus
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
        version = ctx.version(self.name)
        if _at_least(version, RETENTION_IN_CONFIG):
            config["storage"] = {"tsdb": {"retention": {"time": effective_retention(ctx.settings)}}}
        if _at_least(version, OTLP_RECEIVER):
            # The other resource attributes stay in target_info (joined on job and instance).
            config["otlp"] = {
                "promote_resource_attributes": list(PROMOTED_RESOURCE_ATTRIBUTES),
                "keep_identifying_resource_attributes": True,
            }
        files = [ConfigFile("prometheus-config", "/etc/prometheus/prometheus.yml", self.with_overrides(ctx, config))]
        for file_name, content in self.rule_files(ctx).items():
            stem = file_name.removesuffix(".yml")
            files.append(ConfigFile(f"prometheus-rules-{stem}", f"{RULES_DIR}/{file_name}", content))
        return files

    def command_flags(self, ctx: RenderContext) -> list[str]:
        version = ctx.version(self.name)
        flags = []
        if not _at_least(version, RETENTION_IN_CONFIG):
            flags.append(f"--storage.tsdb.retention.time={effective_retention(ctx.settings)}")
        if not _at_least(version, NATIVE_HISTOGRAMS_STABLE):
            # OTel SDKs' exponential histograms arrive as native histograms: without the flag a 2.x
            # Prometheus refuses them on remote write.
            flags.append("--enable-feature=native-histograms")
        if _at_least(version, OTLP_RECEIVER):
            flags.append("--web.enable-otlp-receiver")
        return flags

    def swarm_constraints(self, ctx: RenderContext) -> list[str]:
        # Swarm discovery lists services and tasks, which only a manager's API answers.
        return ["node.role == manager"] if self._swarm_discovery(ctx) else []

    def mounts(self, ctx: RenderContext) -> list[str]:
        if self._swarm_discovery(ctx):
            return [f"{ctx.settings.swarm.docker_socket}:{SWARM_SOCKET}:ro"]
        return []

    def user(self, ctx: RenderContext) -> str | None:
        # The engine's socket is root's (0660 root:docker): Swarm discovery costs running as root.
        return "0" if self._swarm_discovery(ctx) else None


def _at_least(version: Version | None, wanted: Version) -> bool:
    # An unknown version (a digest pin) is taken to be current.
    return version is None or version >= wanted


def otlp_metrics_endpoint(ctx: RenderContext) -> str | None:
    """Where the Collector sends metrics over OTLP/HTTP: Prometheus' own OTLP receiver on 3.x,
    None where the Prometheus predates it (remote write is the path then)."""
    if not ctx.enabled("prometheus") or not _at_least(ctx.version("prometheus"), OTLP_RECEIVER):
        return None
    return ctx.url("prometheus", "http", "/api/v1/otlp")


def downgrade_for_promtool(config: dict[str, Any], version: Version) -> tuple[dict[str, Any], list[str]]:
    """A copy of `config` an older promtool can check: sections it predates are left out (they are
    rendered only for the Prometheus version that reads them). Returns the copy and what was left out."""
    left_out = []
    copy = dict(config)
    if version < RETENTION_IN_CONFIG and "storage" in copy:
        storage = {**copy["storage"], "tsdb": dict(copy["storage"].get("tsdb", {}))}
        if storage["tsdb"].pop("retention", None) is not None:
            left_out.append("storage.tsdb.retention")
        storage = {key: value for key, value in storage.items() if value}
        if storage:
            copy["storage"] = storage
        else:
            del copy["storage"]
    if version < OTLP_RECEIVER and copy.pop("otlp", None) is not None:
        left_out.append("otlp")
    return copy, left_out


def effective_retention(settings: Settings) -> str:
    """Prometheus' retention: the configured one, stretched to the longest SLO window, since an
    error budget over 30 days needs 30 days of data."""
    retention = settings.components.prometheus
    longest = max(settings.slos, key=lambda slo: parse_duration(slo.window), default=None)
    if longest is not None and parse_duration(longest.window) > parse_duration(retention.retention):
        return longest.window
    return retention.retention
