"""`stack smoke`: one trace, one log and one metric sent as an app sends them, and each found again.

Sent with the OpenTelemetry SDK over OTLP/HTTP to the Collector:
- a trace of three spans;
- a log record inside it (so it carries the trace id);
- a histogram data point recorded inside it (so its exemplar points at the trace).

Then every backend is polled, through the runtime (published port, tunnel or in-network request),
until it answers or the timeout passes: Tempo for the trace by id, Loki for the log by trace id,
Prometheus for the metric and for the exemplar's trace id, Grafana for each datasource's health.
Each check reports the time from the send to the first answer that had the data.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from stack.errors import StackError
from stack.runtime.base import HttpReply, Runtime
from stack.settings import Settings

SERVICE_NAME = "stack-smoke"
METRIC = "stack_smoke_duration"  # recorded in seconds: Prometheus names it stack_smoke_duration_seconds
POLL_S = 0.05


class Result(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SmokeCheck:
    check: str
    component: str
    result: Result
    seconds: float | None = None  # send to queryable
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result.value}


@dataclass(frozen=True)
class SmokeReport:
    smoke_id: str
    trace_id: str
    checks: list[SmokeCheck]

    @property
    def ok(self) -> bool:
        return all(check.result is not Result.FAILED for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "smoke_id": self.smoke_id,
            "trace_id": self.trace_id,
            "checks": [check.as_dict() for check in self.checks],
        }


class SmokeError(StackError):
    """Nothing could be sent (the Collector is disabled, down or unreachable)."""


class _NotYet(Exception):
    """The backend answered, without the data yet (kept as the reason if the timeout passes)."""


class _Wrong(Exception):
    """The backend answered with something else than what was sent: no point in waiting."""


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


def _json(reply: HttpReply, what: str) -> Any:
    if reply.status != 200:
        raise _NotYet(f"{what} answered HTTP {reply.status}: {reply.text()[:200].strip()}")
    try:
        return json.loads(reply.body)
    except ValueError:
        raise _NotYet(f"{what} answered something that is not JSON") from None


def _trace_ids(document: Any) -> set[str]:
    """Every trace id in a Tempo trace (OTLP JSON: hex, or base64 of the 16 bytes)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("traceId", "traceID") and isinstance(item, str):
                    found.add(_hex_id(item))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(document)
    return found


def _hex_id(text: str) -> str:
    if len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        return base64.b64decode(text, validate=True).hex()
    except ValueError:
        return text


Probe = Callable[[], str]  # returns a detail on success; raises _NotYet or _Wrong


def _tempo_probe(runtime: Runtime, sent: Sent) -> Probe:
    def probe() -> str:
        reply = runtime.http("tempo", "http", f"/api/v2/traces/{sent.trace_id}")
        if reply.status == 404:
            raise _NotYet(f"trace {sent.trace_id} not found")
        ids = _trace_ids(_json(reply, "Tempo"))
        if not ids:
            raise _NotYet(f"trace {sent.trace_id}: Tempo answered with no spans")
        if ids != {sent.trace_id}:
            raise _Wrong(f"asked for trace {sent.trace_id}, Tempo answered with {', '.join(sorted(ids))}")
        return f"trace {sent.trace_id}"

    return probe


def _loki_probe(runtime: Runtime, sent: Sent, since_ns: int) -> Probe:
    query = f'{{service_name="{SERVICE_NAME}"}} | trace_id="{sent.trace_id}"'

    def probe() -> str:
        params = urlencode({"query": query, "start": str(since_ns), "limit": "10", "direction": "backward"})
        data = _json(runtime.http("loki", "http", f"/loki/api/v1/query_range?{params}"), "Loki")
        lines = [value[1] for stream in data.get("data", {}).get("result", []) for value in stream.get("values", [])]
        if not lines:
            raise _NotYet(f"no log line with trace_id {sent.trace_id}")
        if sent.message not in lines:
            raise _Wrong(f"the log line with trace_id {sent.trace_id} is not the one sent: {lines[0][:80]!r}")
        return "log line by trace id"

    return probe


def _prometheus_query(runtime: Runtime, path: str, params: dict[str, str]) -> Any:
    data = _json(runtime.http("prometheus", "http", f"{path}?{urlencode(params)}"), "Prometheus")
    return data.get("data", [])


def _metric_probe(runtime: Runtime, sent: Sent) -> Probe:
    def probe() -> str:
        result = _prometheus_query(
            runtime, "/api/v1/query", {"query": f'{METRIC}_seconds_count{{smoke_id="{sent.smoke_id}"}}'}
        )
        series = result.get("result", []) if isinstance(result, dict) else []
        if not series:
            raise _NotYet(f"{METRIC}_seconds_count{{smoke_id={sent.smoke_id!r}}} not in Prometheus")
        return f"{METRIC}_seconds (job {series[0]['metric'].get('job', '?')})"

    return probe


def _exemplar_probe(runtime: Runtime, sent: Sent, since: float) -> Probe:
    def probe() -> str:
        params = {
            "query": f'{METRIC}_seconds_bucket{{smoke_id="{sent.smoke_id}"}}',
            "start": f"{since - 60:.3f}",
            "end": f"{time.time() + 60:.3f}",
        }
        result = _prometheus_query(runtime, "/api/v1/query_exemplars", params)
        exemplars = [e for series in result or [] for e in series.get("exemplars", [])]
        if not exemplars:
            raise _NotYet("no exemplar on the smoke histogram (is Prometheus' exemplar storage on?)")
        traces = {e.get("labels", {}).get("trace_id", "") for e in exemplars}
        if sent.trace_id not in traces:
            raise _Wrong(f"the exemplar points at trace {', '.join(sorted(traces))}, not at {sent.trace_id}")
        return f"exemplar -> trace {sent.trace_id}"

    return probe


def _grafana_probe(runtime: Runtime, uid: str, headers: dict[str, str]) -> Probe:
    def probe() -> str:
        reply = runtime.http("grafana", "http", f"/api/datasources/uid/{uid}/health", headers=headers)
        try:
            data = json.loads(reply.body)
        except ValueError:
            data = {}
        if reply.status in (401, 403):
            raise _Wrong(f"Grafana refused the credentials (HTTP {reply.status})")
        if reply.status == 200 and str(data.get("status", "")).upper() == "OK":
            return str(data.get("message", "OK"))[:120]
        raise _NotYet(f"datasource {uid}: {data.get('message') or f'HTTP {reply.status}'}")

    return probe


def _poll(probe: Probe, sent_at: float, deadline: float) -> tuple[Result, float | None, str]:
    """Run `probe` every POLL_S until it passes, says the data is wrong, or the deadline passes."""
    last = ["no answer yet"]

    def attempt() -> str | None:
        try:
            return probe()
        except _NotYet as exc:
            last[0] = str(exc)
        except (ConnectionError, TimeoutError, OSError) as exc:
            last[0] = f"no answer: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}"
        return None

    retrying = Retrying(
        stop=stop_after_delay(max(0.0, deadline - time.monotonic())),
        wait=wait_fixed(POLL_S),
        retry=retry_if_result(lambda found: found is None),
    )
    try:
        detail = retrying(attempt)
    except _Wrong as exc:
        return Result.FAILED, None, str(exc)
    except RetryError:
        return Result.FAILED, None, f"not there after {deadline - sent_at:.0f} s: {last[0]}"
    return Result.PASSED, time.monotonic() - sent_at, detail or ""


def smoke(
    settings: Settings,
    runtime: Runtime,
    *,
    timeout: float = 30,
    endpoint: str | None = None,
    grafana_headers: Callable[[], dict[str, str]] | None = None,
) -> SmokeReport:
    """Send the smoke signals and check each backend; disabled components are skipped with why."""
    if not settings.component("otel-collector").enabled:
        raise SmokeError(
            "the Collector is disabled in stack.yaml: there is nothing to send the smoke signals through",
            hint="enable components.otel-collector",
        )
    target = endpoint or runtime.base_url("otel-collector", "otlp_http")
    if target is None:
        raise SmokeError(
            "the Collector's OTLP/HTTP port cannot be reached from this machine",
            hint="give its address with --endpoint http://HOST:4318",
        )
    since_wall = time.time()
    backends = {"traces": "tempo", "logs": "loki", "metrics": "prometheus"}
    signals = frozenset(signal for signal, backend in backends.items() if settings.component(backend).enabled)
    sent = send(target, timeout=min(10.0, timeout), signals=signals)
    deadline = sent.at + timeout
    probes: list[tuple[str, str, Probe | None, str]] = []

    def add(check: str, component: str, make: Callable[[], Probe]) -> None:
        if settings.component(component).enabled:
            probes.append((check, component, make(), ""))
        else:
            probes.append((check, component, None, f"{component} is disabled in stack.yaml"))

    add("trace by id", "tempo", lambda: _tempo_probe(runtime, sent))
    add("log by trace id", "loki", lambda: _loki_probe(runtime, sent, int(since_wall * 1e9) - 60 * 10**9))
    add("metric", "prometheus", lambda: _metric_probe(runtime, sent))
    add("exemplar's trace id", "prometheus", lambda: _exemplar_probe(runtime, sent, since_wall))
    if settings.component("grafana").enabled:
        from stack.components.base import RenderContext
        from stack.components.grafana import datasources

        try:
            headers = grafana_headers() if grafana_headers else {}
        except StackError as exc:
            problem = exc.one_line()

            def refused() -> str:
                raise _Wrong(problem)

            probes.append(("datasources", "grafana", refused, ""))
        else:
            for source in datasources(RenderContext(settings)):
                probe = functools.partial(_grafana_probe, runtime, source["uid"], headers)
                add(f"datasource {source['name']}", "grafana", probe)
    else:
        probes.append(("datasources", "grafana", None, "grafana is disabled in stack.yaml"))

    def run(item: tuple[str, str, Probe | None, str]) -> SmokeCheck:
        check, component, probe, why = item
        if probe is None:
            return SmokeCheck(check, component, Result.SKIPPED, None, why)
        result, seconds, detail = _poll(probe, sent.at, deadline)
        return SmokeCheck(check, component, result, seconds, detail)

    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
        checks = list(pool.map(run, probes))
    return SmokeReport(sent.smoke_id, sent.trace_id, checks)
