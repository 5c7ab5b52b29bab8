"""Pack 9: logs and traces explorer (Loki and Tempo), with the service map."""

from __future__ import annotations

from dashboard_packs.model import (
    LOKI,
    PROMETHEUS,
    TEMPO,
    Board,
    Pack,
    Row,
    logql,
    logs,
    node_graph,
    prom,
    query_variable,
    service_map,
    timeseries,
    traceql,
    traces,
)
from dashboard_packs.promql import RATE

# Services known from traces (Tempo's span metrics), from OTLP metrics (target_info) and from scrape
# jobs, so that the list is there with Tempo disabled too.
SERVICE_VARIABLE = query_variable(
    "service",
    "Service",
    "query_result(count by (service) (traces_spanmetrics_calls_total)"
    ' or count by (service) (label_replace(target_info, "service", "$1", "job", "(.+)"))'
    ' or count by (service) (label_replace(up, "service", "$1", "job", "(.+)")))',
    regex='/service="([^"]+)"/',
    description="The service.name of the services (Loki's service_name, Tempo's resource.service.name).",
)
SEARCH_VARIABLE = {
    "type": "textbox",
    "name": "search",
    "label": "Log line contains",
    "description": "A regular expression the log lines must match (case-insensitive); empty for all.",
    "query": "",
    "current": {"text": "", "value": ""},
    "hide": 0,
}
STREAM = '{service_name=~"$service"}'


def board() -> Board:
    b = Board(
        uid="stack-explore",
        title="Logs and traces explorer",
        description="Log volume by service and level, error logs, log search, trace search and the "
        "service map. Expand a log line to open its trace; open a trace to see its logs.",
        tags=["explore", "logs", "traces"],
        sources=[PROMETHEUS, LOKI, TEMPO],
        variables=[SERVICE_VARIABLE, SEARCH_VARIABLE],
        time_from="now-1h",
    )
    b.add(
        timeseries(
            "Log volume by service and level",
            "Log lines per interval by service and detected level (Loki).",
            logql(
                f"sum by (service_name, detected_level) (count_over_time({STREAM} [$__auto]))",
                "{{service_name}} {{detected_level}}",
            ),
            unit="short",
            custom={"drawStyle": "bars", "stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 80},
            width=16,
        ),
        timeseries(
            "Error log rate",
            "Error-level log lines per second by service.",
            logql(
                f'sum by (service_name) (rate({STREAM} | detected_level=~"error|fatal|critical" [$__auto]))',
                "{{service_name}}",
            ),
            unit="short",
            width=8,
        ),
        logs(
            "Error logs",
            "Error-level log lines of the selected services, newest first. Expand a line for its trace.",
            logql(f'{STREAM} | detected_level=~"error|fatal|critical"'),
        ),
        logs(
            "Log search",
            "Log lines of the selected services matching the 'Log line contains' box.",
            logql(f'{STREAM} |~ "(?i)$search"'),
        ),
        Row("Traces"),
        traces(
            "Error traces",
            "Traces of the selected services with a span in error.",
            traceql('{resource.service.name=~"$service" && status = error}'),
            width=12,
        ),
        traces(
            "Slow traces",
            "Traces of the selected services with a span slower than one second.",
            traceql('{resource.service.name=~"$service" && duration > 1s}'),
            width=12,
        ),
        node_graph(
            "Service map",
            "Calls between services from Tempo's service graphs (request rate, error rate, latency per edge).",
            service_map(),
        ),
        timeseries(
            "Calls between services",
            "Requests per second on each edge of the service graph (client -> server).",
            prom(
                f"sum by (client, server) (rate(traces_service_graph_request_total[{RATE}]))",
                "{{client}} -> {{server}}",
            ),
            unit="reqps",
        ),
        timeseries(
            "Failed calls between services",
            "Failed requests per second on each edge of the service graph.",
            prom(
                f"sum by (client, server) (rate(traces_service_graph_request_failed_total[{RATE}]))",
                "{{client}} -> {{server}}",
            ),
            unit="reqps",
        ),
        timeseries(
            "Span rate by service",
            "Spans per second by service, from Tempo's span metrics; errors are the STATUS_CODE_ERROR series.",
            prom(
                f'sum by (service, status_code) (rate(traces_spanmetrics_calls_total{{service=~"$service"}}[{RATE}]))',
                "{{service}} {{status_code}}",
            ),
            unit="short",
        ),
        timeseries(
            "Span latency p95 by service",
            "95th percentile span duration by service, from Tempo's span metrics.",
            prom(
                "histogram_quantile(0.95, sum by (le, service) "
                f'(rate(traces_spanmetrics_latency_bucket{{service=~"$service"}}[{RATE}])))',
                "{{service}}",
                exemplar=True,
            ),
            unit="s",
        ),
    )
    return b


PACK = Pack("explore", "Explore", [board()])
