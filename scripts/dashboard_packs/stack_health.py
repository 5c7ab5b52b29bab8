"""Pack 1: the stack watching itself."""

from __future__ import annotations

from dashboard_packs.model import Board, Pack, Row, prom, stat, table, thresholds, timeseries
from dashboard_packs.promql import RATE

UP_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red", "index": 0},
            "1": {"text": "UP", "color": "green", "index": 1},
        },
    }
]
STACK = 'stack_component!=""'


def board() -> Board:
    b = Board(
        uid="stack-health",
        title="Stack health",
        description="Self-monitoring of the observability stack: components up, ingestion, refused and "
        "dropped data, remote-write lag, memory and disk, alerts firing.",
        tags=["stack-health"],
        time_from="now-3h",
    )
    b.add(
        Row("Components"),
        stat(
            "Component status",
            "Whether Prometheus could scrape each stack component at its last attempt. DOWN for more than "
            "2 minutes fires StackComponentDown.",
            prom(f"max by (job) (up{{{STACK}}})", "{{job}}", instant=True),
            width=12,
            options={"colorMode": "background", "graphMode": "none", "textMode": "value_and_name"},
            steps=thresholds((None, "red"), (1, "green")),
            unit="none",
            mappings=UP_MAPPING,
        ),
        stat(
            "Alerts firing",
            "Prometheus alerts in the firing state right now, all severities.",
            prom('count(ALERTS{alertstate="firing"}) or vector(0)', "firing", instant=True),
            unit="none",
            steps=thresholds((None, "green"), (1, "orange")),
        ),
        stat(
            "Critical alerts firing",
            "Firing alerts with severity=critical (these page).",
            prom('count(ALERTS{alertstate="firing", severity="critical"}) or vector(0)', "critical", instant=True),
            unit="none",
            steps=thresholds((None, "green"), (1, "red")),
        ),
        table(
            "Firing alerts",
            "Every firing alert with its labels; open Alertmanager to silence or inspect routing.",
            prom('max by (alertname, severity, job) (ALERTS{alertstate="firing"})', instant=True, table=True),
            width=24,
            height=6,
            unit="none",
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}],
        ),
        Row("Ingestion"),
        timeseries(
            "Samples ingested",
            "Samples appended to Prometheus' head block per second (scrapes, remote write from the "
            "Collector and Tempo's metrics generator).",
            prom(f"sum(rate(prometheus_tsdb_head_samples_appended_total[{RATE}]))", "samples/s"),
            unit="short",
            width=8,
        ),
        timeseries(
            "Log lines ingested",
            "Log lines received by Loki's distributor per second.",
            prom(f"sum(rate(loki_distributor_lines_received_total[{RATE}]))", "lines/s"),
            unit="short",
            width=8,
        ),
        timeseries(
            "Spans ingested",
            "Spans received by Tempo's distributor per second.",
            prom(f"sum(rate(tempo_distributor_spans_received_total[{RATE}]))", "spans/s"),
            unit="short",
            width=8,
        ),
        timeseries(
            "Collector: accepted by signal",
            "Items the OpenTelemetry Collector's receivers pushed into its pipelines per second.",
            prom(f"sum(rate(otelcol_receiver_accepted_spans_total[{RATE}]))", "spans"),
            prom(f"sum(rate(otelcol_receiver_accepted_log_records_total[{RATE}]))", "log records"),
            prom(f"sum(rate(otelcol_receiver_accepted_metric_points_total[{RATE}]))", "metric points"),
            unit="short",
        ),
        timeseries(
            "Collector: sent by exporter",
            "Items the Collector's exporters delivered per second, by exporter.",
            prom(f"sum by (exporter) (rate(otelcol_exporter_sent_spans_total[{RATE}]))", "spans {{exporter}}"),
            prom(
                f"sum by (exporter) (rate(otelcol_exporter_sent_log_records_total[{RATE}]))",
                "log records {{exporter}}",
            ),
            prom(
                f"sum by (exporter) (rate(otelcol_exporter_sent_metric_points_total[{RATE}]))",
                "metric points {{exporter}}",
            ),
            unit="short",
        ),
        Row("Refused and dropped data"),
        timeseries(
            "Collector: refused and failed",
            "Items refused by receivers (memory_limiter pressure) or that exporters failed to send. "
            "Anything above zero is data lost or delayed.",
            prom(f"sum(rate(otelcol_receiver_refused_spans_total[{RATE}])) or vector(0)", "refused spans"),
            prom(f"sum(rate(otelcol_receiver_refused_log_records_total[{RATE}])) or vector(0)", "refused logs"),
            prom(f"sum(rate(otelcol_receiver_refused_metric_points_total[{RATE}])) or vector(0)", "refused metrics"),
            prom(f"sum(rate(otelcol_exporter_send_failed_spans_total[{RATE}])) or vector(0)", "failed spans"),
            prom(f"sum(rate(otelcol_exporter_send_failed_log_records_total[{RATE}])) or vector(0)", "failed logs"),
            prom(
                f"sum(rate(otelcol_exporter_send_failed_metric_points_total[{RATE}])) or vector(0)",
                "failed metrics",
            ),
            unit="short",
            steps=thresholds((None, "green"), (0.001, "red")),
        ),
        timeseries(
            "Loki and Tempo: discarded",
            "Log lines Loki discarded and spans Tempo discarded per second, by reason (rate limits, "
            "too old, line too long, live traces limit).",
            prom(f"sum by (reason) (rate(loki_discarded_samples_total[{RATE}]))", "loki {{reason}}"),
            prom(f"sum by (reason) (rate(tempo_discarded_spans_total[{RATE}]))", "tempo {{reason}}"),
            unit="short",
        ),
        timeseries(
            "Prometheus: rule and write failures",
            "Rule evaluations that failed, and remote-write requests Prometheus answered with an error "
            "(Collector and Tempo write through /api/v1/write).",
            prom(f"sum(rate(prometheus_rule_evaluation_failures_total[{RATE}])) or vector(0)", "rule failures"),
            prom(
                'sum(rate(prometheus_http_requests_total{handler="/api/v1/write", code=~"[45].."}'
                f"[{RATE}])) or vector(0)",
                "remote-write errors",
            ),
            unit="short",
        ),
        timeseries(
            "Remote-write lag",
            "How far behind the newest sample the remote-write queues are, by sender (Tempo's metrics "
            "generator). Growing lag means Prometheus is not keeping up or unreachable.",
            prom(
                "max by (job) (prometheus_remote_storage_highest_timestamp_in_seconds)"
                " - max by (job) (prometheus_remote_storage_queue_highest_sent_timestamp_seconds)",
                "{{job}}",
            ),
            unit="s",
        ),
        timeseries(
            "Collector: export queue fill",
            "Share of each exporter's sending queue in use. A queue near 100% drops data.",
            prom(
                "max by (exporter) (otelcol_exporter_queue_size) / max by (exporter) (otelcol_exporter_queue_capacity)",
                "{{exporter}}",
            ),
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=thresholds((None, "green"), (0.7, "orange"), (0.9, "red")),
        ),
        Row("Resources"),
        timeseries(
            "Memory in use",
            "Resident memory of each component (the Collector reports its own).",
            prom(f"max by (job) (process_resident_memory_bytes{{{STACK}}})", "{{job}}"),
            prom('max by (job) ({__name__=~"otelcol_process_memory_rss(_bytes)?"})', "{{job}}"),
            unit="bytes",
        ),
        timeseries(
            "Memory against limit",
            "Resident memory of each component as a share of its memory limit in stack.yaml "
            "(stack:memory_limit:bytes). Above 85% fires StackComponentMemoryHigh; at 100% it is OOM-killed.",
            prom(
                "max by (job) ("
                f"process_resident_memory_bytes{{{STACK}}}"
                f' or {{__name__=~"otelcol_process_memory_rss(_bytes)?", {STACK}}}'
                ") / on (job) max by (job) (stack:memory_limit:bytes)",
                "{{job}}",
            ),
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=thresholds((None, "green"), (0.7, "orange"), (0.85, "red")),
        ),
        timeseries(
            "Prometheus storage",
            "Bytes on disk of Prometheus' TSDB: persisted blocks and the write-ahead log.",
            prom("sum(prometheus_tsdb_storage_blocks_bytes)", "blocks"),
            prom("sum(prometheus_tsdb_wal_storage_size_bytes)", "WAL"),
            unit="bytes",
        ),
        timeseries(
            "Disk use by mount point",
            "Share of each filesystem in use, from the Collector's host metrics (when "
            "components.otel-collector.host_metrics is on). Volumes over 90% fire an alert.",
            prom(
                'sum by (mountpoint) (system_filesystem_usage_bytes{state="used"})'
                " / sum by (mountpoint) (system_filesystem_usage_bytes)",
                "{{mountpoint}}",
            ),
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=thresholds((None, "green"), (0.8, "orange"), (0.9, "red")),
        ),
        timeseries(
            "Active series",
            "Series in Prometheus' head block: the main driver of its memory use.",
            prom("sum(prometheus_tsdb_head_series)", "series"),
            unit="short",
        ),
    )
    return b


PACK = Pack("stack-health", "Stack health", [board()])
