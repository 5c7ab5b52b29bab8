"""Pack 3: SLOs and error budgets, from the recording rules the renderer generates per SLO.

Series (each with `slo` and `service` labels): slo:objective:ratio, slo:window:seconds,
slo:sli_error:ratio_rate<window> for 5m 30m 1h 2h 6h 1d 3d and the whole SLO window
(ratio_rate_window), slo:error_budget:remaining.
"""

from __future__ import annotations

from dashboard_packs.model import (
    Board,
    Pack,
    Row,
    gauge,
    prom,
    query_variable,
    series_link,
    stat,
    table,
    thresholds,
    timeseries,
)

SLO = 'slo=~"$slo"'
BY = "slo, service"
SLO_VARIABLE = query_variable("slo", "SLO", "label_values(slo:objective:ratio, slo)", description="SLOs in stack.yaml.")
BUDGET_STEPS = thresholds((None, "red"), (0.05, "orange"), (0.25, "green"))
BURN_STEPS = thresholds((None, "green"), (1, "orange"), (6, "red"))


def series(name: str) -> str:
    return f"max by ({BY}) ({name}{{{SLO}}})"


def burn_rate(window: str) -> str:
    """How many times faster than sustainable the budget burns over `window` (1 = exactly on budget)."""
    return f"{series(f'slo:sli_error:ratio_rate{window}')} / (1 - {series('slo:objective:ratio')})"


def time_to_exhaustion() -> str:
    """Seconds until the budget is spent at the 1h burn rate: at burn rate 1 the whole budget lasts
    the SLO's window, so what remains lasts remaining * window / burn rate."""
    remaining = f"clamp_min({series('slo:error_budget:remaining')}, 0)"
    return f"{remaining} * {series('slo:window:seconds')} / ({burn_rate('1h')} > 0)"


def board() -> Board:
    b = Board(
        uid="stack-slos",
        title="SLOs and error budgets",
        description="Per SLO: the SLI against its objective, error budget remaining, multi-window burn "
        "rates and the time left before the budget runs out at the current burn rate.",
        tags=["slos"],
        variables=[SLO_VARIABLE],
        time_from="now-7d",
        refresh="1m",
    )
    b.add(
        table(
            "All SLOs",
            "Every SLO with its objective, SLI over the whole window, budget remaining and 1h burn rate.",
            prom(series("slo:objective:ratio"), instant=True, table=True),
            prom(f"1 - {series('slo:sli_error:ratio_rate_window')}", instant=True, table=True),
            prom(series("slo:error_budget:remaining"), instant=True, table=True),
            prom(burn_rate("1h"), instant=True, table=True),
            width=24,
            height=7,
            unit="percentunit",
            decimals=3,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "objective",
                            "Value #B": "SLI (window)",
                            "Value #C": "budget remaining",
                            "Value #D": "burn rate 1h",
                        },
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "burn rate 1h"},
                    "properties": [{"id": "unit", "value": "x"}, {"id": "decimals", "value": 2}],
                }
            ],
        ),
        Row("SLI against objective"),
        timeseries(
            "SLI (1h) against objective",
            "Share of good events over the last hour (solid) against the objective (dashed).",
            prom(f"1 - {series('slo:sli_error:ratio_rate1h')}", "{{slo}} SLI"),
            prom(series("slo:objective:ratio"), "{{slo}} objective"),
            unit="percentunit",
            decimals=3,
            links=[
                series_link(
                    "stack-service-overview", "Service overview of ${__field.labels.service}", "service", "service"
                ),
                # What failed: the exceptions of the SLO's service, grouped.
                series_link("stack-errors", "Errors of ${__field.labels.service}", "service", "service"),
            ],
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".*objective"},
                    "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
                }
            ],
        ),
        gauge(
            "Error budget remaining",
            "Share of the window's error budget not yet spent. Below 5% fires SLOErrorBudgetExhausted.",
            prom(series("slo:error_budget:remaining"), "{{slo}}", instant=True),
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=BUDGET_STEPS,
            width=12,
            height=8,
        ),
        Row("Burn rates"),
        timeseries(
            "Burn rate 1h / 6h / 3d",
            "Error ratio divided by the allowed error ratio. 1 spends the budget exactly over the window; "
            "14.4 over 1h (and 5m) pages, 6 over 6h pages, 3 over 1d and 1 over 3d open a ticket.",
            prom(burn_rate("1h"), "{{slo}} 1h"),
            prom(burn_rate("6h"), "{{slo}} 6h"),
            prom(burn_rate("3d"), "{{slo}} 3d"),
            unit="x",
            steps=BURN_STEPS,
            custom={"thresholdsStyle": {"mode": "dashed"}},
        ),
        timeseries(
            "Error ratio by window",
            "The raw error ratios the burn-rate alerts compare: short windows react, long windows confirm.",
            *(prom(series(f"slo:sli_error:ratio_rate{w}"), f"{{{{slo}}}} {w}") for w in ("5m", "30m", "2h", "1d")),
            unit="percentunit",
            decimals=4,
        ),
        stat(
            "Time to exhaustion",
            "At the last hour's burn rate, how long until the error budget is gone (0: already "
            "overspent), from each SLO's own window (slo:window:seconds).",
            prom(
                time_to_exhaustion(),
                "{{slo}}",
                instant=True,
            ),
            unit="dtdurations",
            width=12,
            steps=thresholds((None, "red"), (86400, "orange"), (7 * 86400, "green")),
        ),
        stat(
            "Burn rate 1h now",
            "The current 1h burn rate per SLO.",
            prom(burn_rate("1h"), "{{slo}}", instant=True),
            unit="x",
            decimals=2,
            width=12,
            steps=BURN_STEPS,
        ),
    )
    return b


PACK = Pack("slos", "SLOs", [board()])
