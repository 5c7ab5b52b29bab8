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


# Classic label spellings folded into one name; OpenTelemetry's names for the same things.
ROUTE_ALIASES = ("handler", "path")
OTEL_NAMES = {"route": "http_route", "status_code": "http_response_status_code", "method": "http_request_method"}


def _labels(by: str) -> list[str]:
    return [name.strip() for name in by.split(",") if name.strip()]


def _folded(inner: str, by: str, renames: list[tuple[str, str]]) -> str:
    """`sum by (by) (inner)`, with each (target, source) of `renames` copying label `source` into
    `target` where the series has it. Summing before label_replace keeps it cheap on many series."""
    wanted = _labels(by)
    if not renames:
        return f"sum by ({', '.join(wanted)}) ({inner})"
    needed = list(dict.fromkeys([*wanted, *(source for _, source in renames)]))
    expr = f"sum by ({', '.join(needed)}) ({inner})"
    for target, source in renames:
        expr = f'label_replace({expr}, "{target}", "$1", "{source}", "(.+)")'
    return f"sum by ({', '.join(wanted)}) ({expr})"


def _classic_sum(by: str, status: str | None, inner_for: str) -> str:
    """The classic side summed `by`: `route` also from handler/path and, when `status` filters, one
    operand per status label (status_code, status, code) with its value as `status_code`."""
    wanted = _labels(by)
    parts = []
    for label in STATUS_LABELS if status else (None,):
        matchers = SERVICE + (f', {label}=~"{status}"' if label else "")
        renames = [("route", alias) for alias in ROUTE_ALIASES] if "route" in wanted else []
        if label and label != "status_code" and "status_code" in wanted:
            renames.append(("status_code", label))
        parts.append(_folded(inner_for.format(matchers=matchers), by, renames))
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _otel_sum(by: str, status: str | None, inner_for: str) -> str:
    matchers = SERVICE + (f', http_response_status_code=~"{status}"' if status else "")
    renames = [(name, OTEL_NAMES[name]) for name in _labels(by) if name in OTEL_NAMES]
    return _folded(inner_for.format(matchers=matchers), by, renames)


def request_rate(by: str = "job", status: str | None = None) -> str:
    """Requests per second grouped `by`, from whichever convention the service emits; `status` is a
    regex on the status code (e.g. "5..")."""
    classic = _classic_sum(by, status, f"rate({CLASSIC_TOTAL}{{{{{{matchers}}}}}}[{RATE}])")
    otel = _otel_sum(by, status, f"rate({OTEL_HTTP}_count{{{{{{matchers}}}}}}[{RATE}])")
    # OTel SDKs' exponential histograms arrive as native histograms: no _count series.
    native = _otel_sum(by, status, f"histogram_count(rate({OTEL_HTTP}{{{{{{matchers}}}}}}[{RATE}]))")
    return f"{classic} or {otel} or {native}"


def error_ratio(by: str = "job") -> str:
    """Share of requests answered 5xx; 0 (not "no data") when there is traffic without errors."""
    errors = request_rate(by, "5..")
    total = request_rate(by)
    return f"(({errors}) or ({total}) * 0) / ({total})"


def latency_quantile(quantile: float, by: str = "") -> str:
    """The `quantile` latency in seconds from the request-duration histograms."""
    group = ", ".join(s for s in ("le", by) if s)
    classic = _classic_sum(group, None, f"rate({CLASSIC_DURATION}_bucket{{{{{{matchers}}}}}}[{RATE}])")
    otel = _otel_sum(group, None, f"rate({OTEL_HTTP}_bucket{{{{{{matchers}}}}}}[{RATE}])")
    quantiles = [f"histogram_quantile({quantile}, {classic})", f"histogram_quantile({quantile}, {otel})"]
    # Native histograms (no _bucket series, no `le`): the same histograms, one series each.
    wanted = _labels(by)
    classic_renames = [("route", alias) for alias in ROUTE_ALIASES] if "route" in wanted else []
    otel_renames = [(name, OTEL_NAMES[name]) for name in wanted if name in OTEL_NAMES]
    quantiles.append(_native_quantile(quantile, CLASSIC_DURATION, by, classic_renames))
    quantiles.append(_native_quantile(quantile, OTEL_HTTP, by, otel_renames))
    return " or ".join(quantiles)


def _native_quantile(quantile: float, metric: str, by: str, renames: list[tuple[str, str]]) -> str:
    """The `quantile` of native histogram `metric` grouped `by`, labels renamed after the quantile:
    label_replace drops native histogram samples before Prometheus 2.45 (Debian's is 2.42)."""
    wanted = _labels(by)
    needed = list(dict.fromkeys([*wanted, *(source for _, source in renames)]))
    group = f"sum by ({', '.join(needed)})" if needed else "sum"
    expr = f"histogram_quantile({quantile}, {group} (rate({metric}{{{SERVICE}}}[{RATE}])))"
    if not renames:
        return expr
    for target, source in renames:
        expr = f'label_replace({expr}, "{target}", "$1", "{source}", "(.+)")'
    return f"max by ({', '.join(wanted)}) ({expr})"


def histogram_quantile(quantile: float, metric: str, selector: str, by: str = "") -> str:
    """The `quantile` of histogram `metric` over `selector`, grouped `by`: from its classic form
    (`_bucket` series) or its native form (one series, no `le`)."""
    group = ", ".join(s for s in ("le", by) if s)
    classic = f"histogram_quantile({quantile}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))"
    summed = f"sum by ({by})" if by else "sum"
    native = f"histogram_quantile({quantile}, {summed} (rate({metric}{{{selector}}}[{RATE}])))"
    return f"{classic} or {native}"
