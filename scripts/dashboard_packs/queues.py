"""Pack 4: queues and workers (BullMQ-style job queues, a production tick loop)."""

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

QUEUE = f'{SERVICE}, queue=~"$queue"'


def board() -> Board:
    b = Board(
        uid="stack-queues",
        title="Queues and workers",
        description="Job queues: depth by queue and state, failed jobs, processing duration, active "
        "workers, and the production tick loop's duration.",
        tags=["queues"],
        annotations=[alerts_annotation('service=~"$service"')],
        variables=[
            query_variable("service", "Service", "label_values(queue_depth, job)", description="Prometheus job."),
            query_variable(
                "queue", "Queue", 'label_values(queue_depth{job=~"$service"}, queue)', description="Queue name."
            ),
        ],
        time_from="now-3h",
    )
    b.add(
        stat(
            "Waiting jobs",
            "Jobs waiting to be picked up, all selected queues. Above 500 fires QueueBacklogHigh.",
            prom(f'sum(queue_jobs_total{{{QUEUE}, state="waiting"}})', "waiting", instant=True),
            unit="short",
            steps=thresholds((None, "green"), (100, "orange"), (500, "red")),
        ),
        stat(
            "Failed jobs / min",
            "Jobs that failed per minute over the selected range's rate interval.",
            prom(f"sum(rate(queue_jobs_failed_total{{{QUEUE}}}[{RATE}])) * 60", "failed/min"),
            unit="short",
            decimals=1,
            steps=thresholds((None, "green"), (1, "orange"), (10, "red")),
        ),
        stat(
            "Active workers",
            "Workers processing jobs right now. Zero with jobs waiting fires QueueNoActiveWorkers.",
            prom(f"sum(queue_workers_active{{{SERVICE}}})", "workers", instant=True),
            unit="short",
            steps=thresholds((None, "red"), (1, "green")),
        ),
        stat(
            "Tick p99",
            "99th percentile duration of the production tick loop. Its p95 above 2 s fires SlowProductionTick.",
            prom(histogram_quantile(0.99, "production_tick_duration_seconds", SERVICE), "p99"),
            unit="s",
            steps=thresholds((None, "green"), (1, "orange"), (2, "red")),
        ),
        Row("Depth"),
        timeseries(
            "Queue depth",
            "Jobs in each queue (queue_depth). Above 100 fires QueueDepthHigh.",
            prom(f"max by (job, queue) (queue_depth{{{QUEUE}}})", "{{job}} {{queue}}"),
            unit="short",
        ),
        timeseries(
            "Jobs by state",
            "Jobs per queue and state (waiting, active, delayed, completed, failed) as the queue reports them.",
            prom(f"sum by (queue, state) (queue_jobs_total{{{QUEUE}}})", "{{queue}} {{state}}"),
            unit="short",
            custom={"stacking": {"mode": "normal", "group": "A"}},
        ),
        Row("Processing"),
        timeseries(
            "Failed jobs per minute by queue",
            "Job failures per minute by queue.",
            prom(f"sum by (queue) (rate(queue_jobs_failed_total{{{QUEUE}}}[{RATE}])) * 60", "{{queue}}"),
            unit="short",
        ),
        timeseries(
            "Processing duration p50 / p95 by queue",
            "How long a job takes from start to finish, by queue (queue_job_duration_seconds).",
            prom(histogram_quantile(0.5, "queue_job_duration_seconds", QUEUE, "queue"), "p50 {{queue}}"),
            prom(histogram_quantile(0.95, "queue_job_duration_seconds", QUEUE, "queue"), "p95 {{queue}}"),
            unit="s",
        ),
        timeseries(
            "Active workers",
            "Workers processing or ready, per service.",
            prom(f"sum by (job) (queue_workers_active{{{SERVICE}}})", "{{job}}"),
            unit="short",
        ),
        timeseries(
            "Production tick duration",
            "p50, p95 and p99 of the production tick loop per service: a slow tick delays every job.",
            prom(histogram_quantile(0.5, "production_tick_duration_seconds", SERVICE, "job"), "p50 {{job}}"),
            prom(histogram_quantile(0.95, "production_tick_duration_seconds", SERVICE, "job"), "p95 {{job}}"),
            prom(histogram_quantile(0.99, "production_tick_duration_seconds", SERVICE, "job"), "p99 {{job}}"),
            unit="s",
        ),
    )
    return b


PACK = Pack("queues", "Queues", [board()])
