"""Signals through the real Collector, on the config the stack renders.

Metrics: an app instrumented with the OpenTelemetry SDK -> the real Collector -> a real Prometheus
(Debian's 2.x by remote write; a 3.x first on PATH by its own OTLP receiver, as the stack renders).
Traces and logs: the real Collector -> a recording OTLP receiver standing in
for Tempo (OTLP/gRPC) and Loki (OTLP/HTTP at /otlp), which cannot run here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import yaml

from stack.settings import parse_settings
from tests.support import otel_app, realbin, realcollector
from tests.support.otlp_sink import Sink, otlp_sink

RESOURCE = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "checkout-1",
    "service.version": "1.4.2",
    "deployment.environment.name": "staging",
    "team.owner": "payments",  # not a label: it stays on target_info
}


@dataclass
class Pipeline:
    collector: realcollector.RunningCollector
    prometheus: realbin.Server
    sink: Sink

    def query(self, promql: str) -> list[dict[str, Any]]:
        reply = requests.get(f"{self.prometheus.url}/api/v1/query", params={"query": promql}, timeout=5)
        reply.raise_for_status()
        return reply.json()["data"]["result"]

    def wait_query(self, promql: str, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"{promql} found nothing in Prometheus after {timeout} s")

    def endpoint(self, protocol: otel_app.Protocol) -> str:
        return self.collector.otlp_http if protocol == "http" else self.collector.otlp_grpc


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("signals")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, **realbin.otlp_config()}))
    with realbin.prometheus(config, workdir / "data") as prometheus, otlp_sink() as sink:
        ports = realcollector.Ports.free(
            prometheus=prometheus.port,
            tempo_grpc=int(sink.grpc_address.rsplit(":", 1)[1]),
            loki_http=int(sink.http_url.rsplit(":", 1)[1]),
        )
        settings = parse_settings({})
        with realcollector.run(realcollector.local_config(settings, ports), ports, workdir) as collector:
            yield Pipeline(collector, prometheus, sink)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sdk_metrics_reach_prometheus_with_the_labels_rules_expect(pipeline: Pipeline, protocol: str) -> None:
    name = f"orders_{protocol}"

    def count(meter: Any) -> None:
        meter.create_counter(f"{name}.placed", unit="1").add(5, {"payment.method": "card"})

    otel_app.record_metrics(protocol, pipeline.endpoint(protocol), RESOURCE, [count])  # type: ignore[arg-type]
    [series] = pipeline.wait_query(f"{name}_placed_total")
    labels = series["metric"]
    # job is service.namespace/service.name, instance is service.instance.id (what rules group by).
    assert labels["job"] == "shop/checkout"
    assert labels["instance"] == "checkout-1"
    assert labels["payment_method"] == "card"
    assert labels["service_name"] == "checkout"
    assert labels["service_version"] == "1.4.2"
    assert labels["deployment_environment_name"] == "staging"
    assert "team_owner" not in labels
    assert float(series["value"][1]) == 5
    [info] = pipeline.wait_query('target_info{job="shop/checkout"}')
    assert info["metric"]["team_owner"] == "payments"


def test_delta_sums_arrive_as_cumulative(pipeline: Pipeline) -> None:
    def add(amount: int) -> Any:
        return lambda meter: meter.create_counter("refunds.issued").add(amount)

    otel_app.record_metrics("http", pipeline.collector.otlp_http, RESOURCE, [add(3), add(4)], delta=True)
    deadline = time.monotonic() + 20
    value = None
    while time.monotonic() < deadline:
        result = pipeline.query('refunds_issued_total{job="shop/checkout"}')
        value = float(result[0]["value"][1]) if result else None
        if value == 7:
            break
        time.sleep(0.1)
    assert value == 7, f"the two deltas (3, 4) should add up to 7, Prometheus has {value}"


def test_a_histogram_keeps_its_buckets(pipeline: Pipeline) -> None:
    def observe(meter: Any) -> None:
        histogram = meter.create_histogram(
            "checkout.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 0.5, 1.0]
        )
        for seconds in (0.05, 0.3, 0.3, 2.0):
            histogram.record(seconds)

    otel_app.record_metrics("grpc", pipeline.collector.otlp_grpc, RESOURCE, [observe])
    buckets = pipeline.wait_query('checkout_duration_seconds_bucket{job="shop/checkout"}')
    counts = {series["metric"]["le"]: float(series["value"][1]) for series in buckets}
    assert counts == {"0.1": 1, "0.5": 3, "1": 3, "+Inf": 4}
    [total] = pipeline.wait_query('checkout_duration_seconds_count{job="shop/checkout"}')
    assert float(total["value"][1]) == 4
    # The query the latency rules and panels use works on it.
    [quantile] = pipeline.wait_query(
        'histogram_quantile(0.5, sum by (le) (checkout_duration_seconds_bucket{job="shop/checkout"}))'
    )
    assert 0.1 < float(quantile["value"][1]) <= 0.5


def test_traces_and_logs_leave_in_the_shape_tempo_and_loki_take(pipeline: Pipeline) -> None:
    """Tempo and Loki stand-in: the recording OTLP receiver (gRPC for Tempo, HTTP /otlp for Loki)."""
    message = f"card declined {time.monotonic_ns()}"
    trace_id = otel_app.trace_with_log(pipeline.collector.otlp_http, RESOURCE, message)
    spans = pipeline.sink.wait_for(lambda: [s for s in pipeline.sink.spans() if s.trace_id == trace_id])
    if len(spans) < 2:
        time.sleep(0.5)
        spans = [s for s in pipeline.sink.spans() if s.trace_id == trace_id]
    assert {span.name for span in spans} == {"GET /checkout", "charge card"}
    assert spans[0].resource["service.name"] == "checkout"
    assert spans[0].resource["service.namespace"] == "shop"
    assert spans[0].resource["team.owner"] == "payments"
    [record] = pipeline.sink.wait_for(lambda: [r for r in pipeline.sink.log_records() if r.body == message])
    assert record.trace_id == trace_id
    assert record.span_id in {span.span_id for span in spans}
    assert record.resource["service.name"] == "checkout"
    assert record.resource["deployment.environment.name"] == "staging"
    assert record.attributes["order.id"] == "o-17"


def test_the_collectors_own_metrics_count_what_it_accepted(pipeline: Pipeline) -> None:
    text = requests.get(pipeline.collector.metrics_url, timeout=5).text
    assert "otelcol_receiver_accepted_metric_points_total" in text
    assert "otelcol_exporter_sent_metric_points_total" in text
