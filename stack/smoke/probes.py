"""One probe per backend, each asking whether what `stack smoke` sent has arrived, and the polling."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from stack.runtime.base import HttpReply, Runtime
from stack.smoke.report import Result
from stack.smoke.sender import METRIC, SERVICE_NAME, Sent

POLL_S = 0.05


class NotYet(Exception):
    """The backend answered, without the data yet (kept as the reason if the timeout passes)."""


class Wrong(Exception):
    """The backend answered with something else than what was sent: no point in waiting."""


def _json(reply: HttpReply, what: str) -> Any:
    if reply.status != 200:
        raise NotYet(f"{what} answered HTTP {reply.status}: {reply.text()[:200].strip()}")
    try:
        return json.loads(reply.body)
    except ValueError:
        raise NotYet(f"{what} answered something that is not JSON") from None


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


Probe = Callable[[], str]  # returns a detail on success; raises NotYet or Wrong


def tempo_probe(runtime: Runtime, sent: Sent) -> Probe:
    def probe() -> str:
        reply = runtime.http("tempo", "http", f"/api/v2/traces/{sent.trace_id}")
        if reply.status == 404:
            raise NotYet(f"trace {sent.trace_id} not found")
        ids = _trace_ids(_json(reply, "Tempo"))
        if not ids:
            raise NotYet(f"trace {sent.trace_id}: Tempo answered with no spans")
        if ids != {sent.trace_id}:
            raise Wrong(f"asked for trace {sent.trace_id}, Tempo answered with {', '.join(sorted(ids))}")
        return f"trace {sent.trace_id}"

    return probe


def loki_probe(runtime: Runtime, sent: Sent, since_ns: int) -> Probe:
    query = f'{{service_name="{SERVICE_NAME}"}} | trace_id="{sent.trace_id}"'

    def probe() -> str:
        params = urlencode({"query": query, "start": str(since_ns), "limit": "10", "direction": "backward"})
        data = _json(runtime.http("loki", "http", f"/loki/api/v1/query_range?{params}"), "Loki")
        lines = [value[1] for stream in data.get("data", {}).get("result", []) for value in stream.get("values", [])]
        if not lines:
            raise NotYet(f"no log line with trace_id {sent.trace_id}")
        if sent.message not in lines:
            raise Wrong(f"the log line with trace_id {sent.trace_id} is not the one sent: {lines[0][:80]!r}")
        return "log line by trace id"

    return probe


def _prometheus_query(runtime: Runtime, path: str, params: dict[str, str]) -> Any:
    data = _json(runtime.http("prometheus", "http", f"{path}?{urlencode(params)}"), "Prometheus")
    return data.get("data", [])


def metric_probe(runtime: Runtime, sent: Sent) -> Probe:
    def probe() -> str:
        result = _prometheus_query(
            runtime, "/api/v1/query", {"query": f'{METRIC}_seconds_count{{smoke_id="{sent.smoke_id}"}}'}
        )
        series = result.get("result", []) if isinstance(result, dict) else []
        if not series:
            raise NotYet(f"{METRIC}_seconds_count{{smoke_id={sent.smoke_id!r}}} not in Prometheus")
        return f"{METRIC}_seconds (job {series[0]['metric'].get('job', '?')})"

    return probe


def exemplar_probe(runtime: Runtime, sent: Sent, since: float) -> Probe:
    def probe() -> str:
        params = {
            "query": f'{METRIC}_seconds_bucket{{smoke_id="{sent.smoke_id}"}}',
            "start": f"{since - 60:.3f}",
            "end": f"{time.time() + 60:.3f}",
        }
        result = _prometheus_query(runtime, "/api/v1/query_exemplars", params)
        exemplars = [e for series in result or [] for e in series.get("exemplars", [])]
        if not exemplars:
            raise NotYet("no exemplar on the smoke histogram (is Prometheus' exemplar storage on?)")
        traces = {e.get("labels", {}).get("trace_id", "") for e in exemplars}
        if sent.trace_id not in traces:
            raise Wrong(f"the exemplar points at trace {', '.join(sorted(traces))}, not at {sent.trace_id}")
        return f"exemplar -> trace {sent.trace_id}"

    return probe


def grafana_probe(runtime: Runtime, uid: str, headers: dict[str, str]) -> Probe:
    def probe() -> str:
        reply = runtime.http("grafana", "http", f"/api/datasources/uid/{uid}/health", headers=headers)
        try:
            data = json.loads(reply.body)
        except ValueError:
            data = {}
        if reply.status in (401, 403):
            raise Wrong(f"Grafana refused the credentials (HTTP {reply.status})")
        if reply.status == 200 and str(data.get("status", "")).upper() == "OK":
            return str(data.get("message", "OK"))[:120]
        raise NotYet(f"datasource {uid}: {data.get('message') or f'HTTP {reply.status}'}")

    return probe


def poll(probe: Probe, sent_at: float, deadline: float) -> tuple[Result, float | None, str]:
    """Run `probe` every POLL_S until it passes, says the data is wrong, or the deadline passes."""
    last = ["no answer yet"]

    def attempt() -> str | None:
        try:
            return probe()
        except NotYet as exc:
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
    except Wrong as exc:
        return Result.FAILED, None, str(exc)
    except RetryError:
        return Result.FAILED, None, f"not there after {deadline - sent_at:.0f} s: {last[0]}"
    return Result.PASSED, time.monotonic() - sent_at, detail or ""
