"""Loki's and Tempo's stand-ins inside a container (tests/support/images.py `loki_standin_image`,
`tempo_standin_image`), for the tests where the Docker path to them is what is tested: their documented
readiness endpoint (`GET /ready`), their metrics endpoint, and their OTLP ingest as the Collector sends
it (Tempo: OTLP/gRPC on 4317, `GET /api/traces/<trace id>` for what arrived; Loki: OTLP/HTTP at
`/otlp/v1/logs`, and its push API). They keep what they receive in memory: nothing of Loki's or
Tempo's storage, querying or metrics generation is imitated.

Run by the image's own Python (Debian's) with grpcio, protobuf and opentelemetry-proto beside it.
Usage: otlp_standin.py loki|tempo
"""

from __future__ import annotations

import gzip
import json
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

PORTS = {"loki": 3100, "tempo": 3200}


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resource_spans: list[Any] = []
        self.log_requests = 0

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            found = [
                rs
                for rs in self.resource_spans
                if any(s.trace_id.hex() == trace_id for ss in rs.scope_spans for s in ss.spans)
            ]
        return [MessageToDict(rs) for rs in found]


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    def Export(self, request: Any, context: Any) -> Any:
        with self.store.lock:
            self.store.resource_spans.extend(request.resource_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def handler(role: str, store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/ready":
                self.reply(200, b"ready\n")
            elif path == "/metrics":
                self.reply(200, b"", "text/plain; version=0.0.4")
            elif role == "tempo" and path.startswith("/api/traces/"):
                batches = store.trace(path.removeprefix("/api/traces/").lower())
                if batches:
                    self.reply(200, json.dumps({"batches": batches}).encode(), "application/json")
                else:
                    self.reply(404, b"trace not found\n")
            else:
                self.reply(404, b"404 page not found\n")

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if role == "loki" and path == "/otlp/v1/logs":
                logs_service_pb2.ExportLogsServiceRequest().ParseFromString(body)
                with store.lock:
                    store.log_requests += 1
                payload = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
                self.reply(200, payload, "application/x-protobuf")
            elif role == "loki" and path == "/loki/api/v1/push":
                self.reply(204, b"")
            else:
                self.reply(404, b"404 page not found\n")

        def reply(self, status: int, payload: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    # The image's entrypoint names the role; compose appends the component's own flags after it.
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in PORTS:
        raise SystemExit("usage: otlp_standin.py loki|tempo [flags of the real component, ignored]")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    store = Store()
    servers = []
    if role == "tempo":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(store), server)
        server.add_insecure_port("0.0.0.0:4317")
        server.start()
        servers.append(server)
    http = ThreadingHTTPServer(("0.0.0.0", PORTS[role]), handler(role, store))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"{role} stand-in: listening on :{PORTS[role]}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    http.shutdown()
    for server in servers:
        server.stop(grace=None)


if __name__ == "__main__":
    main()
