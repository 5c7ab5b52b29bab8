"""Every query of every bundled dashboard, run against a real Prometheus holding the synthetic data
set (tests/support/dashboard_series.py), or checked for the labels and datasource it needs (LogQL, TraceQL).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from stack.grafana.dashboard_queries import Query, interpolate, or_variants, queries, variable_names
from stack.grafana.dashboards import Dashboard, load_dashboards
from tests.conftest import require_tool
from tests.support.dashboard_series import CATALOG, build_tsdb
from tests.support.metrics_catalog import (
    BUILTIN_METRICS,
    DOCS_CATALOG,
    UNIVERSAL_LABELS,
    catalog_labels,
    labels_used,
    metrics_read,
)
from tests.support.querycheck import syntax_errors
from tests.support.realbin import Server, prometheus

# The rate interval Grafana would pick for the synthetic 30 s spacing, and the range panels draw.
MACROS = {
    "__rate_interval": "2m",
    "__interval": "1m",
    "__auto": "2m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}
RANGE_SECONDS = 3600
STEP_SECONDS = 60

# Index labels Loki 3.x makes from OTLP resource attributes (dots become underscores), and the
# structured metadata a pipeline stage can filter on (level detection, trace correlation).
LOKI_STREAM_LABELS = {
    "service_name",
    "service_namespace",
    "service_instance_id",
    "deployment_environment",
    "container_name",
}
LOKI_METADATA = {
    "detected_level",
    "severity_text",
    "trace_id",
    "span_id",
    # OTLP log attributes of exceptions (semantic conventions), and resource/log attributes the
    # errors pack groups by: Loki keeps them as structured metadata, dots made underscores.
    "exception_type",
    "exception_message",
    "service_version",
    "http_route",
    # deployment.environment's current name (Faro 2, newer SDKs): a label to group by, whether
    # Loki's otlp_config makes it an index label or structured metadata.
    "deployment_environment_name",
    # What the Faro web SDK's OTLP transport sends from browsers (docs/metrics.md, "Browser errors").
    "telemetry_sdk_language",
    "browser_name",
    "measurement_type",
    "measurement_name",
}
# Labels a query makes itself (label_format) and then filters or groups on.
LOKI_DERIVED = {"fingerprint"}
TRACEQL_INTRINSICS = {"status", "name", "duration", "kind", "rootName", "rootServiceName", "traceDuration"}
TRACEQL_ATTRIBUTES = {
    "resource.service.name",
    "span.http.route",
    "span.http.response.status_code",
    "span.http.request.method",
    "span.gen_ai.request.model",
    "span.gen_ai.system",
}


def _all_queries() -> list[tuple[Dashboard, Query]]:
    return [(dashboard, query) for dashboard in load_dashboards() for query in queries(dashboard.model)]


ALL = _all_queries()


def _values(dashboard: Dashboard) -> dict[str, str]:
    """Every template variable at its "All" value (`.+`), as Grafana sends it in a regex matcher."""
    found = {}
    for variable in dashboard.model.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            found[variable["name"]] = variable.get("allValue") or ".+"
        elif variable.get("type") in ("textbox", "constant", "custom"):
            found[variable["name"]] = str((variable.get("current") or {}).get("value", variable.get("query", "")))
        elif variable.get("type") == "datasource":
            found[variable["name"]] = variable["current"]["value"]
    return found


@dataclass
class Loaded:
    server: Server
    end: int


@pytest.fixture(scope="module")
def loaded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    require_tool("promtool")
    root = tmp_path_factory.mktemp("dashboards")
    end = int(time.time()) // 60 * 60
    build_tsdb(root / "data", end, root)
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
    with prometheus(config, root / "data") as server:
        yield Loaded(server, end)


def _run(loaded: Loaded, expr: str, *, instant: bool, legend: str = "") -> tuple[str | None, int]:
    """(error, number of finite values) of `expr` at the end of the data set; an error too when a
    label the legend shows (`{{label}}`) is on none of the series."""
    if instant:
        url, params = "/api/v1/query", {"query": expr, "time": str(loaded.end)}
    else:
        params = {
            "query": expr,
            "start": str(loaded.end - RANGE_SECONDS),
            "end": str(loaded.end),
            "step": str(STEP_SECONDS),
        }
        url = "/api/v1/query_range"
    reply = requests.post(loaded.server.url + url, data=params, timeout=30).json()
    if reply.get("status") != "success":
        return f"{reply.get('errorType')}: {reply.get('error')}", 0
    if reply.get("warnings"):
        return f"warnings: {reply['warnings']}", 0
    data = reply["data"]
    values: list[Any] = []
    if data["resultType"] == "matrix":
        values = [value for series in data["result"] for _, value in series["values"]]
    elif data["resultType"] == "vector":
        values = [series["value"][1] for series in data["result"]]
    elif data["resultType"] == "scalar":
        values = [data["result"][1]]
    shown = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    present = {name for series in data["result"] if isinstance(series, dict) for name in series.get("metric", {})}
    if data["result"] and shown - present:
        return f"legend label(s) {sorted(shown - present)} on no series (labels: {sorted(present)})", 0
    return None, sum(1 for value in values if math.isfinite(float(value)))


PROMQL = [(d, q) for d, q in ALL if q.kind == "promql"]
HISTOGRAMS = sorted(m.name for m in CATALOG if m.type == "histogram")
# A histogram's base name with a selector right after it: only its native form has such a series.
_NATIVE = re.compile(r"\b(?:" + "|".join(map(re.escape, HISTOGRAMS)) + r")\{")


def reads_native_histograms(expr: str) -> bool:
    return bool(_NATIVE.search(expr))


@pytest.mark.parametrize(("dashboard", "query"), PROMQL, ids=[f"{q.dashboard}:{q.panel}:{q.ref_id}" for _, q in PROMQL])
def test_promql_returns_data_on_real_prometheus(loaded_prometheus: Loaded, dashboard: Dashboard, query: Query) -> None:
    expr = interpolate(query.text, _values(dashboard), MACROS)
    assert not variable_names(expr) - {"1"}, f"{query.where}: unresolved variables in {expr}"
    problems = []
    for text in [expr, *or_variants(expr)]:
        error, finite = _run(loaded_prometheus, text, instant=query.instant, legend=query.legend)
        if error:
            problems.append(f"error {error} in: {text}")
        elif not finite and not reads_native_histograms(text):
            # A native-histogram operand has its data in tests/rules/test_native_histograms.py.
            problems.append(f"no data for: {text}")
    assert not problems, f"{query.where}:\n" + "\n".join(problems)


VARIABLES = [(d, q) for d, q in ALL if q.kind == "variable" and q.datasource_type == "prometheus"]


@pytest.mark.parametrize(("dashboard", "query"), VARIABLES, ids=[f"{q.dashboard}:{q.panel}" for _, q in VARIABLES])
def test_variable_queries_list_values(loaded_prometheus: Loaded, dashboard: Dashboard, query: Query) -> None:
    text = query.text.strip()
    if text.startswith("query_result("):
        variable = next(v for v in dashboard.model["templating"]["list"] if f"${v['name']}" == query.panel)
        expr = interpolate(text.removeprefix("query_result(").removesuffix(")"), _values(dashboard), MACROS)
        for operand in [expr, *or_variants(expr)]:
            error, finite = _run(loaded_prometheus, operand, instant=True)
            assert not error and finite, f"{query.where}: {error or 'no data'} for {operand}"
        reply = requests.post(
            f"{loaded_prometheus.server.url}/api/v1/query", data={"query": expr, "time": loaded_prometheus.end}
        ).json()
        # Grafana applies the regex to each result line, `{labels} value timestamp`.
        pattern = variable["regex"].strip("/")
        found = {
            m.group(1)
            for series in reply["data"]["result"]
            if (m := re.search(pattern, "{" + ",".join(f'{k}="{v}"' for k, v in series["metric"].items()) + "}"))
        }
        assert {"checkout-api", "node-api"} <= found, f"{query.where}: {found}"
        return
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", text)
    assert match, f"{query.where}: expected label_values(<selector>, <label>), got {query.text}"
    selector, label = match.groups()
    reply = requests.get(
        f"{loaded_prometheus.server.url}/api/v1/label/{label}/values",
        params={"match[]": interpolate(selector, _values(dashboard), MACROS)},
        timeout=10,
    ).json()
    assert reply["status"] == "success", f"{query.where}: {reply}"
    assert reply["data"], f"{query.where}: {query.text} lists no values"


EXEMPLARS = [(d, q) for d, q in PROMQL if q.exemplar]


def test_exemplar_queries_are_accepted(loaded_prometheus: Loaded) -> None:
    assert EXEMPLARS, "the latency panels ask for exemplars (they open the trace)"
    for dashboard, query in EXEMPLARS:
        reply = requests.post(
            f"{loaded_prometheus.server.url}/api/v1/query_exemplars",
            data={
                "query": interpolate(query.text, _values(dashboard), MACROS),
                "start": str(loaded_prometheus.end - RANGE_SECONDS),
                "end": str(loaded_prometheus.end),
            },
            timeout=10,
        ).json()
        assert reply["status"] == "success", f"{query.where}: {reply}"


# --- LogQL and TraceQL: no Loki or Tempo binary here, so check what they need ---------------------

LOGQL = [(d, q) for d, q in ALL if q.kind == "logql"]
TRACEQL = [(d, q) for d, q in ALL if q.kind == "traceql"]


def _balanced(text: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', text):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def _never_empty(op: str, value: str) -> bool:
    """Whether a stream matcher cannot match the empty string (Loki needs one such matcher)."""
    if op == "=":
        return bool(value)
    return op == "=~" and re.fullmatch(value, "") is None


def test_there_are_log_and_trace_queries() -> None:
    assert LOGQL and TRACEQL


@pytest.mark.parametrize(("dashboard", "query"), LOGQL, ids=[f"{q.dashboard}:{q.panel}:{q.ref_id}" for _, q in LOGQL])
def test_logql_uses_loki_and_known_labels(dashboard: Dashboard, query: Query) -> None:
    assert (query.datasource_type, query.datasource_uid) == ("loki", "loki"), query.where
    expr = interpolate(query.text, _values(dashboard), MACROS)
    assert _balanced(expr), f"{query.where}: unbalanced brackets in {expr}"
    # Templates (label_format, line_format) are backtick strings with braces of their own.
    selectors = re.findall(r"\{([^{}]*)\}", re.sub(r"`[^`]*`", "``", expr))
    assert selectors, f"{query.where}: no stream selector in {expr}"
    for selector in selectors:
        matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', selector)
        assert matchers, f"{query.where}: empty stream selector"
        assert {name for name, _, _ in matchers} <= LOKI_STREAM_LABELS, f"{query.where}: {selector}"
        # Loki refuses a selector whose every matcher can match the empty string.
        assert any(_never_empty(op, value) for _, op, value in matchers), f"{query.where}: {selector}"
    known = LOKI_STREAM_LABELS | LOKI_METADATA | LOKI_DERIVED
    filtered = set(re.findall(r"\|\s*(\w+)\s*(?:=~|!~|!=|==|=|>=|<=|>|<)", expr))
    assert filtered <= known, f"{query.where}: unknown label in {expr}"
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        names = {name.strip() for name in group.split(",") if name.strip()}
        assert names <= known, f"{query.where}: grouping by {names}"
    if re.match(r"\s*\w+\s*(by\s*\([^)]*\)\s*)?\(", expr):
        assert re.search(r"\[\d+[smhd]\]", expr), f"{query.where}: a metric query needs a [range]"


@pytest.mark.parametrize(
    ("dashboard", "query"), TRACEQL, ids=[f"{q.dashboard}:{q.panel}:{q.ref_id}" for _, q in TRACEQL]
)
def test_traceql_uses_tempo_and_known_attributes(dashboard: Dashboard, query: Query) -> None:
    assert (query.datasource_type, query.datasource_uid) == ("tempo", "tempo"), query.where
    text = interpolate(query.text, _values(dashboard), MACROS)
    assert _balanced(text) and text.strip().startswith("{"), f"{query.where}: {text}"
    attributes = set(re.findall(r"\b((?:resource|span)\.[\w.]+)", text))
    assert attributes <= TRACEQL_ATTRIBUTES, f"{query.where}: unknown attributes {attributes - TRACEQL_ATTRIBUTES}"
    bare = set(re.findall(r"(?:[{&|(]\s*)([a-zA-Z]\w*)\s*(?:=~|!=|!~|=|>|<)", text))
    assert bare <= TRACEQL_INTRINSICS, f"{query.where}: unknown intrinsics {bare - TRACEQL_INTRINSICS}"


def test_logql_and_traceql_parse_with_grafanas_grammars() -> None:
    """Every LogQL and TraceQL query, variables and macros filled in, through the Lezer grammars of
    Grafana's query editors (tests/support/querycheck.py says why not Loki's or Tempo's own parser)."""
    checked = [
        (query, "logql" if query.kind == "logql" else "traceql", interpolate(query.text, _values(dashboard), MACROS))
        for dashboard, query in LOGQL + TRACEQL
    ]
    errors = syntax_errors([(language, text) for _, language, text in checked])
    pairs = zip(checked, errors, strict=True)
    failed = [f"{query.where}: {error} in {text}" for (query, _, text), error in pairs if error]
    assert not failed, "\n".join(failed)


def test_the_grammars_catch_a_broken_query() -> None:
    errors = syntax_errors(
        [
            ("logql", 'sum by (service_name) count_over_time({service_name="a"} [5m])'),
            ("logql", '{service_name="a"} | exception_type != '),
            ("traceql", "{ status = = error }"),
            ("logql", '{service_name="a"} | exception_type != ""'),
            ("traceql", '{ event:name = "exception" }'),
        ]
    )
    assert [error is not None for error in errors] == [True, True, True, False, False], errors
    assert errors[2] is not None and errors[2].startswith("syntax error at ")


SERVICE_MAPS = [(d, q) for d, q in ALL if q.kind == "servicemap"]


def test_service_map_reads_the_service_graph_metrics_from_prometheus() -> None:
    """Tempo draws the service map from Prometheus (its serviceMap datasource): those metrics must
    be what a panel queries too, so the synthetic data proves them."""
    from stack.resources import bundled
    from stack.yamlio import load_file

    assert SERVICE_MAPS
    sources = load_file(bundled("provisioning") / "datasources" / "datasources.yaml").data["datasources"]
    tempo = next(source for source in sources if source["uid"] == "tempo")
    assert tempo["jsonData"]["serviceMap"]["datasourceUid"] == "prometheus"
    for _, query in SERVICE_MAPS:
        assert (query.datasource_type, query.datasource_uid) == ("tempo", "tempo"), query.where
    promql = " ".join(q.text for _, q in PROMQL)
    assert "traces_service_graph_request_total" in promql


# --- the synthetic data set is the list of what the packs need; keep it honest ------------------


def test_every_catalog_metric_is_used_by_a_panel() -> None:
    texts = " ".join(q.text for _, q in ALL)
    unused = [m.name for m in CATALOG if m.name.removesuffix("_bytes") not in texts]
    assert not unused, f"metrics in tests/support/dashboard_series.py that no panel queries: {unused}"


def test_packs_in_the_catalog_exist() -> None:
    packs = {dashboard.source.parent.name for dashboard in load_dashboards()}
    assert {metric.pack for metric in CATALOG} <= packs


# The packs app teams feed (the others read the components' own metrics or Tempo's).
APP_PACKS = {"service-overview", "queues", "realtime", "llm", "workflows", "security", "slos"}


def test_docs_metrics_catalog_names_what_the_panels_query() -> None:
    """docs/metrics.md is the contract: every app-facing metric of the synthetic data, with every
    label the synthetic series carry, is in it."""
    catalog = catalog_labels(DOCS_CATALOG.read_text(encoding="utf-8"))
    app = [m for m in CATALOG if m.pack in APP_PACKS]
    missing = sorted({m.name for m in app if m.name not in catalog})
    assert not missing, f"metrics the dashboards query that docs/metrics.md does not list: {missing}"
    undocumented = sorted(
        {f"{m.name}{{{label}}}" for m in app for label in m.labels if label not in catalog[m.name] | UNIVERSAL_LABELS}
    )
    assert not undocumented, f"labels of the synthetic series that docs/metrics.md does not list: {undocumented}"


def test_app_panels_use_only_catalogued_labels() -> None:
    """A panel of an app pack groups, filters and joins only on labels docs/metrics.md lists for the
    metrics it reads (or that it makes itself with label_replace)."""
    catalog = catalog_labels(DOCS_CATALOG.read_text(encoding="utf-8"))
    problems = []
    for dashboard, query in PROMQL:
        if dashboard.source.parent.name not in APP_PACKS:
            continue
        read = metrics_read(query.text, catalog)
        assert read, f"{query.where}: reads no metric of docs/metrics.md: {query.text}"
        allowed = UNIVERSAL_LABELS.union(
            *(catalog[name] if name in catalog else BUILTIN_METRICS[name] for name in read)
        )
        made = set(re.findall(r'label_replace\((?:[^()]|\([^()]*\))*?,\s*"(\w+)"', query.text))
        if unknown := labels_used(query.text) - allowed - made:
            problems.append(f"{query.where}: {sorted(unknown)} not listed for {read} in docs/metrics.md")
    assert not problems, "\n".join(problems)


def test_the_label_check_catches_an_undocumented_label() -> None:
    catalog = catalog_labels(DOCS_CATALOG.read_text(encoding="utf-8"))
    assert {"activity_type", "reason"} <= catalog["temporal_activity_failures_total"]
    assert {"route", "handler", "path", "status", "code", "status_code"} <= catalog["http_requests_total"]
    assert {"route", "handler", "path", "status"} <= catalog["http_requests_errors_total"]  # "as above"
    assert "tenant" not in catalog["queue_depth"]
    assert labels_used('sum by (queue, tenant) (queue_depth{job=~"$service", tenant!=""})') == {
        "queue",
        "tenant",
        "job",
    }


def test_the_check_catches_a_wrong_metric_name(loaded_prometheus: Loaded) -> None:
    """The data-returned check is not vacuous: a misspelt metric comes back empty."""
    assert _run(loaded_prometheus, 'sum(rate(http_request_total{job=~".+"}[2m]))', instant=False) == (None, 0)
    error, finite = _run(loaded_prometheus, 'sum(rate(http_requests_total{job=~".+"}[2m]))', instant=False)
    assert error is None and finite > 30
    error, _ = _run(loaded_prometheus, "sum(rate(http_requests_total[2m]) by", instant=True)
    assert error and "parse" in error


def test_or_variants_isolate_each_operand_through_every_enclosing_or() -> None:
    expr = 'sum by (job) ((a{x="p or q"} or b or c)) or sum by (job) (d) or vector(0)'
    assert or_variants(expr) == [
        'sum by (job) ((a{x="p or q"} or b or c))',
        "sum by (job) (d)",
        "vector(0)",
        'sum by (job) ((a{x="p or q"}))',
        "sum by (job) ((b))",
        "sum by (job) ((c))",
    ]
    assert or_variants("sum(rate(x[5m]))") == []


def test_a_legend_label_no_series_has_is_an_error(loaded_prometheus: Loaded) -> None:
    expr = 'sum by (job) (rate(http_requests_total{job=~".+"}[2m]))'
    assert _run(loaded_prometheus, expr, instant=True, legend="{{job}}")[0] is None
    error, _ = _run(loaded_prometheus, expr, instant=True, legend="{{job}} {{route}}")
    assert error == "legend label(s) ['route'] on no series (labels: ['job'])"
