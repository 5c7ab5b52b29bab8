"""SLO rules: error ratios over the burn-rate windows, error budget, multi-window burn-rate alerts.

For every SLO in stack.yaml (label `slo`):
  slo:sli_error:ratio_rate<W>      for W in 5m 30m 1h 2h 6h 1d 3d (the burn-rate windows)
  slo:sli_error:ratio_rate_window  over the SLO window (average of the 5m ratio)
  slo:objective:ratio              the objective as a ratio (0.999)
  slo:window:seconds               the SLO window in seconds (2592000 for 30d), for time-to-exhaustion
  slo:error_budget:remaining       1 - spent share of the budget over the window (negative: overspent)
and the alerts of the Google SRE workbook: page (critical) at 14.4x over 1h and 5m or 6x over 6h
and 30m; ticket (warning) at 3x over 1d and 2h or 1x over 3d and 6h; budget exhausted below 5%.
"""

from __future__ import annotations

from typing import Any

from stack.rules.packs import format_number, runbook_url
from stack.settings import SliSettings, SloSettings
from stack.units import parse_duration
from stack.yamlio import dumps

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (severity, long window, short window, burn rate): the multi-window multi-burn-rate pairs.
BURN_RATE_ALERTS = (
    ("critical", "1h", "5m", 14.4),
    ("critical", "6h", "30m", 6.0),
    ("warning", "1d", "2h", 3.0),
    ("warning", "3d", "6h", 1.0),
)
BUDGET_EXHAUSTED_BELOW = 0.05
BURN_ALERT = "SLOErrorBudgetBurn"
EXHAUSTED_ALERT = "SLOErrorBudgetExhausted"
ALERTS = (BURN_ALERT, EXHAUSTED_ALERT)

_CLASSIC = {"requests": "http_requests_total", "status": "status", "histogram": "http_request_duration_seconds"}
_OTEL = {
    "requests": "http_server_request_duration_seconds_count",
    "status": "http_response_status_code",
    "histogram": "http_server_request_duration_seconds",
}


def _selector(*matchers: str) -> str:
    return "{" + ", ".join(m for m in matchers if m) + "}"


def _le_matcher(threshold: float) -> str:
    # Prometheus 3 writes integer bucket bounds as "1.0" where 2.x kept the client's "1".
    text = format_number(threshold)
    if float(threshold).is_integer():
        return f'le=~"{text}|{text}\\\\.0"'
    return f'le="{text}"'


def _requests(metric: str, selector: str, window: str) -> str:
    """Requests per second from `metric`; a histogram's `_count` also read from the native form of
    the histogram (no `_count` series there)."""
    counted = f"sum(rate({metric}{selector}[{window}]))"
    if not metric.endswith("_count"):
        return counted
    native = f"sum(histogram_count(rate({metric.removesuffix('_count')}{selector}[{window}])))"
    return f"({counted} or {native})"


def _traffic(total: str) -> str:
    # Without traffic the ratio is 0/0 = NaN, and one NaN sample makes the window's average (and so
    # the error budget) NaN for the whole window: record nothing for a quiet window instead.
    return f"({total} > 0)"


def error_ratio_expr(sli: SliSettings, window: str) -> str:
    """PromQL for the share of bad events of `sli` over `window`."""
    names = _OTEL if sli.convention == "otel" else _CLASSIC
    if sli.kind == "availability":
        metric = sli.metric or names["requests"]
        status = sli.status_label or names["status"]
        bad = status + '=~"5.."'
        errors = _requests(metric, _selector(sli.selector, bad), window)
        total = _requests(metric, _selector(sli.selector), window)
        # No 5xx series at all means no errors, not no data.
        return f"({errors} or {total} * 0)\n/\n{_traffic(total)}"
    if sli.kind == "latency":
        assert sli.threshold is not None
        base = sli.metric or names["histogram"]
        good = f"sum(rate({base}_bucket{_selector(sli.selector, _le_matcher(sli.threshold))}[{window}]))"
        total = f"sum(rate({base}_count{_selector(sli.selector)}[{window}]))"
        classic = f"1 - (\n{good}\n/\n{_traffic(total)}\n)"
        # A native histogram (no _bucket series): the share above the threshold, from the histogram
        # itself. histogram_fraction counts a native bucket wholly below `threshold` only when its
        # upper bound is at most `threshold`, like the classic `le` bucket.
        summed = f"sum(rate({base}{_selector(sli.selector)}[{window}]))"
        native = (
            f"(1 - histogram_fraction(0, {format_number(sli.threshold)}, {summed}))"
            f"\nand on () (histogram_count({summed}) > 0)"
        )
        return f"(\n{classic}\n)\nor\n(\n{native}\n)"
    assert sli.total is not None
    total = sli.total.replace("$window", window)
    if sli.errors is not None:
        return f"({sli.errors.replace('$window', window)})\n/\n{_traffic(f'({total})')}"
    assert sli.good is not None
    return f"1 - (\n({sli.good.replace('$window', window)})\n/\n{_traffic(f'({total})')}\n)"


def _labels(slo: SloSettings) -> dict[str, str]:
    return {"slo": slo.name, "service": slo.service or slo.name}


def slo_groups(slo: SloSettings, runbook_base: str) -> list[dict[str, Any]]:
    """The recording and alerting rule groups of one SLO."""
    labels = _labels(slo)
    selector = f'{{slo="{slo.name}"}}'
    budget = 1 - slo.objective / 100
    recording: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{window}",
            "expr": error_ratio_expr(slo.sli, window),
            "labels": dict(labels),
        }
        for window in WINDOWS
    ]
    recording += [
        {
            "record": "slo:sli_error:ratio_rate_window",
            "expr": f"avg_over_time(slo:sli_error:ratio_rate5m{selector}[{slo.window}])",
            "labels": dict(labels),
        },
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({format_number(round(slo.objective / 100, 12))})",
            "labels": dict(labels),
        },
        {
            # Dashboards turn a burn rate into a time left with it: the window is per SLO, not 30d.
            "record": "slo:window:seconds",
            "expr": f"vector({format_number(parse_duration(slo.window))})",
            "labels": dict(labels),
        },
        {
            "record": "slo:error_budget:remaining",
            "expr": f"1 - slo:sli_error:ratio_rate_window{selector} / {format_number(round(budget, 12))}",
            "labels": dict(labels),
        },
    ]
    alerts: list[dict[str, Any]] = []
    for severity in ("critical", "warning"):
        pairs = [pair for pair in BURN_RATE_ALERTS if pair[0] == severity]
        terms = []
        for _, long, short, rate in pairs:
            limit = format_number(round(rate * budget, 12))
            terms.append(
                f"(slo:sli_error:ratio_rate{long}{selector} > {limit}"
                f" and slo:sli_error:ratio_rate{short}{selector} > {limit})"
            )
        windows = " or ".join(f"{rate:g}x (over {long} and {short})" for _, long, short, rate in pairs)
        alerts.append(
            {
                "alert": BURN_ALERT,
                "expr": "\nor\n".join(terms),
                "for": "2m",
                "labels": {**labels, "severity": severity},
                "annotations": {
                    "summary": f"SLO {slo.name} burns its error budget too fast",
                    "description": (
                        f"The error ratio of {slo.name} ({{{{ $value | humanizePercentage }}}}) burns the "
                        f"{slo.window} error budget of its {format_number(slo.objective)}% objective faster than "
                        f"{windows}."
                    ),
                    "runbook_url": runbook_url(runbook_base, BURN_ALERT),
                },
            }
        )
    alerts.append(
        {
            "alert": EXHAUSTED_ALERT,
            "expr": f"slo:error_budget:remaining{selector} < {format_number(BUDGET_EXHAUSTED_BELOW)}",
            "for": "5m",
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"SLO {slo.name} has {{{{ $value | humanizePercentage }}}} of its error budget left",
                "description": (
                    f"Less than {format_number(BUDGET_EXHAUSTED_BELOW * 100)}% of the {slo.window} error budget of "
                    f"{slo.name} ({format_number(slo.objective)}%) remains: freeze risky changes."
                ),
                "runbook_url": runbook_url(runbook_base, EXHAUSTED_ALERT),
            },
        }
    )
    return [
        {"name": f"slo-{slo.name}-recording", "interval": "1m", "rules": recording},
        {"name": f"slo-{slo.name}-alerts", "rules": alerts},
    ]


def render_slos(slos: list[SloSettings], runbook_base: str) -> str:
    """Every SLO's rules as the text of one Prometheus rule file."""
    groups: list[dict[str, Any]] = []
    for slo in slos:
        groups.extend(slo_groups(slo, runbook_base))
    header = "# SLO rules rendered by stack from stack.yaml `slos:` (see docs/slos.md).\n"
    return header + dumps({"groups": groups})
