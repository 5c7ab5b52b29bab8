"""Native histograms, as OpenTelemetry SDKs' exponential histograms arrive: no `_bucket` or `_count`
series, one histogram series per label set. Every rule and panel that reads a histogram must work
on them too; a real Prometheus (Debian's, with native histograms on as the process runtime starts
it) is given the synthetic data set's histograms in native form by remote write, and every
native-histogram operand of every bundled panel, the HTTP recording rules and the latency SLO
return data from it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.grafana.dashboard_queries import interpolate, or_variants
from stack.rules.slo import error_ratio_expr
from stack.settings import parse_settings
from tests.conftest import require_tool
from tests.grafana.test_dashboard_queries import HISTOGRAMS, MACROS, PROMQL, Loaded, _run, _values
from tests.support.dashboard_series import CATALOG, OTEL_APP
from tests.support.native_histograms import catalog_series, push
from tests.support.realbin import prometheus

# Within the head's window for a fresh TSDB (an hour behind its newest sample).
SECONDS = 50 * 60


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    require_tool("prometheus")
    root = tmp_path_factory.mktemp("native")
    end = int(time.time()) // 60 * 60
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
    with prometheus(config, root / "data", "--enable-feature=native-histograms") as server:
        push(f"{server.url}/api/v1/write", catalog_series(CATALOG, end_s=end, seconds=SECONDS))
        yield Loaded(server, end)


def only_native(expr: str) -> bool:
    """Every series `expr` selects is a histogram in its native form (its base name)."""
    selected = set(re.findall(r"\b([a-zA-Z_:][\w:]*)\{", expr))
    return bool(selected) and selected <= set(HISTOGRAMS)


NATIVE = [
    (dashboard, query) for dashboard, query in PROMQL if any(only_native(text) for text in or_variants(query.text))
]


def test_the_http_and_latency_panels_have_native_operands() -> None:
    panels = {(query.dashboard, query.panel) for _, query in NATIVE}
    assert ("stack-service-overview", "Request rate") in panels
    assert ("stack-service-overview", "Latency p95") in panels
    assert len(panels) >= 15


@pytest.mark.parametrize(("dashboard", "query"), NATIVE, ids=[f"{q.dashboard}:{q.panel}:{q.ref_id}" for _, q in NATIVE])
def test_native_operands_return_data(native: Loaded, dashboard: Any, query: Any) -> None:
    expr = interpolate(query.text, _values(dashboard), MACROS)
    problems = []
    for text in or_variants(expr):
        if not only_native(text):
            continue
        error, finite = _run(native, text, instant=query.instant, legend=query.legend)
        if error:
            problems.append(f"error {error} in: {text}")
        elif not finite:
            problems.append(f"no data for: {text}")
    assert not problems, f"{query.where}:\n" + "\n".join(problems)


def _value(native: Loaded, expr: str) -> list[dict[str, Any]]:
    reply = requests.post(
        f"{native.server.url}/api/v1/query", data={"query": expr, "time": str(native.end)}, timeout=10
    ).json()
    assert reply["status"] == "success", reply
    return list(reply["data"]["result"])


def test_the_http_recording_rules_read_native_histograms(native: Loaded) -> None:
    from stack.rules.packs import render_pack
    from stack.settings import Settings

    pack = Settings().rules.packs()["http"]
    document = yaml.safe_load(render_pack("http", pack.thresholds, "https://example.com"))
    records = {
        rule["record"]: rule["expr"] for group in document["groups"] for rule in group["rules"] if "record" in rule
    }
    # Evaluated as written (the recorded series they refer to are expanded in place).
    requests_expr = records["stack:http_requests:rate5m"]
    errors_expr = records["stack:http_errors:rate5m"]
    by_job = {series["metric"]["job"]: float(series["value"][1]) for series in _value(native, requests_expr)}
    assert by_job.get(OTEL_APP, 0) > 0, by_job
    errors = {series["metric"]["job"]: float(series["value"][1]) for series in _value(native, errors_expr)}
    assert errors.get(OTEL_APP, 0) > 0, errors
    p95 = {
        s["metric"]["job"]: float(s["value"][1])
        for s in _value(native, records["stack:http_request_duration_seconds:p95_rate5m"])
    }
    assert 0 < p95[OTEL_APP] < 10, p95


def test_a_latency_slo_reads_native_histograms(native: Loaded, tmp_path: Path) -> None:
    slo = parse_settings(
        {
            "slos": [
                {
                    "name": "checkout-latency",
                    "objective": 95,
                    "sli": {
                        "kind": "latency",
                        "convention": "otel",
                        "selector": f'job="{OTEL_APP}"',
                        "threshold": 0.25,
                    },
                },
                {
                    "name": "checkout-availability",
                    "objective": 99,
                    "sli": {"kind": "availability", "convention": "otel", "selector": f'job="{OTEL_APP}"'},
                },
            ]
        }
    ).slos
    latency = _value(native, error_ratio_expr(slo[0].sli, "5m"))
    assert len(latency) == 1 and 0 < float(latency[0]["value"][1]) < 1, latency
    availability = _value(native, error_ratio_expr(slo[1].sli, "5m"))
    assert len(availability) == 1 and 0 < float(availability[0]["value"][1]) < 1, availability
