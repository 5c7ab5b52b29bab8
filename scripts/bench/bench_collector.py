"""The real Collector (the stack's build) on the config the stack renders, into a real Prometheus.

Measures, on this machine:
  1. the warm rebuild of otelcol-contrib (Go caches full; `--cold` also times a build with empty Go
     caches in a scratch directory: minutes, and it downloads every module again);
  2. OTLP/HTTP ingest: metric points per second the Collector accepts, and per second Prometheus
     appends, from several senders posting protobuf batches for a fixed time; by remote write into
     a Prometheus 2.x (Debian's), by Prometheus' own OTLP receiver into a 3.x first on PATH, as the
     stack renders for each;
  3. the Collector's memory (RSS): idle after start, and the peak under that load;
  4. `stack smoke`'s metric latency (send -> queryable in Prometheus), p50 and p95 over BENCH_RUNS
     sends, against the seeds' target of 100 ms at p95.
Skips (exit 0, saying why) where the Collector cannot be built or Prometheus is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from stack import collector_build
from stack.settings import parse_settings
from tests.support import realbin, realcollector

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "10"))
SENDERS = 4
SERIES_PER_REQUEST = 50
POINTS_PER_SERIES = 10  # one request: 500 points
SMOKE_TARGET_P95_MS = 100.0


def _kv(key: str, text: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=text))


def payload(sender: int, batch: int) -> bytes:
    """One OTLP request: SERIES_PER_REQUEST gauges of POINTS_PER_SERIES points each, new timestamps."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend([_kv("service.name", f"bench-{sender}")])
    scope = resource_metrics.scope_metrics.add()
    now = time.time_ns()
    for series in range(SERIES_PER_REQUEST):
        metric = scope.metrics.add(name="bench_load")
        for point in range(POINTS_PER_SERIES):
            data_point = metric.gauge.data_points.add(
                time_unix_nano=now - (POINTS_PER_SERIES - point) * 1_000_000 + batch, as_double=float(point)
            )
            data_point.attributes.extend([_kv("series", str(series))])
    return request.SerializeToString()


def counter(url: str, name: str) -> float:
    """The sum of every series of `name` on a /metrics page."""
    total = 0.0
    for line in requests.get(url, timeout=5).text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def prometheus_value(url: str, query: str) -> float:
    result = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def build_times(cold: bool) -> None:
    started = time.perf_counter()
    result = collector_build.build(force=True)
    print(f"build (warm Go caches): {time.perf_counter() - started:.1f} s -> {result.path}")
    if not cold:
        print("build (cold Go caches): not measured (pass --cold; the last measure is in docs/collector.md)")
        return
    scratch = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    saved = {key: os.environ.get(key) for key in ("GOMODCACHE", "GOCACHE", "XDG_CACHE_HOME")}
    os.environ.update(GOMODCACHE=str(scratch / "mod"), GOCACHE=str(scratch / "cache"), XDG_CACHE_HOME=str(scratch))
    try:
        started = time.perf_counter()
        collector_build.build(force=True)
        print(f"build (cold Go caches): {time.perf_counter() - started:.1f} s")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)


def ingest(collector: realcollector.RunningCollector, prometheus: realbin.Server) -> None:
    process = psutil.Process(collector.server.process.pid)
    idle = process.memory_info().rss
    accepted_before = counter(collector.metrics_url, "otelcol_receiver_accepted_metric_points_total")
    appended_query = "prometheus_tsdb_head_samples_appended_total"
    requests.get(f"{prometheus.url}/-/ready", timeout=5)
    appended_before = counter(f"{prometheus.url}/metrics", appended_query)
    url = f"{collector.otlp_http}/v1/metrics"
    stop_at = time.monotonic() + LOAD_SECONDS
    sent = [0] * SENDERS
    refused = [0] * SENDERS
    peak = [idle]

    def sender(index: int) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/x-protobuf"}
        batch = 0
        while time.monotonic() < stop_at:
            reply = session.post(url, data=payload(index, batch), headers=headers, timeout=10)
            batch += 1
            if reply.status_code == 200:
                sent[index] += SERIES_PER_REQUEST * POINTS_PER_SERIES
            else:
                refused[index] += 1

    def watch() -> None:
        while time.monotonic() < stop_at + 3:
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.1)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    watcher = threading.Thread(target=watch)
    started = time.monotonic()
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    watcher.join()
    time.sleep(2)  # what is queued reaches Prometheus
    accepted = counter(collector.metrics_url, "otelcol_receiver_accepted_metric_points_total") - accepted_before
    appended = counter(f"{prometheus.url}/metrics", appended_query) - appended_before
    path = "its OTLP receiver" if realbin.is_3x() else "remote write"
    print(f"ingest into Prometheus {realbin.prometheus_version()} by {path}:")
    print(f"  {SENDERS} senders x {LOAD_SECONDS:.0f} s, {sum(sent)} points sent, {sum(refused)} requests refused")
    print(f"  accepted by the Collector: {accepted / elapsed:,.0f} points/s")
    print(f"  appended by Prometheus:    {appended / elapsed:,.0f} samples/s (ratio {appended / max(accepted, 1):.2f})")
    print(f"collector memory: idle {idle / 2**20:.0f} MiB, peak under load {peak[0] / 2**20:.0f} MiB")


def smoke_latency(collector: realcollector.RunningCollector, prometheus: realbin.Server) -> None:
    from stack.smoke import METRIC, send

    latencies = []
    for _ in range(RUNS):
        sent = send(collector.otlp_http, signals=frozenset({"metrics"}))
        query = f'{METRIC}_seconds_count{{smoke_id="{sent.smoke_id}"}}'
        deadline = sent.at + 10
        while time.monotonic() < deadline:
            if prometheus_value(prometheus.url, query):
                latencies.append((time.monotonic() - sent.at) * 1000)
                break
            time.sleep(0.002)
    if len(latencies) < RUNS:
        print(f"smoke metric latency: {RUNS - len(latencies)} of {RUNS} sends never arrived")
    quantiles = statistics.quantiles(latencies, n=20)
    p50, p95 = statistics.median(latencies), quantiles[18]
    print(
        f"smoke metric latency over {len(latencies)} sends: p50 {p50:.0f} ms, p95 {p95:.0f} ms "
        f"(target p95 < {SMOKE_TARGET_P95_MS:.0f} ms: {p95 / SMOKE_TARGET_P95_MS:.2f} of it)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time a build with empty Go caches")
    args, _ = parser.parse_known_args()
    if shutil.which("prometheus") is None:
        print("skipped: Debian's prometheus is not installed (`make test-deps`)")
        return 0
    if collector_build.built_binary() is None and shutil.which("go") is None:
        print("skipped: the Collector is not built and Go is not on PATH")
        return 0
    build_times(args.cold)
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        work = Path(tmp)
        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}, **realbin.otlp_config()}))
        with realbin.prometheus(config, work / "data") as prometheus:
            ports = realcollector.Ports.free(prometheus=prometheus.port)
            settings = parse_settings({"components": {"tempo": {"enabled": False}, "loki": {"enabled": False}}})
            with realcollector.run(realcollector.local_config(settings, ports), ports, work) as collector:
                time.sleep(1)
                smoke_latency(collector, prometheus)
                ingest(collector, prometheus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
