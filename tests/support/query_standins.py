"""Stand-ins for Tempo's and Loki's query APIs, and Grafana's datasource health, for `stack smoke`.

Tempo and Loki cannot run here. Each stand-in is the recording OTLP receiver (tests/support/otlp_sink.py)
with the documented query endpoint on top, answering from what the Collector really sent:
- Tempo: `GET /api/v2/traces/<trace id>` -> `{"trace": <OTLP JSON TracesData>}` (ids base64, as
  Tempo's protobuf JSON has them), 404 when the trace is unknown.
- Loki: `GET /loki/api/v1/query_range?query={service_name="..."} | trace_id="..."` -> streams, for
  the OTLP logs Loki stores (service.name becomes the service_name label; trace_id is structured
  metadata, which a `| trace_id="..."` filter matches).
- Grafana: `GET /api/datasources/uid/<uid>/health` on the fake Grafana, asking the datasource's URL
  as Grafana's health checks do (Prometheus: a query; Loki: labels; Tempo: echo).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tests.support.fake_grafana import FakeGrafana
from tests.support.otlp_sink import Sink, attributes, otlp_sink, value


def _reply(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextlib.contextmanager
def tempo_standin(*, answer_with: str | None = None) -> Iterator[Sink]:
    """`answer_with`: a trace id to answer every query with instead (a Tempo returning the wrong trace)."""
    holder: list[Sink] = []

    def get(handler: BaseHTTPRequestHandler) -> bool:
        path = urlparse(handler.path).path
        if path in ("/ready", "/api/echo"):
            _reply(handler, 200, b"echo" if path == "/api/echo" else b"ready")
            return True
        match = re.fullmatch(r"/api/(?:v2/)?traces/([0-9a-fA-F]+)", path)
        if not match:
            return False
        wanted = (answer_with or match.group(1)).lower()
        data = TracesData()
        if answer_with:  # another app's trace, whatever was asked
            data.resource_spans.add().scope_spans.add().spans.add(
                trace_id=bytes.fromhex(answer_with), span_id=bytes(8), name="other app"
            )
            _reply(handler, 200, {"trace": MessageToDict(data)})
            return True
        for request in list(holder[0].traces):
            for resource_spans in request.resource_spans:
                spans = [s for ss in resource_spans.scope_spans for s in ss.spans if s.trace_id.hex() == wanted]
                if spans:
                    kept = data.resource_spans.add()
                    kept.resource.CopyFrom(resource_spans.resource)
                    kept.scope_spans.add().spans.extend(spans)
        if not data.resource_spans:
            _reply(handler, 404, b"trace not found")
        else:
            _reply(handler, 200, {"trace": MessageToDict(data)})
        return True

    with otlp_sink(http_get=get) as sink:
        holder.append(sink)
        yield sink


_LOKI_QUERY = re.compile(r'\{service_name="(?P<service>[^"]*)"\}\s*\|\s*trace_id="(?P<trace>[0-9a-f]*)"')


@contextlib.contextmanager
def loki_standin(*, drop: bool = False, answer_with: str | None = None) -> Iterator[Sink]:
    """`drop`: accept the logs and store nothing (a Loki that loses them). `answer_with`: a line to
    answer with instead of each matching record's body (the log found by trace id is not the one sent)."""
    holder: list[Sink] = []

    def get(handler: BaseHTTPRequestHandler) -> bool:
        parsed = urlparse(handler.path)
        if parsed.path == "/ready":
            _reply(handler, 200, b"ready")
            return True
        if parsed.path == "/loki/api/v1/labels":
            _reply(handler, 200, {"status": "success", "data": ["service_name"]})
            return True
        if parsed.path != "/loki/api/v1/query_range":
            return False
        query = parse_qs(parsed.query).get("query", [""])[0]
        match = _LOKI_QUERY.fullmatch(query.strip())
        if not match:
            _reply(handler, 400, {"message": f"the stand-in understands only one query shape, not {query!r}"})
            return True
        streams: dict[str, dict[str, Any]] = {}
        requests_seen = [] if drop else list(holder[0].logs)
        for request in requests_seen:
            for resource_logs in request.resource_logs:
                resource = attributes(resource_logs.resource.attributes)
                if resource.get("service.name") != match["service"]:
                    continue
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        if record.trace_id.hex() != match["trace"]:
                            continue
                        stream = streams.setdefault(
                            match["service"], {"stream": {"service_name": match["service"]}, "values": []}
                        )
                        line = answer_with if answer_with is not None else str(value(record.body))
                        stream["values"].append([str(record.time_unix_nano), line])
        _reply(handler, 200, {"status": "success", "data": {"resultType": "streams", "result": list(streams.values())}})
        return True

    with otlp_sink(http_get=get) as sink:
        holder.append(sink)
        yield sink


class GrafanaWithHealth(FakeGrafana):
    """The fake Grafana, with each datasource's health checked against its URL, as Grafana does."""

    _CHECKS = {
        "prometheus": "/api/v1/query?query=1%2B1",
        "loki": "/loki/api/v1/labels",
        "tempo": "/api/echo",
        "alertmanager": "/api/v2/status",
    }

    def _routes(self) -> list[tuple[str, Any]]:
        return [(r"GET /api/datasources/uid/([^/]+)/health", self._health), *super()._routes()]

    def _health(self, uid: str, **_: Any) -> tuple[int, Any]:
        source = self.datasources.get(uid)
        if source is None:
            return 404, {"message": "Data source not found"}
        url = source["url"].rstrip("/") + self._CHECKS.get(source["type"], "/")
        try:
            status = requests.get(url, timeout=2).status_code
        except requests.RequestException as exc:
            return 400, {"status": "ERROR", "message": f"{source['type']}: {type(exc).__name__}"}
        if status >= 400:
            return 400, {"status": "ERROR", "message": f"{source['type']} answered HTTP {status}"}
        return 200, {"status": "OK", "message": "Successfully queried the data source."}
