"""Pack 7: workflows (Temporal-style workers): executions, activities, task queues."""

from __future__ import annotations

from dashboard_packs.model import (
    Board,
    Pack,
    Row,
    alerts_annotation,
    prom,
    query_variable,
    stat,
    thresholds,
    timeseries,
)
from dashboard_packs.promql import RATE, SERVICE, histogram_quantile

FAILED = 'status=~"failed|timed_out"'
FINISHED = 'status!~"started|running"'
FAILURE_STEPS = thresholds((None, "green"), (0.05, "orange"), (0.1, "red"))


def failure_ratio(by: str) -> str:
    """Failed or timed-out executions per finished execution (the WorkflowFailureRateHigh ratio)."""
    failed = f"sum by ({by}) (rate(temporal_workflow_executions_total{{{SERVICE}, {FAILED}}}[{RATE}]))"
    finished = f"sum by ({by}) (rate(temporal_workflow_executions_total{{{SERVICE}, {FINISHED}}}[{RATE}]))"
    return f"({failed} or {finished} * 0) / {finished}"


def board() -> Board:
    b = Board(
        uid="stack-workflows",
        title="Workflows",
        description="Workflow executions by status, failure ratio, activity duration and failures by "
        "activity and reason, task queue depth and active workflows.",
        tags=["workflows"],
        annotations=[alerts_annotation('service=~"$service"')],
        variables=[
            query_variable(
                "service",
                "Service",
                "label_values(temporal_workflow_executions_total, job)",
                description="Prometheus job of the workers.",
            )
        ],
        time_from="now-6h",
    )
    b.add(
        stat(
            "Executions / min",
            "Workflow executions finished per minute, all statuses.",
            prom(
                f"sum(rate(temporal_workflow_executions_total{{{SERVICE}, {FINISHED}}}[{RATE}])) * 60",
                "per minute",
            ),
            unit="short",
        ),
        stat(
            "Failure ratio",
            "Failed or timed-out executions per finished execution. Above 10% fires WorkflowFailureRateHigh.",
            prom(f"max({failure_ratio('job')})", "failed"),
            unit="percentunit",
            decimals=1,
            steps=FAILURE_STEPS,
        ),
        stat(
            "Active workflows",
            "Workflows running now.",
            prom(f"sum(temporal_workflows_active{{{SERVICE}}})", "active", instant=True),
            unit="short",
        ),
        stat(
            "Task queue backlog",
            "Tasks waiting in all task queues: workers are not keeping up when it grows.",
            prom(f"sum(temporal_task_queue_depth{{{SERVICE}}})", "tasks", instant=True),
            unit="short",
            steps=thresholds((None, "green"), (100, "orange"), (1000, "red")),
        ),
        Row("Executions"),
        timeseries(
            "Executions by status",
            "Workflow executions per minute by workflow type and status.",
            prom(
                f"sum by (workflow_type, status) (rate(temporal_workflow_executions_total{{{SERVICE}}}[{RATE}])) * 60",
                "{{workflow_type}} {{status}}",
            ),
            unit="short",
        ),
        timeseries(
            "Failure ratio by workflow type",
            "Failed or timed-out share of finished executions, by workflow type.",
            prom(failure_ratio("workflow_type"), "{{workflow_type}}"),
            unit="percentunit",
            steps=FAILURE_STEPS,
            custom={"thresholdsStyle": {"mode": "dashed"}},
        ),
        timeseries(
            "Active workflows by type",
            "Workflows running now, by type.",
            prom(f"sum by (workflow_type) (temporal_workflows_active{{{SERVICE}}})", "{{workflow_type}}"),
            unit="short",
        ),
        timeseries(
            "Task queue depth",
            "Tasks waiting per task queue.",
            prom(f"max by (task_queue) (temporal_task_queue_depth{{{SERVICE}}})", "{{task_queue}}"),
            unit="short",
        ),
        Row("Activities"),
        timeseries(
            "Activity duration p50 / p95",
            "Activity execution time by activity type.",
            prom(
                histogram_quantile(0.5, "temporal_activity_duration_seconds", SERVICE, "activity_type"),
                "p50 {{activity_type}}",
            ),
            prom(
                histogram_quantile(0.95, "temporal_activity_duration_seconds", SERVICE, "activity_type"),
                "p95 {{activity_type}}",
            ),
            unit="s",
        ),
        timeseries(
            "Activity failures by activity and reason",
            "Activity failures per minute by activity type, and by reason (timeout, error type...) when "
            "the workers label failures with one.",
            prom(
                f"sum by (activity_type, reason) (rate(temporal_activity_failures_total{{{SERVICE}}}[{RATE}])) * 60",
                "{{activity_type}} {{reason}}",
            ),
            unit="short",
        ),
    )
    return b


PACK = Pack("workflows", "Workflows", [board()])
