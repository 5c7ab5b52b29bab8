"""`stack smoke` as a whole: send, then poll every backend in parallel until it has the data."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from stack.errors import StackError
from stack.runtime.base import Runtime
from stack.settings import Settings
from stack.smoke.probes import (
    Probe,
    Wrong,
    exemplar_probe,
    grafana_probe,
    loki_probe,
    metric_probe,
    poll,
    tempo_probe,
)
from stack.smoke.report import Result, SmokeCheck, SmokeError, SmokeReport
from stack.smoke.sender import send


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

    add("trace by id", "tempo", lambda: tempo_probe(runtime, sent))
    add("log by trace id", "loki", lambda: loki_probe(runtime, sent, int(since_wall * 1e9) - 60 * 10**9))
    add("metric", "prometheus", lambda: metric_probe(runtime, sent))
    add("exemplar's trace id", "prometheus", lambda: exemplar_probe(runtime, sent, since_wall))
    if settings.component("grafana").enabled:
        from stack.components.base import RenderContext
        from stack.components.grafana import datasources

        try:
            headers = grafana_headers() if grafana_headers else {}
        except StackError as exc:
            problem = exc.one_line()

            def refused() -> str:
                raise Wrong(problem)

            probes.append(("datasources", "grafana", refused, ""))
        else:
            for source in datasources(RenderContext(settings)):
                probe = functools.partial(grafana_probe, runtime, source["uid"], headers)
                add(f"datasource {source['name']}", "grafana", probe)
    else:
        probes.append(("datasources", "grafana", None, "grafana is disabled in stack.yaml"))

    def run(item: tuple[str, str, Probe | None, str]) -> SmokeCheck:
        check, component, probe, why = item
        if probe is None:
            return SmokeCheck(check, component, Result.SKIPPED, None, why)
        result, seconds, detail = poll(probe, sent.at, deadline)
        return SmokeCheck(check, component, result, seconds, detail)

    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
        checks = list(pool.map(run, probes))
    return SmokeReport(sent.smoke_id, sent.trace_id, checks)
