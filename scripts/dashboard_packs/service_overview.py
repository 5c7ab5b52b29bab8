"""Pack 2: RED for each HTTP service, leading from a symptom to its logs and traces."""

from __future__ import annotations

from dashboard_packs.model import (
    LOKI,
    PROMETHEUS,
    TEMPO,
    Board,
    Pack,
    Row,
    alerts_annotation,
    dashboard_link,
    logql,
    logs,
    prom,
    query_variable,
    series_link,
    stat,
    thresholds,
    timeseries,
    traceql,
    traces,
)
from dashboard_packs.promql import RATE, SERVICE, error_ratio, latency_quantile, request_rate

SERVICE_VARIABLE = query_variable(
    "service",
    "Service",
    'label_values({__name__=~"http_requests_total|http_server_request_duration_seconds(_count)?"}, job)',
    description="The Prometheus job of the service (its scrape job, or service.name for OTLP apps).",
)
TO_LOGS = dashboard_link("stack-explore", "Logs and traces of ${service}")
SERIES_TO_LOGS = series_link("stack-explore", "Logs and traces of ${__field.labels.job}", "service", "job")
ERROR_STEPS = thresholds((None, "green"), (0.01, "orange"), (0.05, "red"))
LATENCY_STEPS = thresholds((None, "green"), (1, "orange"), (2, "red"))


def board() -> Board:
    b = Board(
        uid="stack-service-overview",
        title="Service overview (RED)",
        description="Rate, errors and duration of each HTTP service, with its error logs and error traces.",
        tags=["service-overview", "red"],
        annotations=[alerts_annotation('service=~"$service"')],
        sources=[PROMETHEUS, LOKI, TEMPO],
        variables=[SERVICE_VARIABLE],
        time_from="now-1h",
    )
    b.add(
        stat(
            "Request rate",
            "Requests per second handled by the selected services, all routes.",
            prom(f"sum(({request_rate()}))", "req/s"),
            unit="reqps",
        ),
        stat(
            "Error ratio",
            "Share of requests answered with a 5xx status. Above 1% warns, above 5% pages.",
            prom(f"max({error_ratio()})", "errors"),
            unit="percentunit",
            decimals=2,
            steps=ERROR_STEPS,
            links=[TO_LOGS],
        ),
        stat(
            "Latency p95",
            "95th percentile of request duration. Above 1 s warns, above 2 s pages.",
            prom(latency_quantile(0.95), "p95"),
            unit="s",
            steps=LATENCY_STEPS,
        ),
        stat(
            "Active connections",
            "Open websocket connections of the selected services.",
            prom(f"sum(socket_active_connections{{{SERVICE}}})", "connections"),
            unit="short",
        ),
        Row("Traffic and errors"),
        timeseries(
            "Request rate by route",
            "Requests per second by service and route.",
            prom(request_rate("job, route"), "{{job}} {{route}}"),
            unit="reqps",
        ),
        timeseries(
            "Errors by route and status code",
            "4xx and 5xx answers per second by service, route and status code. Click through to the "
            "service's logs and traces.",
            prom(request_rate("job, route, status_code", "[45].."), "{{job}} {{route}} {{status_code}}"),
            unit="reqps",
            links=[SERIES_TO_LOGS],
        ),
        timeseries(
            "Error ratio by service",
            "Share of 5xx answers per service. The dashed line is the 1% warning threshold.",
            prom(error_ratio(), "{{job}}"),
            unit="percentunit",
            steps=ERROR_STEPS,
            custom={"thresholdsStyle": {"mode": "dashed"}},
            links=[SERIES_TO_LOGS],
        ),
        timeseries(
            "Application errors",
            "Errors the services count themselves (http_requests_errors_total), by service and route.",
            prom(
                f"sum by (job, route) (rate(http_requests_errors_total{{{SERVICE}}}[{RATE}]))",
                "{{job}} {{route}}",
            ),
            unit="short",
        ),
        Row("Duration"),
        timeseries(
            "Latency p50 / p95 / p99",
            "Request duration percentiles from the request-duration histograms. Exemplars (dots) open "
            "the trace of a request in Tempo.",
            prom(latency_quantile(0.5), "p50", exemplar=True),
            prom(latency_quantile(0.95), "p95", exemplar=True),
            prom(latency_quantile(0.99), "p99", exemplar=True),
            unit="s",
            steps=LATENCY_STEPS,
        ),
        timeseries(
            "Latency p95 by route",
            "95th percentile of request duration per route: which endpoint is slow.",
            prom(latency_quantile(0.95, "route"), "{{route}}", exemplar=True),
            unit="s",
        ),
        timeseries(
            "In-flight requests",
            "Requests being served right now (OpenTelemetry http.server.active_requests).",
            prom(f"sum by (job) (http_server_active_requests{{{SERVICE}}})", "{{job}}"),
            unit="short",
        ),
        timeseries(
            "Websocket connections",
            "Open websocket connections per service.",
            prom(f"sum by (job) (socket_active_connections{{{SERVICE}}})", "{{job}}"),
            unit="short",
        ),
        Row("Logs and traces"),
        logs(
            "Recent error logs",
            "Error-level log lines of the selected services (Loki; level detected from the record). "
            "Expand a line to jump to its trace.",
            logql('{service_name=~"$service"} | detected_level=~"error|fatal|critical"'),
        ),
        traces(
            "Error traces",
            "The latest traces of the selected services that contain a span with status error (Tempo).",
            traceql('{resource.service.name=~"$service" && status = error}'),
        ),
    )
    return b


PACK = Pack("service-overview", "Services", [board()])
