"""LogQL and TraceQL syntax checks (Grafana's Lezer grammars under Node.js): what `stack validate`'s
'logql check rules' costs, and what parsing every LogQL/TraceQL query of the bundled dashboards costs.

Goals: 'logql check rules' on the default render under 500 ms (Node's start-up is most of it);
every dashboard query parsed in one batch under 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stack import querysyntax  # noqa: E402 (after the path is set)
from stack.grafana.dashboard_queries import DEFAULT_MACROS, interpolate, queries  # noqa: E402
from stack.grafana.dashboards import load_dashboards  # noqa: E402
from stack.render import render_project  # noqa: E402
from stack.settings import Settings  # noqa: E402
from stack.validate import check_loki_rules  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
RULES_GOAL_MS = 500
DASHBOARDS_GOAL_MS = 1000


def median_ms(action) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for dashboard in load_dashboards():
        values = {"service": ".+", "exception": ".+", "fingerprint": ".*", "search": ""}
        for query in queries(dashboard.model):
            if query.kind in ("logql", "traceql"):
                found.append((query.kind, interpolate(query.text, values, DEFAULT_MACROS)))
    return found


def main() -> int:
    problem = querysyntax.unavailable()
    if problem:
        print(f"skipped: {problem}")
        return 0
    project = render_project(Settings())
    rules_ms = median_ms(lambda: check_loki_rules(project))
    items = dashboard_queries()
    batch_ms = median_ms(lambda: querysyntax.syntax_errors(items))
    empty_ms = median_ms(lambda: querysyntax.syntax_errors([]))
    per_query = (batch_ms - empty_ms) / max(len(items), 1)
    print(
        f"logql check rules (default render):  {rules_ms:7.1f} ms   goal < {RULES_GOAL_MS} ms "
        f"({rules_ms / RULES_GOAL_MS:.2f} of it)"
    )
    print(
        f"{len(items)} dashboard queries, one batch:   {batch_ms:7.1f} ms   goal < {DASHBOARDS_GOAL_MS} ms "
        f"({batch_ms / DASHBOARDS_GOAL_MS:.2f} of it)"
    )
    print(f"node start-up and load alone:        {empty_ms:7.1f} ms   per query after it: {per_query:.2f} ms")
    return 0 if rules_ms < RULES_GOAL_MS and batch_ms < DASHBOARDS_GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
