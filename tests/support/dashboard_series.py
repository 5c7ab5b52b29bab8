"""The synthetic data set the dashboard tests load into a real Prometheus.

`CATALOG` lists every metric the bundled packs query: name, type, labels (with the values the
synthetic series take) and the pack that needs it. Names and labels follow the signals catalog
(docs/metrics.md): a series here carries no label that catalog does not promise, so a panel that
groups or filters on an undocumented label shows up as "no data" in the tests. Values follow simple deterministic
curves so that every rate, ratio and quantile the panels compute is defined and non-zero.
"""

from __future__ import annotations

import itertools
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

STEP_SECONDS = 30
HISTORY_SECONDS = 2 * 3600
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Label values shared by several metrics.
CLASSIC_APP = "node-api"  # prom-client style names
OTEL_APP = "checkout-api"  # OpenTelemetry semantic conventions, pushed through the Collector
WORKER = "worker"
LLM_APP = "llm-app"
STACK_JOBS = ("otel-collector", "prometheus", "loki", "tempo", "grafana", "alertmanager")


@dataclass(frozen=True)
class Metric:
    """A metric family as the dashboards expect it."""

    name: str  # the series name; counters end in _total, histograms are given by their base name
    type: str  # counter | gauge | histogram
    pack: str
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scale: float = 1.0  # counters: increase per second; gauges: level; histograms: requests per second
    mean: float = 0.2  # histograms: typical observation (seconds)
    flat: bool = False  # gauges: constant (states, objectives, timestamps) instead of wobbling

    def label_sets(self) -> Iterator[dict[str, str]]:
        keys = list(self.labels)
        for values in itertools.product(*(self.labels[key] for key in keys)):
            yield dict(zip(keys, values, strict=True))


def _m(name: str, kind: str, pack: str, scale: float = 1.0, mean: float = 0.2, /, **labels: tuple[str, ...]) -> Metric:
    flat = name in ("up", "ALERTS", "target_info") or name.startswith(("slo:", "stack:", "prometheus_remote_storage_"))
    return Metric(name, kind, pack, dict(labels), scale, mean, flat)


ROUTES = ("/orders", "/health")
STATUS = ("200", "401", "403", "404", "429", "500")
PY_APP = "py-api"  # Python exporters: the status in `status`, the route in `handler`
GO_APP = "go-api"  # Go's promhttp style: the status in `code`, the route in `path`
QUEUES = ("emails", "reports")
EVENTS = ("order.updated", "chat.message")
BUDGETS = ("team-search", "team-support")
ACTIVITIES = ("ChargeCard", "SendEmail")
STACK_COMPONENT = {"job": STACK_JOBS, "stack_component": STACK_JOBS}

CATALOG: list[Metric] = [
    # --- stack-health: the components' own metrics (names as the pinned versions expose them) ---
    _m("up", "gauge", "stack-health", **STACK_COMPONENT),
    _m(
        "ALERTS",
        "gauge",
        "stack-health",
        alertname=("HTTPErrorRateHigh",),
        alertstate=("firing",),
        severity=("critical", "warning"),
        # The alert rules copy `job` into `service` (docs/metrics.md).
        job=(CLASSIC_APP,),
        service=(CLASSIC_APP,),
    ),
    _m("prometheus_tsdb_head_samples_appended_total", "counter", "stack-health", 500, job=("prometheus",)),
    _m("prometheus_tsdb_head_series", "gauge", "stack-health", 20000, job=("prometheus",)),
    _m("prometheus_tsdb_storage_blocks_bytes", "gauge", "stack-health", 2e8, job=("prometheus",)),
    _m("prometheus_tsdb_wal_storage_size_bytes", "gauge", "stack-health", 5e7, job=("prometheus",)),
    _m(
        "prometheus_rule_evaluation_failures_total",
        "counter",
        "stack-health",
        0.01,
        job=("prometheus",),
        rule_group=("slo",),
    ),
    _m(
        "prometheus_http_requests_total",
        "counter",
        "stack-health",
        2,
        job=("prometheus",),
        handler=("/api/v1/write",),
        code=("204", "400"),
    ),
    _m("prometheus_remote_storage_highest_timestamp_in_seconds", "gauge", "stack-health", 1.7e9, job=("tempo",)),
    _m(
        "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
        "gauge",
        "stack-health",
        1.7e9 - 3,
        job=("tempo",),
        remote_name=("prometheus",),
    ),
    _m("loki_distributor_lines_received_total", "counter", "stack-health", 40, job=("loki",), tenant=("fake",)),
    _m("loki_discarded_samples_total", "counter", "stack-health", 0.1, job=("loki",), reason=("rate_limited",)),
    _m(
        "tempo_distributor_spans_received_total",
        "counter",
        "stack-health",
        80,
        job=("tempo",),
        tenant=("single-tenant",),
    ),
    _m("tempo_discarded_spans_total", "counter", "stack-health", 0.1, job=("tempo",), reason=("trace_too_large",)),
    *(
        _m(
            f"otelcol_{stage}_{signal}_total",
            "counter",
            "stack-health",
            10,
            job=("otel-collector",),
            **({"receiver": ("otlp",)} if stage.startswith("receiver") else {"exporter": ("otlp_http/loki",)}),
        )
        for stage in ("receiver_accepted", "receiver_refused", "exporter_sent", "exporter_send_failed")
        for signal in ("spans", "log_records", "metric_points")
    ),
    _m("otelcol_exporter_queue_size", "gauge", "stack-health", 12, job=("otel-collector",), exporter=("otlp/tempo",)),
    _m(
        "otelcol_exporter_queue_capacity",
        "gauge",
        "stack-health",
        1000,
        job=("otel-collector",),
        exporter=("otlp/tempo",),
    ),
    _m(
        "otelcol_process_memory_rss_bytes",
        "gauge",
        "stack-health",
        1.2e8,
        job=("otel-collector",),
        stack_component=("otel-collector",),
    ),
    # Recorded by the stack rule pack from the memory limits in stack.yaml.
    _m("stack:memory_limit:bytes", "gauge", "stack-health", 5.36e8, job=STACK_JOBS),
    _m(
        "process_resident_memory_bytes",
        "gauge",
        "stack-health",
        3e8,
        job=STACK_JOBS[1:],
        stack_component=STACK_JOBS[1:],
    ),
    _m(
        "system_filesystem_usage_bytes",
        "gauge",
        "stack-health",
        5e10,
        job=("otel-collector",),
        mountpoint=("/", "/var/lib/docker"),
        state=("used", "free"),
    ),
    # --- service-overview: both HTTP conventions ---
    _m(
        "http_requests_total",
        "counter",
        "service-overview",
        5,
        job=(CLASSIC_APP,),
        route=ROUTES,
        method=("GET",),
        status_code=STATUS,
    ),
    _m(
        "http_request_duration_seconds",
        "histogram",
        "service-overview",
        5,
        0.15,
        job=(CLASSIC_APP,),
        route=ROUTES,
        method=("GET",),
        status_code=STATUS,
    ),
    _m(
        "http_requests_errors_total",
        "counter",
        "service-overview",
        0.2,
        job=(CLASSIC_APP,),
        route=ROUTES,
        method=("GET",),
        status_code=("500", "503"),
    ),
    _m(
        "http_server_request_duration_seconds",
        "histogram",
        "service-overview",
        8,
        0.3,
        job=(OTEL_APP,),
        http_route=ROUTES,
        http_request_method=("POST",),
        http_response_status_code=STATUS,
    ),
    _m(
        "http_requests_total",
        "counter",
        "service-overview",
        3,
        job=(PY_APP,),
        handler=ROUTES,
        method=("GET",),
        status=STATUS,
    ),
    _m(
        "http_requests_total",
        "counter",
        "service-overview",
        2,
        job=(GO_APP,),
        path=ROUTES,
        method=("GET",),
        code=STATUS,
    ),
    _m("http_server_active_requests", "gauge", "service-overview", 4, job=(OTEL_APP,)),
    _m("socket_active_connections", "gauge", "service-overview", 120, job=(CLASSIC_APP,)),
    # --- slos: the recording rules the renderer generates for each SLO ---
    _m("slo:objective:ratio", "gauge", "slos", 0.999, slo=("api-availability", "api-latency"), service=(CLASSIC_APP,)),
    _m(
        "slo:window:seconds",
        "gauge",
        "slos",
        7 * 86400,
        slo=("api-availability", "api-latency"),
        service=(CLASSIC_APP,),
    ),
    *(
        _m(
            f"slo:sli_error:ratio_rate{window}",
            "gauge",
            "slos",
            0.0005,
            slo=("api-availability", "api-latency"),
            service=(CLASSIC_APP,),
        )
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "_window")
    ),
    _m(
        "slo:error_budget:remaining",
        "gauge",
        "slos",
        0.6,
        slo=("api-availability", "api-latency"),
        service=(CLASSIC_APP,),
    ),
    # --- queues ---
    _m(
        "queue_jobs_total",
        "gauge",
        "queues",
        40,
        job=(CLASSIC_APP,),
        queue=QUEUES,
        state=("waiting", "active", "delayed", "completed", "failed"),
    ),
    _m("queue_depth", "gauge", "queues", 35, job=(CLASSIC_APP,), queue=QUEUES),
    _m("queue_jobs_failed_total", "counter", "queues", 0.05, job=(CLASSIC_APP,), queue=QUEUES),
    _m("queue_workers_active", "gauge", "queues", 3, job=(CLASSIC_APP,)),
    _m("queue_job_duration_seconds", "histogram", "queues", 2, 1.5, job=(CLASSIC_APP,), queue=QUEUES),
    _m("production_tick_duration_seconds", "histogram", "queues", 1, 0.4, job=(WORKER,)),
    # --- realtime ---
    _m("socket_events_published_total", "counter", "realtime", 20, job=(CLASSIC_APP,), event=EVENTS),
    _m("socket_events_delivered_total", "counter", "realtime", 60, job=(CLASSIC_APP,), event=EVENTS),
    _m("socket_delivery_latency_seconds", "histogram", "realtime", 60, 0.03, job=(CLASSIC_APP,)),
    _m("socket_buffer_size", "gauge", "realtime", 25, job=(CLASSIC_APP,)),
    # --- llm ---
    _m(
        "llm_cost_usd_total",
        "counter",
        "llm",
        0.002,
        job=(LLM_APP,),
        provider=("openai", "anthropic"),
        model=("gpt-4o", "claude-sonnet"),
        operation=("chat", "embedding"),
        budget=BUDGETS,
    ),
    _m(
        "llm_tokens_total",
        "counter",
        "llm",
        300,
        job=(LLM_APP,),
        operation=("chat", "embedding"),
        type=("input", "output"),
    ),
    _m(
        "llm_requests_total",
        "counter",
        "llm",
        2,
        job=(LLM_APP,),
        model=("gpt-4o", "claude-sonnet"),
        status=("ok", "error"),
    ),
    _m("llm_budget_usage_ratio", "gauge", "llm", 0.62, job=(LLM_APP,), budget=BUDGETS),
    _m("llm_budget_spent_usd", "gauge", "llm", 310, job=(LLM_APP,), budget=BUDGETS),
    _m("llm_budget_limit_usd", "gauge", "llm", 500, job=(LLM_APP,), budget=BUDGETS),
    _m("llm_budget_exceeded_total", "counter", "llm", 0.01, job=(LLM_APP,), budget=BUDGETS),
    _m("llm_budget_reservations_active", "gauge", "llm", 4, job=(LLM_APP,), budget=BUDGETS),
    # --- workflows ---
    _m(
        "temporal_workflow_executions_total",
        "counter",
        "workflows",
        0.5,
        job=(WORKER,),
        workflow_type=("OrderFulfilment", "Invoice"),
        status=("started", "completed", "failed", "timed_out"),
    ),
    _m(
        "temporal_workflows_active",
        "gauge",
        "workflows",
        12,
        job=(WORKER,),
        workflow_type=("OrderFulfilment", "Invoice"),
    ),
    _m("temporal_task_queue_depth", "gauge", "workflows", 8, job=(WORKER,), task_queue=("orders", "billing")),
    _m("temporal_activity_duration_seconds", "histogram", "workflows", 1, 0.8, job=(WORKER,), activity_type=ACTIVITIES),
    _m(
        "temporal_activity_failures_total",
        "counter",
        "workflows",
        0.02,
        job=(WORKER,),
        activity_type=ACTIVITIES,
        # Optional in docs/metrics.md: the workflows dashboard shows failures by reason when present.
        reason=("timeout", "ApplicationError"),
    ),
    # --- security ---
    _m(
        "auth_failures_total",
        "counter",
        "security",
        0.3,
        job=(CLASSIC_APP,),
        source=("203.0.113.7", "198.51.100.23"),
    ),
    _m(
        "security_intrusion_attempts_total",
        "counter",
        "security",
        0.01,
        job=(CLASSIC_APP,),
        kind=("sql_injection", "path_traversal"),
    ),
    # --- explore: OTLP apps' resource attributes (the Collector's remote write writes target_info) ---
    _m("target_info", "gauge", "explore", 1, job=(OTEL_APP,), instance=("checkout-1",)),
    # --- explore: Tempo's metrics generator (service graphs and span metrics, remote-written) ---
    _m(
        "traces_service_graph_request_total",
        "counter",
        "explore",
        6,
        client=(OTEL_APP,),
        server=(CLASSIC_APP,),
        connection_type=("",),
    ),
    _m(
        "traces_service_graph_request_failed_total",
        "counter",
        "explore",
        0.2,
        client=(OTEL_APP,),
        server=(CLASSIC_APP,),
    ),
    _m(
        "traces_spanmetrics_calls_total",
        "counter",
        "explore",
        12,
        service=(OTEL_APP, CLASSIC_APP),
        span_name=("POST /orders",),
        span_kind=("SPAN_KIND_SERVER",),
        status_code=("STATUS_CODE_UNSET", "STATUS_CODE_ERROR"),
    ),
    _m(
        "traces_spanmetrics_latency",
        "histogram",
        "explore",
        12,
        0.25,
        service=(OTEL_APP, CLASSIC_APP),
        span_name=("POST /orders",),
    ),
]


def _curve(index: int, step: int) -> float:
    """A gentle periodic wobble in [0.8, 1.2], different for each series."""
    return 1.0 + 0.2 * math.sin(step / 17.0 + index)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def _fraction_below(bound: float, mean: float) -> float:
    return 1.0 - math.exp(-bound / mean)


def openmetrics(end: int, catalog: list[Metric] = CATALOG) -> str:
    """The whole data set as OpenMetrics text, samples every STEP_SECONDS up to `end` (unix seconds)."""
    steps = HISTORY_SECONDS // STEP_SECONDS
    times = [end - (steps - i) * STEP_SECONDS for i in range(steps + 1)]
    lines: list[str] = []
    for metric in catalog:
        family = metric.name.removesuffix("_total") if metric.type == "counter" else metric.name
        lines.append(f"# TYPE {family} {metric.type}")
        for index, labels in enumerate(metric.label_sets()):
            if metric.type == "gauge":
                for step, ts in enumerate(times):
                    value = metric.scale if metric.flat else metric.scale * _curve(index, step)
                    lines.append(f"{metric.name}{_labels(labels)} {value:.6g} {ts}")
            elif metric.type == "counter":
                total = 0.0
                for step, ts in enumerate(times):
                    total += metric.scale * _curve(index, step) * STEP_SECONDS
                    lines.append(f"{metric.name}{_labels(labels)} {total:.6f} {ts}")
            else:
                lines.extend(_histogram(metric, index, labels, times))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _histogram(metric: Metric, index: int, labels: dict[str, str], times: list[int]) -> Iterator[str]:
    count = 0.0
    counts: list[tuple[int, float]] = []
    for step, ts in enumerate(times):
        count += metric.scale * _curve(index, step) * STEP_SECONDS
        counts.append((ts, count))
    mean = metric.mean * (1 + 0.3 * index)
    for bound in (*BUCKETS, math.inf):
        le = "+Inf" if bound == math.inf else repr(bound)
        share = 1.0 if bound == math.inf else _fraction_below(bound, mean)
        for ts, total in counts:
            yield f"{metric.name}_bucket{_labels({**labels, 'le': le})} {total * share:.6f} {ts}"
    for ts, total in counts:
        yield f"{metric.name}_count{_labels(labels)} {total:.6f} {ts}"
    for ts, total in counts:
        yield f"{metric.name}_sum{_labels(labels)} {total * mean:.6f} {ts}"


def series_count(catalog: list[Metric] = CATALOG) -> int:
    per = {"histogram": len(BUCKETS) + 3}
    return sum(per.get(m.type, 1) * sum(1 for _ in m.label_sets()) for m in catalog)


def scaled(services: int, catalog: list[Metric] = CATALOG) -> list[Metric]:
    """The data set with every app service (`job`) present `services` times (for benchmarks)."""
    if services <= 1:
        return catalog
    grown = []
    for metric in catalog:
        jobs = metric.labels.get("job", ())
        if jobs and not set(jobs) & set(STACK_JOBS):
            labels = {
                **metric.labels,
                "job": tuple(f"{job}-{i}" if i else job for job in jobs for i in range(services)),
            }
            metric = Metric(metric.name, metric.type, metric.pack, labels, metric.scale, metric.mean, metric.flat)
        grown.append(metric)
    return grown


def build_tsdb(data_dir: Path, end: int, workdir: Path, catalog: list[Metric] = CATALOG) -> None:
    """Write the data set as TSDB blocks into `data_dir` with the real promtool."""
    source = workdir / "synthetic.om"
    source.write_text(openmetrics(end, catalog), encoding="utf-8")
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool could not create blocks: {result.stderr.strip()[-2000:]}")
