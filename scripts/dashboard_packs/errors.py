"""Pack 10: errors, the questions people open Sentry for, from data the stack already keeps.

Exceptions come from two places, both written by the OpenTelemetry SDKs:
- log records with `exception.type`, `exception.message` (and `exception.stacktrace`) attributes,
  which Loki stores as structured metadata `exception_type`, `exception_message`, ...;
- span events named `exception` (Tempo), with the span's status set to error.

A group is (service, exception type, fingerprint): the message with numbers, ids and hex strings
replaced by `N`, so that "order 1234 not found" and "order 99 not found" are one group.
"""

from __future__ import annotations

from dashboard_packs.explore import SERVICE_VARIABLE
from dashboard_packs.model import (
    LOKI,
    PROMETHEUS,
    TEMPO,
    Board,
    Pack,
    Row,
    dashboard_link,
    logql,
    logs,
    prom,
    stat,
    table,
    thresholds,
    timeseries,
    traceql,
    traces,
)
from dashboard_packs.promql import RATE

EXCEPTION_VARIABLE = {
    "type": "textbox",
    "name": "exception",
    "label": "Exception type (regex)",
    "description": "A regular expression the exception type must match; .+ for all. A group's link sets it.",
    "query": ".+",
    "current": {"text": ".+", "value": ".+"},
    "hide": 0,
}
FINGERPRINT_VARIABLE = {
    "type": "textbox",
    "name": "fingerprint",
    "label": "Fingerprint (regex)",
    "description": "A regular expression the message fingerprint must match; .* for all. A group's link sets it.",
    "query": ".*",
    "current": {"text": ".*", "value": ".*"},
    "hide": 0,
}

# Every log record of the selected services that carries an exception (OTel logging bridges set
# exception.* when a record is logged with an exception; Loki keeps them as structured metadata).
EXCEPTIONS = '{service_name=~"$service"} | exception_type=~"$exception"'
# The message with what varies between occurrences (ids, numbers, hex) replaced, cut to 120 chars.
FINGERPRINT = (
    '| label_format fingerprint=`{{ regexReplaceAll "[0-9a-fA-F-]{8,}|[0-9]+" .exception_message "N" | trunc 120 }}`'
)
GROUPED = f'{EXCEPTIONS} {FINGERPRINT} | fingerprint=~"$fingerprint"'
GROUP = "service_name, exception_type, fingerprint"
# The time of each occurrence as a number, so that min/max over time give first and last seen.
SEEN = "| label_format seen=`{{ __timestamp__ | unixEpoch }}` | unwrap seen"

GROUP_LINK = {
    "title": "Occurrences of this group",
    "url": "/d/stack-errors?var-service=${__data.fields.service_name}"
    "&var-exception=${__data.fields.exception_type:regex}"
    "&var-fingerprint=${__data.fields.fingerprint:regex}&${__url_time_range}",
}


def board() -> Board:
    b = Board(
        uid="stack-errors",
        title="Errors",
        description="Exceptions grouped by service, type and message fingerprint (from OTLP log records "
        "and span events): count, first and last seen, trend, new groups, by release, environment and "
        "route, each group linked to its occurrences and their traces; the error budget of the SLOs.",
        tags=["errors", "logs", "traces"],
        sources=[PROMETHEUS, LOKI, TEMPO],
        variables=[SERVICE_VARIABLE, EXCEPTION_VARIABLE, FINGERPRINT_VARIABLE],
        time_from="now-24h",
        refresh="1m",
    )
    b.add(
        stat(
            "Exceptions",
            "Log records with an exception in the time range.",
            logql(f"sum(count_over_time({GROUPED} [$__range]))", instant=True),
            unit="short",
        ),
        stat(
            "Exception groups",
            "Distinct (service, type, fingerprint) groups in the time range.",
            logql(f"count(sum by ({GROUP}) (count_over_time({GROUPED} [$__range])))", instant=True),
            unit="short",
        ),
        stat(
            "New groups in the last hour",
            "Groups seen in the last hour and never in the 24 hours before it: errors that are new.",
            logql(
                f"count(sum by ({GROUP}) (count_over_time({GROUPED} [1h]))"
                f" unless sum by ({GROUP}) (count_over_time({GROUPED} [24h] offset 1h)))",
                instant=True,
            ),
            unit="short",
            steps=thresholds((None, "green"), (1, "red")),
        ),
        stat(
            "Services with exceptions",
            "Services that logged at least one exception in the time range.",
            logql(f"count(sum by (service_name) (count_over_time({GROUPED} [$__range])))", instant=True),
            unit="short",
        ),
        table(
            "Exception groups",
            "Each group with its count, first and last seen in the time range; most frequent first. "
            "Click a row for its occurrences (log lines with their traces).",
            logql(f"sum by ({GROUP}) (count_over_time({GROUPED} [$__range]))", instant=True),
            logql(f"min_over_time({GROUPED} {SEEN} [$__range]) by ({GROUP}) * 1000", instant=True),
            logql(f"max_over_time({GROUPED} {SEEN} [$__range]) by ({GROUP}) * 1000", instant=True),
            width=24,
            height=10,
            unit="short",
            links=[GROUP_LINK],
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "indexByName": {
                            "service_name": 0,
                            "exception_type": 1,
                            "fingerprint": 2,
                            "Value #A": 3,
                            "Value #B": 4,
                            "Value #C": 5,
                        },
                        # The label columns keep their names: the row's link reads them by name.
                        "renameByName": {
                            "Value #A": "count",
                            "Value #B": "first seen",
                            "Value #C": "last seen",
                        },
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "count", "desc": True}]}},
            ],
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "first seen|last seen"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                }
            ],
        ),
        timeseries(
            "Exceptions by type",
            "Exceptions per interval by service and type: the trend of each.",
            logql(
                f"sum by (service_name, exception_type) (count_over_time({GROUPED} [$__auto]))",
                "{{service_name}} {{exception_type}}",
            ),
            unit="short",
            custom={"drawStyle": "bars", "stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 80},
            width=24,
        ),
        Row("Where: release, environment, route"),
        timeseries(
            "Exceptions by release",
            "Exceptions per interval by service and service.version: a release that brings errors stands out.",
            logql(
                f"sum by (service_name, service_version) (count_over_time({GROUPED} [$__auto]))",
                "{{service_name}} {{service_version}}",
            ),
            unit="short",
            width=8,
        ),
        timeseries(
            "Exceptions by environment",
            "Exceptions per interval by service and deployment environment: deployment.environment, or "
            "deployment.environment.name (the current semantic conventions' name, which the Faro web SDK "
            "and newer OTel SDKs send).",
            # Both names: an app sends one or the other, and the legend shows whichever it has.
            logql(
                "sum by (service_name, deployment_environment, deployment_environment_name)"
                f" (count_over_time({GROUPED} [$__auto]))",
                "{{service_name}} {{deployment_environment}}{{deployment_environment_name}}",
            ),
            unit="short",
            width=8,
        ),
        timeseries(
            "Exceptions by route",
            "Exceptions per interval by service and http.route (when the log record carries it).",
            logql(
                f"sum by (service_name, http_route) (count_over_time({GROUPED} [$__auto]))",
                "{{service_name}} {{http_route}}",
            ),
            unit="short",
            width=8,
        ),
        logs(
            "Occurrences",
            "The log records of the selected groups, newest first. Expand one for its stack trace "
            "(exception_stacktrace) and its trace (the TraceID link).",
            logql(GROUPED),
        ),
        Row("Browser (Faro web SDK)"),
        timeseries(
            "Browser errors by browser",
            "Exceptions the Faro web SDK reported from users' browsers, per interval, by app and browser. "
            "They are in the groups above too, beside the backend's.",
            logql(
                f'sum by (service_name, browser_name) (count_over_time({GROUPED} | telemetry_sdk_language="webjs"'
                " [$__auto]))",
                "{{service_name}} {{browser_name}}",
            ),
            unit="short",
            width=8,
        ),
        timeseries(
            "Web vitals timings p75",
            "75th percentile of LCP, INP, FCP and TTFB as users' browsers measured them (Faro measurements).",
            logql(
                'quantile_over_time(0.75, {service_name=~"$service"} | measurement_type="web-vitals"'
                ' | measurement_name=~"lcp|inp|fcp|ttfb" | unwrap measurement_value [$__auto])'
                " by (service_name, measurement_name)",
                "{{service_name}} {{measurement_name}}",
            ),
            unit="ms",
            width=8,
        ),
        timeseries(
            "Cumulative layout shift p75",
            "75th percentile of CLS (how much the page moves while it loads; good is below 0.1).",
            logql(
                'quantile_over_time(0.75, {service_name=~"$service"} | measurement_type="web-vitals"'
                ' | measurement_name="cls" | unwrap measurement_value [$__auto]) by (service_name)',
                "{{service_name}}",
            ),
            unit="none",
            decimals=3,
            steps=thresholds((None, "green"), (0.1, "orange"), (0.25, "red")),
            width=8,
        ),
        Row("Traces: exceptions recorded on spans"),
        traces(
            "Traces with an exception",
            "Traces whose spans recorded an exception event (span.recordException / record_exception).",
            traceql(
                '{resource.service.name=~"$service" && event:name = "exception"'
                ' && event.exception.type =~ "$exception"}'
                " | select(event.exception.type, event.exception.message, span.http.route)"
            ),
            width=12,
        ),
        traces(
            "Traces in error",
            "Traces of the selected services with a span whose status is error.",
            traceql('{resource.service.name=~"$service" && status = error}'),
            width=12,
        ),
        timeseries(
            "Failed spans by service",
            "Spans with status error per second by service, from Tempo's span metrics.",
            prom(
                "sum by (service) (rate(traces_spanmetrics_calls_total"
                f'{{service=~"$service", status_code="STATUS_CODE_ERROR"}}[{RATE}]))',
                "{{service}}",
            ),
            unit="reqps",
            width=24,
        ),
        Row("Error budget (SLOs)"),
        timeseries(
            "Share of requests that failed, against the objective",
            "Per SLO: the share of bad events over the last hour, beside the share the objective allows "
            "(1 - objective). Above the line, the error budget burns faster than it should.",
            prom("max by (slo, service) (slo:sli_error:ratio_rate1h)", "{{slo}} failed"),
            prom("1 - max by (slo, service) (slo:objective:ratio)", "{{slo}} allowed"),
            unit="percentunit",
            decimals=3,
            links=[dashboard_link("stack-slos", "SLOs and error budgets")],
        ),
        table(
            "Error budget remaining",
            "Per SLO: the share of the error budget left over its window (below 0: exhausted).",
            prom("max by (slo, service) (slo:error_budget:remaining)", instant=True, table=True),
            unit="percentunit",
            decimals=1,
            steps=thresholds((None, "red"), (0.05, "orange"), (0.25, "green")),
            links=[dashboard_link("stack-slos", "SLOs and error budgets")],
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        ),
    )
    return b


PACK = Pack("errors", "Errors", [board()])
