"""Pack 6: LLM cost and budgets."""

from __future__ import annotations

from dashboard_packs.model import (
    Board,
    Pack,
    Row,
    alerts_annotation,
    bargauge,
    prom,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)
from dashboard_packs.promql import RATE, SERVICE

# The same budget usage the LLM alert rules read (stack:llm_budget_usage:ratio), computed here from
# the raw series so that the panel works with the rule pack switched off too.
BUDGET_USAGE = (
    f"max by (job, budget) (llm_budget_usage_ratio{{{SERVICE}}})"
    f" or max by (job, budget) (llm_budget_spent_usd{{{SERVICE}}})"
    f" / on (job, budget) max by (job, budget) (llm_budget_limit_usd{{{SERVICE}}} > 0)"
)
USAGE_STEPS = thresholds((None, "green"), (0.8, "orange"), (0.95, "red"))


def board() -> Board:
    b = Board(
        uid="stack-llm",
        title="LLM cost and budgets",
        description="What the LLM features cost, by provider, model and operation; budget usage per "
        "budget owner, exceeded budgets, reservations in flight and daily spend.",
        tags=["llm"],
        annotations=[alerts_annotation('service=~"$service"')],
        variables=[
            query_variable("service", "Service", "label_values(llm_cost_usd_total, job)", description="Prometheus job.")
        ],
        time_from="now-24h",
        refresh="1m",
    )
    b.add(
        stat(
            "Spend today",
            "Cost in USD over the last 24 hours, all providers.",
            prom(f"sum(increase(llm_cost_usd_total{{{SERVICE}}}[1d]))", "USD", instant=True),
            unit="currencyUSD",
            decimals=2,
        ),
        stat(
            "Cost rate",
            "Current spend in USD per hour.",
            prom(f"sum(rate(llm_cost_usd_total{{{SERVICE}}}[{RATE}])) * 3600", "USD/h"),
            unit="currencyUSD",
            decimals=2,
        ),
        stat(
            "Highest budget usage",
            "The most used budget's share spent. Above 80% warns, above 95% pages.",
            prom(f"max({BUDGET_USAGE})", "usage", instant=True),
            unit="percentunit",
            steps=USAGE_STEPS,
        ),
        stat(
            "Active reservations",
            "Budget reservations held by requests in flight.",
            prom(f"sum(llm_budget_reservations_active{{{SERVICE}}})", "reservations", instant=True),
            unit="short",
        ),
        Row("Cost"),
        timeseries(
            "Cost rate by provider and model",
            "USD per hour by provider and model.",
            prom(
                f"sum by (provider, model) (rate(llm_cost_usd_total{{{SERVICE}}}[{RATE}])) * 3600",
                "{{provider}} {{model}}",
            ),
            unit="currencyUSD",
            custom={"stacking": {"mode": "normal", "group": "A"}},
        ),
        timeseries(
            "Token usage by operation",
            "Tokens per second by operation (chat, embedding, summarise...) and token type.",
            prom(f"sum by (operation, type) (rate(llm_tokens_total{{{SERVICE}}}[{RATE}]))", "{{operation}} {{type}}"),
            unit="short",
        ),
        timeseries(
            "Daily spend",
            "Spend over the trailing 24 hours by provider.",
            prom(f"sum by (provider) (increase(llm_cost_usd_total{{{SERVICE}}}[1d]))", "{{provider}}"),
            unit="currencyUSD",
        ),
        timeseries(
            "Requests by model and status",
            "LLM calls per second by model and outcome.",
            prom(f"sum by (model, status) (rate(llm_requests_total{{{SERVICE}}}[{RATE}]))", "{{model}} {{status}}"),
            unit="reqps",
        ),
        Row("Budgets"),
        bargauge(
            "Budget usage by owner",
            "Share of each budget spent in its period (budget = the owner it is allotted to).",
            prom(BUDGET_USAGE, "{{budget}}", instant=True),
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=USAGE_STEPS,
        ),
        timeseries(
            "Budget exceeded events",
            "Requests refused or flagged because their budget was exhausted, per budget.",
            prom(f"sum by (budget) (increase(llm_budget_exceeded_total{{{SERVICE}}}[{RATE}]))", "{{budget}}"),
            unit="short",
            custom={"drawStyle": "bars", "fillOpacity": 80},
        ),
        table(
            "Budgets",
            "Spent and limit in USD per budget, with the share used.",
            prom(f"max by (budget) (llm_budget_spent_usd{{{SERVICE}}})", instant=True, table=True),
            prom(f"max by (budget) (llm_budget_limit_usd{{{SERVICE}}})", instant=True, table=True),
            width=12,
            unit="currencyUSD",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value #A": "spent", "Value #B": "limit"},
                    },
                },
            ],
        ),
        timeseries(
            "Active reservations by budget",
            "Reservations in flight per budget: each holds part of the budget until its request settles.",
            prom(f"sum by (budget) (llm_budget_reservations_active{{{SERVICE}}})", "{{budget}}"),
            unit="short",
        ),
    )
    return b


PACK = Pack("llm", "LLM", [board()])
