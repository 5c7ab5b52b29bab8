"""An application instrumented with the OpenTelemetry Python SDK, as the stack's users write them.

Each helper builds its own providers (never the global ones), exports over OTLP/HTTP or OTLP/gRPC to
the given Collector, and flushes before it returns, so that a test knows what left the app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import Meter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import format_trace_id, set_span_in_context

Protocol = Literal["http", "grpc"]


def _metric_exporter(
    protocol: Protocol, endpoint: str, temporality: dict[type, AggregationTemporality]
) -> MetricExporter:
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", preferred_temporality=temporality)
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

    return GrpcExporter(endpoint=endpoint, insecure=True, preferred_temporality=temporality)


def record_metrics(
    protocol: Protocol,
    endpoint: str,
    resource: Mapping[str, Any],
    steps: list[Callable[[Meter], None]],
    *,
    delta: bool = False,
) -> None:
    """Run each step on a meter, exporting after each one (so a delta counter sends one delta per step).

    `endpoint` is http://host:port for HTTP, host:port for gRPC.
    """
    temporality = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA} if delta else {}
    reader = PeriodicExportingMetricReader(
        _metric_exporter(protocol, endpoint, temporality), export_interval_millis=3_600_000
    )
    provider = MeterProvider(resource=Resource.create(dict(resource)), metric_readers=[reader])
    meter = provider.get_meter("tests.otel_app")
    try:
        for step in steps:
            step(meter)
            assert provider.force_flush(timeout_millis=10_000)
    finally:
        provider.shutdown()


def trace_with_log(endpoint: str, resource: Mapping[str, Any], message: str) -> str:
    """One trace (a server span with a child) and one log record inside it, over OTLP/HTTP; the trace id."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    res = Resource.create(dict(resource))
    tracer_provider = TracerProvider(resource=res)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    logger_provider = LoggerProvider(resource=res)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs")))
    tracer = tracer_provider.get_tracer("tests.otel_app")
    logger = logger_provider.get_logger("tests.otel_app")
    try:
        with tracer.start_as_current_span("GET /checkout") as span:
            with tracer.start_as_current_span("charge card"):
                pass
            logger.emit(
                body=message,
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                context=set_span_in_context(span),
                attributes={"order.id": "o-17"},
            )
            trace_id = format_trace_id(span.get_span_context().trace_id)
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
    return trace_id
