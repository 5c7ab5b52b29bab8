"""Pack 8: security audit: 401/403/429 answers, failed authentications, intrusion attempts, 5xx."""

from __future__ import annotations

from dashboard_packs.model import (
    Board,
    Pack,
    Row,
    alerts_annotation,
    prom,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)
from dashboard_packs.promql import RATE, SERVICE, request_rate


def board() -> Board:
    b = Board(
        uid="stack-security",
        title="Security audit",
        description="Who is knocking: 401/403/429 answers, failed authentications by source, "
        "rate-limit violations, intrusion attempts and 5xx answers.",
        tags=["security"],
        annotations=[alerts_annotation('service=~"$service"')],
        variables=[
            query_variable(
                "service",
                "Service",
                'label_values({__name__=~"http_requests_total|http_server_request_duration_seconds(_count)?"}, job)',
                description="Prometheus job.",
            )
        ],
        time_from="now-6h",
    )
    b.add(
        stat(
            "Failed authentications / min",
            "Authentication failures per minute, all sources. Over 10/min from one source alerts.",
            prom(f"sum(rate(auth_failures_total{{{SERVICE}}}[{RATE}])) * 60", "per minute"),
            unit="short",
            decimals=1,
            steps=thresholds((None, "green"), (10, "orange"), (50, "red")),
        ),
        stat(
            "Rate-limited / min",
            "Requests answered 429 Too Many Requests per minute.",
            prom(f"sum(({request_rate('job', '429')})) * 60", "per minute"),
            unit="short",
            decimals=1,
        ),
        stat(
            "Intrusion attempts",
            "Intrusion attempts detected over the dashboard's time range (any is worth a look).",
            prom(
                f"sum(increase(security_intrusion_attempts_total{{{SERVICE}}}[$__range])) or vector(0)",
                "attempts",
                instant=True,
            ),
            unit="short",
            steps=thresholds((None, "green"), (1, "red")),
        ),
        stat(
            "5xx / min",
            "Server errors per minute: attacks often show up as a burst of them.",
            prom(f"sum(({request_rate('job', '5..')})) * 60", "per minute"),
            unit="short",
            decimals=1,
        ),
        Row("HTTP answers"),
        timeseries(
            "401 / 403 / 429 by service",
            "Unauthorised, forbidden and rate-limited answers per second, by service and status code.",
            prom(request_rate("job, status_code", "401|403|429"), "{{job}} {{status_code}}"),
            unit="reqps",
        ),
        timeseries(
            "Rate-limit violations by route",
            "429 answers per second by route: which endpoint is being hammered.",
            prom(request_rate("job, route", "429"), "{{job}} {{route}}"),
            unit="reqps",
        ),
        timeseries(
            "5xx by service",
            "Server errors per second by service and status code.",
            prom(request_rate("job, status_code", "5.."), "{{job}} {{status_code}}"),
            unit="reqps",
        ),
        Row("Authentication and intrusions"),
        timeseries(
            "Failed authentications by source",
            "Authentication failures per minute by source (client address or API key id), top 10.",
            prom(f"topk(10, sum by (source) (rate(auth_failures_total{{{SERVICE}}}[{RATE}])) * 60)", "{{source}}"),
            unit="short",
        ),
        table(
            "Top failing sources",
            "Sources with the most failed authentications over the dashboard's time range.",
            prom(
                f"topk(20, sum by (source) (increase(auth_failures_total{{{SERVICE}}}[$__range])))",
                instant=True,
                table=True,
            ),
            unit="short",
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        ),
        timeseries(
            "Intrusion attempts by kind",
            "Detected intrusion attempts (path traversal, SQL injection, scanner...) per interval by kind.",
            prom(
                f"sum by (kind) (increase(security_intrusion_attempts_total{{{SERVICE}}}[{RATE}]))",
                "{{kind}}",
            ),
            unit="short",
            custom={"drawStyle": "bars", "fillOpacity": 80},
        ),
    )
    return b


PACK = Pack("security", "Security", [board()])
