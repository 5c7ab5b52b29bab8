"""PromQL fragments shared by the packs: both HTTP conventions the seed apps use, normalised.

Services are selected by the `job` label: a scrape target's job name, or `service.name` for apps
that push OTLP through the Collector (Prometheus' OTLP translation puts it in `job`).
"""

from __future__ import annotations

RATE = "$__rate_interval"
SERVICE = 'job=~"$service"'

# OpenTelemetry semantic conventions (http.server.request.duration, seconds).
OTEL_HTTP = "http_server_request_duration_seconds"
# The classic prom-client / prometheus-fastapi style names.
CLASSIC_TOTAL = "http_requests_total"
CLASSIC_DURATION = "http_request_duration_seconds"


def _otel_normalised(selector: str, suffix: str) -> str:
    """OTel series with the classic label names (route, method, status_code)."""
    inner = f"rate({OTEL_HTTP}_{suffix}{{{selector}}}[{RATE}])"
    inner = f'label_replace({inner}, "route", "$1", "http_route", "(.*)")'
    inner = f'label_replace({inner}, "status_code", "$1", "http_response_status_code", "(.*)")'
    return f'label_replace({inner}, "method", "$1", "http_request_method", "(.*)")'


def request_rate(by: str = "job", extra: str = "") -> str:
    """Requests per second by `by`, from whichever convention the service emits."""
    classic_sel = ", ".join(s for s in (SERVICE, extra) if s)
    otel_extra = (
        extra.replace("status_code", "http_response_status_code").replace("route", "http_route") if extra else ""
    )
    otel_sel = ", ".join(s for s in (SERVICE, otel_extra) if s)
    return (
        f"sum by ({by}) (rate({CLASSIC_TOTAL}{{{classic_sel}}}[{RATE}]))"
        f" or sum by ({by}) ({_otel_normalised(otel_sel, 'count')})"
    )


def error_ratio(by: str = "job") -> str:
    """Share of requests answered 5xx; 0 (not "no data") when there is traffic without errors."""
    errors = request_rate(by, 'status_code=~"5.."')
    total = request_rate(by)
    return f"(({errors}) or ({total}) * 0) / ({total})"


def latency_quantile(quantile: float, by: str = "") -> str:
    """The `quantile` latency in seconds from the request-duration histograms."""
    group = ", ".join(s for s in ("le", by) if s)
    classic = f"histogram_quantile({quantile}, sum by ({group}) (rate({CLASSIC_DURATION}_bucket{{{SERVICE}}}[{RATE}])))"
    otel_inner = f"rate({OTEL_HTTP}_bucket{{{SERVICE}}}[{RATE}])"
    if "route" in by:
        otel_inner = f'label_replace({otel_inner}, "route", "$1", "http_route", "(.*)")'
    otel = f"histogram_quantile({quantile}, sum by ({group}) ({otel_inner}))"
    return f"{classic} or {otel}"
