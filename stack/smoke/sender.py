"""The app side of `stack smoke`: a trace, a log and a metric sent with the OpenTelemetry SDK."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stack.smoke.report import SmokeError

SERVICE_NAME = "stack-smoke"
METRIC = "stack_smoke_duration"  # recorded in seconds: Prometheus names it stack_smoke_duration_seconds


@dataclass(frozen=True)
class Sent:
    smoke_id: str
    trace_id: str
    message: str
    at: float  # time.monotonic() when the last signal had left the app


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    """The SDK logs export failures with tracebacks; smoke reports them as one line instead."""
    logger = logging.getLogger("opentelemetry")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


def send(
    endpoint: str, *, timeout: float = 10, signals: frozenset[str] = frozenset({"traces", "logs", "metrics"})
) -> Sent:
    """Send the trace, the log and the metric to the Collector's OTLP/HTTP `endpoint` (http://host:port).

    Only the `signals` whose backend is on are exported: the Collector has no pipeline for the others
    and refuses them. The spans are made all the same (the log and the exemplar carry their ids).
    """
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.trace import format_trace_id, set_span_in_context

    smoke_id = uuid.uuid4().hex[:12]
    base = endpoint.rstrip("/")
    resource = Resource.create({"service.name": SERVICE_NAME, "service.instance.id": smoke_id})
    failures: list[str] = []

    class Checked:
        """Wraps an exporter to learn whether each export succeeded (the SDK only logs it)."""

        def __init__(self, inner: Any, ok: Any, what: str) -> None:
            self.inner, self.ok, self.what = inner, ok, what

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def export(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
            result = self.inner.export(batch, *args, **kwargs)
            if result is not self.ok:
                failures.append(self.what)
            return result

    span_exporter = Checked(
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout), SpanExportResult.SUCCESS, "trace"
    )
    log_exporter = Checked(
        OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=timeout), LogRecordExportResult.SUCCESS, "log"
    )
    metric_exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=timeout)
    metric_checked = Checked(metric_exporter, MetricExportResult.SUCCESS, "metric")
    tracer_provider = TracerProvider(resource=resource)
    if "traces" in signals:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))  # type: ignore[arg-type]
    logger_provider = LoggerProvider(resource=resource)
    if "logs" in signals:
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))  # type: ignore[arg-type]
    reader = PeriodicExportingMetricReader(metric_checked, export_interval_millis=3_600_000)  # type: ignore[arg-type]
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader] if "metrics" in signals else [])
    tracer = tracer_provider.get_tracer("stack.smoke")
    logger = logger_provider.get_logger("stack.smoke")
    histogram = meter_provider.get_meter("stack.smoke").create_histogram(METRIC, unit="s")
    message = f"stack smoke {smoke_id}"
    with _quiet_sdk():
        try:
            with tracer.start_as_current_span("smoke request") as root:
                context = set_span_in_context(root)
                started = time.monotonic()
                with tracer.start_as_current_span("smoke query"), tracer.start_as_current_span("smoke render"):
                    pass
                logger.emit(body=message, severity_number=SeverityNumber.INFO, severity_text="INFO", context=context)
                histogram.record(time.monotonic() - started, {"smoke_id": smoke_id}, context=context)
                trace_id = format_trace_id(root.get_span_context().trace_id)
            meter_provider.force_flush(timeout_millis=int(timeout * 1000))
        finally:
            tracer_provider.shutdown()
            logger_provider.shutdown()
            meter_provider.shutdown()
    if failures:
        raise SmokeError(
            f"the Collector at {base} did not accept the smoke {', '.join(sorted(set(failures)))}",
            hint="is it running? `stack status` shows it, `stack logs otel-collector` says why",
        )
    return Sent(smoke_id, trace_id, message, time.monotonic())
