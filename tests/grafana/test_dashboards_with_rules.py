"""The SLO dashboard against the SLO recording rules the stack really renders (stack/rules/slo.py),
evaluated by a real Prometheus over the synthetic HTTP series: the names and labels the panels
read are the ones the rules write.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
import requests
import yaml

from stack.components.base import RenderContext
from stack.components.prometheus import Prometheus
from stack.grafana.dashboard_queries import interpolate, queries
from stack.grafana.dashboards import load_dashboards
from stack.settings import parse_settings
from stack.units import parse_duration
from tests.conftest import require_tool
from tests.grafana.test_dashboard_queries import MACROS
from tests.support.dashboard_series import CLASSIC_APP, OTEL_APP, PY_APP, build_tsdb
from tests.support.realbin import Server, prometheus

# One SLO of each ready-made kind and convention, on the synthetic services.
SLOS = [
    {
        "name": "checkout-availability",
        "objective": 99.9,
        "service": OTEL_APP,
        "sli": {"kind": "availability", "convention": "otel", "selector": f'job="{OTEL_APP}"'},
    },
    {
        "name": "orders-latency",
        "objective": 95,
        "service": CLASSIC_APP,
        "sli": {"kind": "latency", "selector": f'job="{CLASSIC_APP}"', "threshold": 0.25},
    },
    {
        "name": "py-availability",
        "objective": 99,
        "sli": {"kind": "availability", "selector": f'job="{PY_APP}"'},
    },
    # A lenient objective over a week: budget left (the others are overspent) and a window not 30d.
    {
        "name": "py-best-effort",
        "objective": 75,
        "window": "7d",
        "service": PY_APP,
        "sli": {"kind": "availability", "selector": f'job="{PY_APP}"'},
    },
]
NAMES = [slo["name"] for slo in SLOS]


def _instant(server: Server, expr: str, at: float | None = None) -> list[dict]:
    data = {"query": expr} | ({"time": str(at)} if at is not None else {})
    reply = requests.post(f"{server.url}/api/v1/query", data=data, timeout=10).json()
    assert reply["status"] == "success", f"{expr}: {reply}"
    return reply["data"]["result"]


@pytest.fixture(scope="module")
def with_slo_rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_tool("promtool")
    root = tmp_path_factory.mktemp("slo-rules")
    build_tsdb(root / "data", int(time.time()), root)
    files = Prometheus().rule_files(RenderContext(parse_settings({"slos": SLOS})))
    rules = yaml.safe_load(files["slos.yml"])
    for group in rules["groups"]:
        group["interval"] = "1s"  # evaluate at once instead of within the minute
    (root / "slos.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    config = root / "prometheus.yml"
    config.write_text(
        yaml.safe_dump({"global": {"evaluation_interval": "1s"}, "rule_files": [str(root / "slos.yml")]}),
        encoding="utf-8",
    )
    with prometheus(config, root / "data") as server:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            recorded = {r["metric"]["slo"] for r in _instant(server, "slo:error_budget:remaining")}
            if set(NAMES) <= recorded:
                break
            time.sleep(0.2)
        yield server


def test_slo_rules_evaluate_without_error(with_slo_rules: Server) -> None:
    groups = requests.get(f"{with_slo_rules.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    recording = [rule for group in groups for rule in group["rules"] if rule["type"] == "recording"]
    assert recording
    assert all(rule["health"] == "ok" for rule in recording), [r for r in recording if r["health"] != "ok"]


def test_slo_dashboard_reads_what_the_rules_record(with_slo_rules: Server) -> None:
    dashboard = next(d for d in load_dashboards(["slos"]))
    values = {"slo": "|".join(NAMES), "datasource": "prometheus"}
    checked = 0
    for query in queries(dashboard.model):
        if query.kind == "variable":
            match = query.text.removeprefix("label_values(").rsplit(",", 1)[0]
            assert set(NAMES) <= {r["metric"]["slo"] for r in _instant(with_slo_rules, match)}
            continue
        expr = interpolate(query.text, values, MACROS)
        result = _instant(with_slo_rules, expr)
        assert result, f"{query.where}: no data for {expr}"
        assert all(math.isfinite(float(r["value"][1])) for r in result), f"{query.where}: {result}"
        # Every SLO shows up, with the labels the legends and the table use.
        assert {r["metric"].get("slo") for r in result} == set(NAMES), f"{query.where}: {result}"
        assert all(r["metric"].get("service") for r in result), f"{query.where}: {result}"
        checked += 1
    assert checked >= 10


def test_time_to_exhaustion_is_never_negative(with_slo_rules: Server) -> None:
    """An overspent budget (remaining < 0) is exhausted now, not "minus three days" away."""
    dashboard = next(d for d in load_dashboards(["slos"]))
    [query] = [q for q in queries(dashboard.model) if q.panel == "Time to exhaustion"]
    result = _instant(with_slo_rules, interpolate(query.text, {"slo": "|".join(NAMES)}, MACROS))
    assert result and all(float(r["value"][1]) >= 0 for r in result)


def test_time_to_exhaustion_uses_each_slos_own_window(with_slo_rules: Server) -> None:
    """remaining budget x the SLO's window / 1h burn rate, with the window stack.yaml gives the SLO."""
    dashboard = next(d for d in load_dashboards(["slos"]))
    [query] = [q for q in queries(dashboard.model) if q.panel == "Time to exhaustion"]
    at = time.time()  # one instant for every query: the rules keep evaluating meanwhile

    def by_slo(expr: str) -> dict[str, float]:
        return {r["metric"]["slo"]: float(r["value"][1]) for r in _instant(with_slo_rules, expr, at)}

    shown = by_slo(interpolate(query.text, {"slo": "|".join(NAMES)}, MACROS))
    remaining = by_slo("slo:error_budget:remaining")
    ratio_1h = by_slo("slo:sli_error:ratio_rate1h")
    windows = by_slo("slo:window:seconds")
    for slo in SLOS:
        name = slo["name"]
        window = parse_duration(slo.get("window", "30d"))
        assert windows[name] == window, name
        burn = ratio_1h[name] / (1 - slo["objective"] / 100)
        assert shown[name] == pytest.approx(max(remaining[name], 0) * window / burn, rel=1e-9), name
    # The case that proves the window is read, not assumed: budget left on a 7-day SLO.
    name = "py-best-effort"
    assert remaining[name] > 0 and windows[name] == 7 * 86400
    assert shown[name] == pytest.approx(remaining[name] * 7 * 86400 / (ratio_1h[name] / 0.25), rel=1e-9)
