"""Per bundled dashboard: how many series its queries touch on the synthetic data set, and how long
its slowest query takes on a real Prometheus (Grafana runs a dashboard's queries in parallel, so
the slowest one bounds the load time).

Seed target: every dashboard loads in under 2 s. Needs `prometheus` and `promtool` on PATH.
BENCH_SERVICES=1,20 (default) runs the test data set and one with 20 copies of every app service.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stack.grafana.dashboard_queries import interpolate, queries  # noqa: E402  (after the path set-up)
from stack.grafana.dashboards import load_dashboards  # noqa: E402
from tests.grafana.test_dashboard_queries import MACROS, RANGE_SECONDS, STEP_SECONDS, _values  # noqa: E402
from tests.support.dashboard_series import build_tsdb, scaled, series_count  # noqa: E402
from tests.support.realbin import prometheus  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
# How many copies of each app service the data set holds: 1 is the test data set.
SCALES = [int(n) for n in os.environ.get("BENCH_SERVICES", "1,20").split(",")]
GOAL_SECONDS = 2.0


def selectors(expr: str, names: set[str]) -> list[str]:
    """The vector selectors of `expr` (metric names known to Prometheus, with their matchers)."""
    found = re.findall(r"\{__name__[^{}]*\}", expr)
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^{}]*\})?", expr):
        if match.group(1) in names:
            found.append(match.group(0))
    return found


def timed_query(url: str, expr: str, end: int, *, instant: bool) -> float:
    if instant:
        path, params = "/api/v1/query", {"query": expr, "time": str(end)}
    else:
        path = "/api/v1/query_range"
        params = {"query": expr, "start": str(end - RANGE_SECONDS), "end": str(end), "step": str(STEP_SECONDS)}
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        reply = requests.post(url + path, data=params, timeout=30)
        samples.append(time.perf_counter() - start)
        reply.raise_for_status()
    return statistics.median(samples)


def bench(services: int) -> float:
    """Print the figures of every dashboard on the data set with `services` copies of each app;
    return the slowest query time."""
    dashboards = load_dashboards()
    catalog = scaled(services)
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as tmp:
        root = Path(tmp)
        end = int(time.time()) // 60 * 60
        start = time.perf_counter()
        build_tsdb(root / "data", end, root, catalog)
        built = time.perf_counter() - start
        config = root / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
        with prometheus(config, root / "data") as server:
            names = set(requests.get(f"{server.url}/api/v1/label/__name__/values", timeout=10).json()["data"])
            print(
                f"\nsynthetic data set x{services} services: {series_count(catalog)} series, 2 h at 30 s, "
                f"blocks built in {built:.2f} s"
            )
            print(f"{'dashboard':<28} {'queries':>7} {'series':>7} {'slowest':>9} {'sum':>9}  slowest query")
            for dashboard in dashboards:
                values = _values(dashboard)
                touched: set[tuple[tuple[str, str], ...]] = set()
                times: list[tuple[float, str]] = []
                promql = [q for q in queries(dashboard.model) if q.kind == "promql"]
                for query in promql:
                    expr = interpolate(query.text, values, MACROS)
                    times.append((timed_query(server.url, expr, end, instant=query.instant), query.panel))
                    for selector in selectors(expr, names):
                        with contextlib.suppress(requests.RequestException, KeyError):
                            reply = requests.get(
                                f"{server.url}/api/v1/series",
                                params={"match[]": selector, "start": str(end - RANGE_SECONDS), "end": str(end)},
                                timeout=10,
                            ).json()
                            touched.update(tuple(sorted(series.items())) for series in reply["data"])
                slowest, panel = max(times)
                worst = max(worst, slowest)
                total = sum(t for t, _ in times)
                print(
                    f"{dashboard.uid:<28} {len(promql):>7} {len(touched):>7} {slowest * 1000:>7.1f}ms "
                    f"{total * 1000:>7.1f}ms  {panel}"
                )
    return worst


def main() -> int:
    missing = [name for name in ("prometheus", "promtool") if not shutil.which(name)]
    if missing:
        print(f"skipped: {', '.join(missing)} not on PATH (`make test-deps` installs Debian's packages)")
        return 0
    worst = max(bench(services) for services in SCALES)
    print(f"\nslowest query of any dashboard: {worst * 1000:.1f} ms (goal: dashboards load in < {GOAL_SECONDS:.0f} s)")
    print(f"goal met: {'yes' if worst < GOAL_SECONDS else 'NO'}")
    return 0 if worst < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
