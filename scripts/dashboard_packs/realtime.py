"""Pack 5: realtime (websockets): connections, events published and delivered, latency, buffers."""

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


def board() -> Board:
    b = Board(
        uid="stack-realtime",
        title="Realtime",
        description="Websocket connections, events published and delivered, delivery latency and "
        "send buffers of the realtime services.",
        tags=["realtime"],
        annotations=[alerts_annotation('service=~"$service"')],
        variables=[
            query_variable(
                "service", "Service", "label_values(socket_active_connections, job)", description="Prometheus job."
            )
        ],
        time_from="now-3h",
    )
    b.add(
        stat(
            "Connections",
            "Open websocket connections now. Under 1 (all clients lost) or over 5000 (a leak) alerts.",
            prom(f"sum(socket_active_connections{{{SERVICE}}})", "connections", instant=True),
            unit="short",
            steps=thresholds((None, "red"), (1, "green"), (5000, "orange")),
        ),
        stat(
            "Events published / s",
            "Events the services published per second.",
            prom(f"sum(rate(socket_events_published_total{{{SERVICE}}}[{RATE}]))", "published"),
            unit="short",
        ),
        stat(
            "Delivery ratio",
            "Events delivered to clients per event published (fan-out makes it above 1; a drop means "
            "deliveries failing).",
            prom(
                f"sum(rate(socket_events_delivered_total{{{SERVICE}}}[{RATE}]))"
                f" / sum(rate(socket_events_published_total{{{SERVICE}}}[{RATE}]))",
                "delivered per published",
            ),
            unit="none",
            decimals=2,
        ),
        stat(
            "Delivery latency p95",
            "95th percentile time from publishing an event to delivering it to a client.",
            prom(histogram_quantile(0.95, "socket_delivery_latency_seconds", SERVICE), "p95"),
            unit="s",
            steps=thresholds((None, "green"), (0.5, "orange"), (1, "red")),
        ),
        Row("Connections and events"),
        timeseries(
            "Websocket connections",
            "Open connections per service.",
            prom(f"sum by (job) (socket_active_connections{{{SERVICE}}})", "{{job}}"),
            unit="short",
        ),
        timeseries(
            "Events published and delivered",
            "Events per second by event name: published by the service, delivered to clients.",
            prom(f"sum by (event) (rate(socket_events_published_total{{{SERVICE}}}[{RATE}]))", "published {{event}}"),
            prom(f"sum by (event) (rate(socket_events_delivered_total{{{SERVICE}}}[{RATE}]))", "delivered {{event}}"),
            unit="short",
        ),
        timeseries(
            "Delivery latency",
            "p50 and p95 of the publish-to-delivery time per service.",
            prom(histogram_quantile(0.5, "socket_delivery_latency_seconds", SERVICE, "job"), "p50 {{job}}"),
            prom(histogram_quantile(0.95, "socket_delivery_latency_seconds", SERVICE, "job"), "p95 {{job}}"),
            unit="s",
        ),
        timeseries(
            "Send buffer size",
            "Messages buffered for slow clients per service. A buffer that only grows means clients "
            "cannot keep up or are gone.",
            prom(f"sum by (job) (socket_buffer_size{{{SERVICE}}})", "{{job}}"),
            unit="short",
        ),
    )
    return b


PACK = Pack("realtime", "Realtime", [board()])
