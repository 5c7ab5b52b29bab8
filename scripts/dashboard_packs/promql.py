"""PromQL fragments shared by the packs: the HTTP conventions the seed apps use, normalised.

Services are selected by the `job` label: a scrape target's job name, or `service.name` for apps
that push OTLP through the Collector (Prometheus' OTLP translation puts it in `job`).

HTTP metrics come in two conventions, and the classic one with several label spellings; every
panel reads all of them and maps the labels to `route`, `method` and `status_code`:
- OpenTelemetry: http_server_request_duration_seconds{http_route, http_request_method,
  http_response_status_code};
- classic: http_requests_total and http_request_duration_seconds with the status in
  `status_code` (express-prom-bundle, prom-client examples), `status` (Python exporters) or `code`
  (Go), and the route in `route`, `handler` or `path`.
"""

from __future__ import annotations

RATE = "$__rate_interval"
SERVICE = 'job=~"$service"'

OTEL_HTTP = "http_server_request_duration_seconds"
CLASSIC_TOTAL = "http_requests_total"
CLASSIC_DURATION = "http_request_duration_seconds"
STATUS_LABELS = ("status_code", "status", "code")


def _route_from_aliases(inner: str) -> str:
    # `(.+)`: only a series that has the alias gets its value as `route`.
    inner = f'label_replace({inner}, "route", "$1", "handler", "(.+)")'
    return f'label_replace({inner}, "route", "$1", "path", "(.+)")'


def _classic_rate(status: str | None) -> str:
    """rate(http_requests_total) of the selected services; with `status` (a regex) only those answers,
    whichever label the app puts the status in (normalised to `status_code`)."""
    if status is None:
        return _route_from_aliases(f"rate({CLASSIC_TOTAL}{{{SERVICE}}}[{RATE}])")
    parts = []
    for label in STATUS_LABELS:
        inner = f'rate({CLASSIC_TOTAL}{{{SERVICE}, {label}=~"{status}"}}[{RATE}])'
        if label != "status_code":
            inner = f'label_replace({inner}, "status_code", "$1", "{label}", "(.*)")'
        parts.append(_route_from_aliases(inner))
    return "(" + " or ".join(parts) + ")"


def _otel_rate(status: str | None) -> str:
    """rate(http_server_request_duration_seconds_count) with the classic label names."""
    matchers = SERVICE + (f', http_response_status_code=~"{status}"' if status else "")
    inner = f"rate({OTEL_HTTP}_count{{{matchers}}}[{RATE}])"
    inner = f'label_replace({inner}, "route", "$1", "http_route", "(.*)")'
    inner = f'label_replace({inner}, "status_code", "$1", "http_response_status_code", "(.*)")'
    return f'label_replace({inner}, "method", "$1", "http_request_method", "(.*)")'


def request_rate(by: str = "job", status: str | None = None) -> str:
    """Requests per second grouped `by`, from whichever convention the service emits; `status` is a
    regex on the status code (e.g. "5..")."""
    return f"sum by ({by}) ({_classic_rate(status)}) or sum by ({by}) ({_otel_rate(status)})"


def error_ratio(by: str = "job") -> str:
    """Share of requests answered 5xx; 0 (not "no data") when there is traffic without errors."""
    errors = request_rate(by, "5..")
    total = request_rate(by)
    return f"(({errors}) or ({total}) * 0) / ({total})"


def latency_quantile(quantile: float, by: str = "") -> str:
    """The `quantile` latency in seconds from the request-duration histograms."""
    group = ", ".join(s for s in ("le", by) if s)
    classic_inner = f"rate({CLASSIC_DURATION}_bucket{{{SERVICE}}}[{RATE}])"
    otel_inner = f"rate({OTEL_HTTP}_bucket{{{SERVICE}}}[{RATE}])"
    if "route" in by:
        classic_inner = _route_from_aliases(classic_inner)
        otel_inner = f'label_replace({otel_inner}, "route", "$1", "http_route", "(.*)")'
    classic = f"histogram_quantile({quantile}, sum by ({group}) ({classic_inner}))"
    otel = f"histogram_quantile({quantile}, sum by ({group}) ({otel_inner}))"
    return f"{classic} or {otel}"


def histogram_quantile(quantile: float, metric: str, selector: str, by: str = "") -> str:
    """The `quantile` of histogram `metric` over `selector`, grouped `by`."""
    group = ", ".join(s for s in ("le", by) if s)
    return f"histogram_quantile({quantile}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))"
