"""A local OTLP receiver that records what it gets: the stand-in for Tempo's and Loki's OTLP ingest.

Tempo takes OTLP over gRPC (the Collector's `otlp_grpc/tempo` exporter) and Loki takes OTLP over
HTTP at `/otlp/v1/logs` (`otlp_http/loki`); this sink speaks both, with the official protobuf
definitions (opentelemetry-proto), so a test asserts on exactly what the Collector sent.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from stack.net.ports import free_port


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    if kind == "array_value":
        return [value(item) for item in any_value.array_value.values]
    return getattr(any_value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    resource: dict[str, Any]
    attributes: dict[str, Any]


@dataclass(frozen=True)
class LogRecord:
    trace_id: str
    span_id: str
    body: Any
    resource: dict[str, Any]
    attributes: dict[str, Any]


@dataclass
class Sink:
    """What arrived, request by request (thread-safe: the servers append from their threads)."""

    traces: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    logs: list[logs_service_pb2.ExportLogsServiceRequest] = field(default_factory=list)
    metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)
    grpc_address: str = ""
    http_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, request: Any) -> None:
        with self._lock:
            getattr(self, kind).append(request)

    def spans(self) -> list[Span]:
        with self._lock:
            requests = list(self.traces)
        return [
            Span(
                span.trace_id.hex(),
                span.span_id.hex(),
                span.name,
                attributes(rs.resource.attributes),
                attributes(span.attributes),
            )
            for request in requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def log_records(self) -> list[LogRecord]:
        with self._lock:
            requests = list(self.logs)
        return [
            LogRecord(
                record.trace_id.hex(),
                record.span_id.hex(),
                value(record.body),
                attributes(rl.resource.attributes),
                attributes(record.attributes),
            )
            for request in requests
            for rl in request.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]

    def wait_for(self, found: Callable[[], list[Any]], timeout: float = 20) -> list[Any]:
        """Poll `found` until it returns something, or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = found()
            if items:
                return items
            time.sleep(0.05)
        raise AssertionError(f"nothing arrived in {timeout} s")


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        self.sink.add("traces", request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        self.sink.add("logs", request)
        return logs_service_pb2.ExportLogsServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        self.sink.add("metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


# OTLP/HTTP paths, with and without Loki's /otlp prefix (or Prometheus 3's /api/v1/otlp).
_HTTP_KINDS = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
}


def _http_handler(sink: Sink, extra: Callable[[BaseHTTPRequestHandler], bool] | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = self.path.split("?")[0].removeprefix("/api/v1/otlp").removeprefix("/otlp")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if path not in _HTTP_KINDS:
                self._reply(404, b"not found")
                return
            kind, request_type, response_type = _HTTP_KINDS[path]
            request = request_type()
            request.ParseFromString(body)
            sink.add(kind, request)
            self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

        def do_GET(self) -> None:
            if extra is None or not extra(self):
                self._reply(404, b"not found")

        def _reply(self, status: int, payload: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def otlp_sink(
    *,
    grpc_port: int | None = None,
    http_port: int | None = None,
    http_get: Callable[[BaseHTTPRequestHandler], bool] | None = None,
) -> Iterator[Sink]:
    """An OTLP receiver over gRPC and HTTP on 127.0.0.1 (free ports unless given).

    `http_get` answers the HTTP server's GET requests (a query API on top of what arrived); it
    returns False for a path it does not know.
    """
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(sink), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(sink), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(sink), server)
    bound = server.add_insecure_port(f"127.0.0.1:{grpc_port or free_port()}")
    server.start()
    http = ThreadingHTTPServer(("127.0.0.1", http_port or 0), _http_handler(sink, http_get))
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    sink.grpc_address = f"127.0.0.1:{bound}"
    sink.http_url = f"http://127.0.0.1:{http.server_address[1]}"
    try:
        yield sink
    finally:
        http.shutdown()
        http.server_close()
        server.stop(grace=None)
