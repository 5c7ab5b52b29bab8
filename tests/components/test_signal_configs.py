"""Collector, Loki, Tempo and datasource configs, checked against the pinned versions' documented keys.

No Loki or Tempo binary can be had on this machine, so these tests pin what their documentation
requires (and what it removed) for Loki 3.7 and Tempo 2.10. The real Collector reads every rendered
Collector config in tests/components/test_collector_real.py; these tests pin the shape the stack relies on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.components.base import RenderContext
from stack.render import render_project
from stack.settings import COMPONENT_NAMES, Settings, parse_settings
from tests.support import realbin


def _config(settings: Settings, component: str, index: int = 0) -> dict[str, Any]:
    return yaml.safe_load(render_project(settings).configs[component][index].content)


def _collector(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return _config(parse_settings(data or {}), "otel-collector")


# Collector ------------------------------------------------------------------------------------

# Removed from contrib (a config naming them does not start) or replaced by new names.
REMOVED_COLLECTOR_COMPONENTS = {"loki", "logging", "jaeger", "memory_ballast", "ballast"}
# Renamed exporters (otlp -> otlp_grpc, otlphttp -> otlp_http, ...) and receivers (filelog -> file_log).
DEPRECATED_COLLECTOR_NAMES = {
    "exporters": {"otlp", "otlphttp", "prometheusremotewrite"},
    "receivers": {"filelog", "hostmetrics"},
    "processors": {"deltatocumulative", "batch"},
}


def _kinds(config: dict[str, Any]) -> dict[str, set[str]]:
    return {kind: set(config.get(kind, {})) for kind in ("receivers", "processors", "exporters", "extensions")}


PROMETHEUS_2 = {"components": {"prometheus": {"image": "prom/prometheus:v2.42.0"}}}


def test_collector_pipelines_by_default() -> None:
    config = _collector()
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs", "logs/docker"}
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/tempo"]
    # The pinned Prometheus is 3.x: metrics go to its own OTLP receiver (issue 17).
    assert pipelines["metrics"]["exporters"] == ["otlp_http/prometheus"]
    assert "prometheus_remote_write" not in config["exporters"]
    assert config["exporters"]["otlp_http/prometheus"]["metrics_endpoint"] == (
        "http://prometheus:9090/api/v1/otlp/v1/metrics"
    )
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]
    assert pipelines["logs/docker"]["receivers"] == ["file_log/docker"]
    assert config["exporters"]["otlp_grpc/tempo"]["endpoint"] == "tempo:4317"
    assert config["exporters"]["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    # Prometheus' OTLP receiver takes cumulative temporality only, as remote write does.
    assert pipelines["metrics"]["processors"] == ["memory_limiter", "delta_to_cumulative"]
    # Batching is the exporters' (sending_queue.batch): the batch processor is being retired.
    for name in ("otlp_grpc/tempo", "otlp_http/loki", "otlp_http/prometheus"):
        assert config["exporters"][name]["sending_queue"]["batch"]["flush_timeout"] == "50ms", name
    # The same resource attributes become labels, promoted by Prometheus itself.
    prometheus = _config(parse_settings({}), "prometheus")
    assert {"service.name", "service.namespace", "deployment.environment"} <= set(
        prometheus["otlp"]["promote_resource_attributes"]
    )


def test_collector_remote_writes_to_a_prometheus_2() -> None:
    config = _collector(PROMETHEUS_2)
    pipelines = config["service"]["pipelines"]
    assert pipelines["metrics"]["exporters"] == ["prometheus_remote_write"]
    assert "otlp_http/prometheus" not in config["exporters"]
    assert config["exporters"]["prometheus_remote_write"]["http"]["endpoint"] == "http://prometheus:9090/api/v1/write"
    # Which resource attributes become labels on every series; the rest stay on target_info.
    labels = config["exporters"]["prometheus_remote_write"]["resource_constant_labels"]["included"]
    assert {"service.name", "service.namespace", "deployment.environment"} <= set(labels)


@pytest.mark.parametrize(
    "data",
    [{}, {"components": {"otel-collector": {"host_metrics": True, "sampling_ratio": 0.1}}}],
    ids=["defaults", "host metrics and sampling"],
)
def test_collector_pipelines_are_well_formed(data: dict[str, Any]) -> None:
    config = _collector(data)
    kinds = _kinds(config)
    for name, pipeline in config["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= kinds[kind], (name, kind)
    used = {
        kind: {item for pipeline in config["service"]["pipelines"].values() for item in pipeline[kind]}
        for kind in ("receivers", "processors", "exporters")
    }
    for kind in ("receivers", "processors", "exporters"):
        assert kinds[kind] == used[kind], f"{kind} defined but unused"
    names = {name.split("/")[0] for kind in kinds.values() for name in kind}
    assert not names & REMOVED_COLLECTOR_COMPONENTS
    for kind, deprecated in DEPRECATED_COLLECTOR_NAMES.items():
        assert not {name.split("/")[0] for name in kinds[kind]} & deprecated, kind
    assert set(config["service"]["extensions"]) == kinds["extensions"]


def test_collector_listens_on_every_interface_inside_its_container() -> None:
    config = _collector()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader["host"] == "0.0.0.0" and reader["port"] == 8888


def test_memory_limiter_and_gomemlimit_follow_the_memory_setting() -> None:
    settings = parse_settings({"components": {"otel-collector": {"memory": "1G"}}})
    config = _config(settings, "otel-collector")
    assert config["processors"]["memory_limiter"]["limit_percentage"] == 80
    assert config["processors"]["memory_limiter"]["check_interval"] == "1s"
    assert render_project(settings).compose["services"]["otel-collector"]["environment"]["GOMEMLIMIT"] == "819MiB"


def test_sampling_ratio_reaches_the_traces_pipeline_only() -> None:
    config = _collector({"components": {"otel-collector": {"sampling_ratio": 0.25}}})
    pipelines = config["service"]["pipelines"]
    assert config["processors"]["probabilistic_sampler"] == {"sampling_percentage": 25.0}
    assert pipelines["traces"]["processors"] == ["memory_limiter", "probabilistic_sampler"]
    assert all("probabilistic_sampler" not in p["processors"] for n, p in pipelines.items() if n != "traces")


def test_docker_logs_read_the_engine_log_files_as_root_read_only() -> None:
    config = _collector()
    receiver = config["receivers"]["file_log/docker"]
    assert receiver["include"] == ["/var/lib/docker/containers/*/*-json.log"]
    assert receiver["include_file_path"] is True
    assert receiver["start_at"] == "end"
    operators = {op["type"] for op in receiver["operators"]}
    assert operators <= {"json_parser", "regex_parser", "move", "remove"}
    targets = {op.get("to") for op in receiver["operators"]}
    assert {'resource["container.id"]', 'resource["container.name"]', "body"} <= targets
    service = render_project(Settings()).compose["services"]["otel-collector"]
    assert "/var/lib/docker/containers:/var/lib/docker/containers:ro" in service["volumes"]
    assert service["user"] == "0"
    # Every container of the stack tags its log lines with its compose service name.
    for name, other in render_project(Settings()).compose["services"].items():
        assert other["logging"]["options"]["labels"] == "com.docker.compose.service", name


def test_docker_logs_switch_off() -> None:
    settings = parse_settings({"components": {"otel-collector": {"docker_logs": False}}})
    config = _config(settings, "otel-collector")
    assert "file_log/docker" not in config["receivers"]
    assert "logs/docker" not in config["service"]["pipelines"]
    service = render_project(settings).compose["services"]["otel-collector"]
    assert "volumes" not in service and "user" not in service


def test_host_metrics_switch_on() -> None:
    settings = parse_settings({"components": {"otel-collector": {"host_metrics": True}}})
    config = _config(settings, "otel-collector")
    assert config["receivers"]["host_metrics"]["root_path"] == "/hostfs"
    assert {"cpu", "memory", "filesystem", "disk", "network", "load"} <= set(
        config["receivers"]["host_metrics"]["scrapers"]
    )
    assert config["service"]["pipelines"]["metrics/host"]["exporters"] == ["otlp_http/prometheus"]
    assert "/:/hostfs:ro" in render_project(settings).compose["services"]["otel-collector"]["volumes"]


@dataclass(frozen=True)
class _Local:
    """A topology like the process runtime's: everything on 127.0.0.1 at other ports."""

    def host(self, component: str, port: str | None = None) -> str:
        return "127.0.0.1"

    def port(self, component: str, port: str) -> int:
        return 20000 + COMPONENT_NAMES.index(component) * 10 + len(port)


def test_local_processes_get_local_addresses_and_no_container_inputs() -> None:
    settings = parse_settings({"components": {"otel-collector": {"host_metrics": True}}})
    ctx = RenderContext(settings=settings, topology=_Local())
    from stack.components.collector import Collector

    config = Collector().document(ctx)
    assert config["exporters"]["otlp_grpc/tempo"]["endpoint"].startswith("127.0.0.1:")
    assert config["exporters"]["otlp_http/loki"]["endpoint"].startswith("http://127.0.0.1:")
    assert "logs/docker" not in config["service"]["pipelines"]
    assert config["receivers"]["host_metrics"]["root_path"] == "/"
    assert Collector().mounts(ctx) == [] and Collector().user(ctx) is None


# Loki -----------------------------------------------------------------------------------------


def test_loki_schema_storage_and_retention() -> None:
    config = _config(parse_settings({"components": {"loki": {"retention": "14d"}}}), "loki")
    schema = config["schema_config"]["configs"]
    assert schema[-1]["store"] == "tsdb" and schema[-1]["schema"] == "v13"
    assert schema[-1]["index"]["period"] == "24h"
    assert config["common"]["storage"]["filesystem"]
    assert config["compactor"]["retention_enabled"] is True
    assert config["compactor"]["delete_request_store"] == "filesystem"
    assert config["limits_config"]["retention_period"] == "336h"
    assert config["limits_config"]["allow_structured_metadata"] is True
    assert config["analytics"]["reporting_enabled"] is False
    assert config["auth_enabled"] is False


def test_loki_pattern_ingester_is_tuned_for_one_node_like_the_ingester() -> None:
    # /ready waits for the pattern ingester's own lifecycler too (15 s by default).
    config = _config(Settings(), "loki")
    assert config["pattern_ingester"]["enabled"] is True
    assert config["pattern_ingester"]["lifecycler"]["min_ready_duration"] == "1s"
    assert config["ingester"]["lifecycler"]["min_ready_duration"] == "1s"


def test_loki_finds_its_own_scheduler_without_the_ring() -> None:
    # Found through the ring, which the query frontend and the querier poll, the scheduler was
    # connected to 8 s after start, and /ready waited for it (Loki 3.7.8: 10.3 s, now 2.4 s to ready).
    config = _config(Settings(), "loki")
    own = f"127.0.0.1:{config['server']['grpc_listen_port']}"
    assert config["frontend"]["scheduler_address"] == own
    assert config["frontend_worker"]["scheduler_address"] == own


def test_loki_has_no_key_removed_in_3x() -> None:
    text = render_project(Settings()).configs["loki"][0].content
    for removed in ("shared_store", "boltdb", "table_manager", "enforce_metric_name", "max_look_back_period"):
        assert removed not in text, removed


# Tempo ----------------------------------------------------------------------------------------


def test_tempo_receivers_storage_and_generator() -> None:
    config = _config(parse_settings({"components": {"tempo": {"retention": "7d"}}}), "tempo")
    protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["storage"]["trace"]["backend"] == "local"
    assert config["compactor"]["compaction"]["block_retention"] == "168h"
    remote = config["metrics_generator"]["storage"]["remote_write"]
    assert remote == [{"url": "http://prometheus:9090/api/v1/write", "send_exemplars": True}]
    # 2.x per-tenant settings live under overrides.defaults (the legacy flat format is deprecated).
    processors = config["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert processors == ["service-graphs", "span-metrics", "local-blocks"]
    assert set(config["overrides"]) == {"defaults"}
    assert config["usage_report"]["reporting_enabled"] is False


def test_tempo_local_blocks_keep_every_span_and_history() -> None:
    # TraceQL metrics and Traces Drilldown read local-blocks: all spans, flushed to storage.
    config = _config(Settings(), "tempo")
    local_blocks = config["metrics_generator"]["processor"]["local_blocks"]
    assert local_blocks == {"filter_server_spans": False, "flush_to_storage": True}


def test_tempo_has_no_key_removed_in_2x() -> None:
    text = render_project(Settings()).configs["tempo"][0].content
    for removed in ("search_enabled", "metrics_generator_enabled", "metrics_generator_processors", "ingestion_rate_"):
        assert removed not in text, removed


# Prometheus -----------------------------------------------------------------------------------


def test_prometheus_scrapes_components_targets_and_watches_target_files() -> None:
    config = _config(Settings(), "prometheus")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {*COMPONENT_NAMES, "file_sd"}
    assert jobs["otel-collector"]["static_configs"][0]["targets"] == ["otel-collector:8888"]
    assert jobs["file_sd"]["file_sd_configs"][0]["files"][0] == "/etc/prometheus/targets/*.yml"
    command = render_project(Settings()).compose["services"]["prometheus"]["command"]
    for flag in ("--web.enable-remote-write-receiver", "--enable-feature=exemplar-storage", "--web.enable-lifecycle"):
        assert flag in command


def test_prometheus_scrapes_the_proxy_on_its_internal_listener_only() -> None:
    settings = parse_settings({"profile": "server", "server": {"hostname": "grafana.example.com"}})
    jobs = {job["job_name"]: job for job in _config(settings, "prometheus")["scrape_configs"]}
    assert set(jobs) == {*COMPONENT_NAMES, "proxy", "file_sd"}
    # The health listener (8081, never published), not the public 443 nor Caddy's admin API (2019).
    assert jobs["proxy"]["metrics_path"] == "/metrics"
    assert jobs["proxy"]["static_configs"] == [{"targets": ["proxy:8081"], "labels": {"stack_component": "proxy"}}]
    published = render_project(settings).compose["services"]["proxy"]["ports"]
    assert [port["target"] for port in published] == [443, 80]


# Datasources ----------------------------------------------------------------------------------


def test_datasources_are_linked_to_each_other() -> None:
    sources = {d["uid"]: d for d in _config(Settings(), "grafana")["datasources"]}
    assert set(sources) == {"prometheus", "loki", "tempo", "alertmanager"}
    exemplars = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {e["name"] for e in exemplars} == {"trace_id", "traceID"}
    assert {e["datasourceUid"] for e in exemplars} == {"tempo"}
    derived = sources["loki"]["jsonData"]["derivedFields"]
    assert {d["datasourceUid"] for d in derived} == {"tempo"}
    tempo = sources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"
    assert tempo["nodeGraph"]["enabled"] is True
    # Ignored since Grafana 11.
    assert "lokiSearch" not in tempo


def test_trace_to_logs_is_a_custom_query_that_logs_drilldown_can_follow() -> None:
    from stack.grafana.push_datasources import api_datasource

    source = next(d for d in _config(Settings(), "grafana")["datasources"] if d["uid"] == "tempo")
    logs = source["jsonData"]["tracesToLogsV2"]
    assert "filterByTraceID" not in logs
    assert logs["customQuery"] is True
    # `$$` in the file is a literal `$` for Grafana; the API gets it unescaped.
    assert logs["query"] == '{$${__tags}} | trace_id="$${__trace.traceId}"'
    pushed = api_datasource(source)["jsonData"]["tracesToLogsV2"]["query"]
    assert pushed == '{${__tags}} | trace_id="${__trace.traceId}"'


def test_a_real_prometheus_picks_up_a_new_target_file_without_restart(tmp_path: Path) -> None:
    from stack.components.prometheus import TARGETS_DIR

    config = _config(Settings(), "prometheus")
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "file_sd")
    targets = tmp_path / "targets"
    targets.mkdir()
    job["file_sd_configs"][0]["files"] = [
        pattern.replace(TARGETS_DIR, str(targets)) for pattern in job["file_sd_configs"][0]["files"]
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}))
    with realbin.prometheus(path, tmp_path / "data") as server:
        (targets / "api.yml").write_text(
            yaml.safe_dump([{"targets": [f"127.0.0.1:{server.port}"], "labels": {"job": "api", "team": "backend"}}])
        )
        deadline = time.monotonic() + 20
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            active = requests.get(f"{server.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            found = [t for t in active if t["labels"].get("job") == "api"]
            time.sleep(0.3)
    assert found, "the target file was not picked up"
    assert found[0]["labels"]["team"] == "backend"
    assert found[0]["scrapePool"] == "file_sd"


def test_prometheus_keeps_at_least_the_longest_slo_window() -> None:
    slo = {"name": "a", "objective": 99.9, "window": "28d", "sli": {"kind": "availability"}}

    def retention(data: dict[str, Any]) -> str:
        return _config(parse_settings(data), "prometheus")["storage"]["tsdb"]["retention"]["time"]

    assert retention({"slos": [slo]}) == "28d"
    assert retention({"slos": [slo], "components": {"prometheus": {"retention": "90d"}}}) == "90d"
    assert retention({}) == "15d"
