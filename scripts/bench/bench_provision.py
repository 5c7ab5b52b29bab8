"""Grafana provisioning: requests and writes of a first run and of a re-run on an unchanged stack.

Goal (issue 4): a re-provision of an unchanged stack makes 0 writes. Runs against the fake Grafana
of the tests (a real HTTP server on 127.0.0.1 that keeps what it is sent), with every bundled
dashboard pack, so the figures count requests, not Grafana's own speed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stack.grafana.dashboards import load_dashboards  # noqa: E402
from stack.grafana.provision import provision_stack  # noqa: E402
from stack.paths import Paths  # noqa: E402
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore  # noqa: E402
from stack.settings import Settings  # noqa: E402
from tests.support.fake_grafana import fake_grafana  # noqa: E402
from tests.support.urlruntime import UrlRuntime  # noqa: E402

RUNS = 10


def main() -> int:
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp, fake_grafana() as grafana:
        paths = Paths.discover(Path(tmp) / "stack.yaml")
        SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, grafana.admin_password)
        runtime = UrlRuntime({"grafana": grafana.url})
        start = time.perf_counter()
        first = provision_stack(paths, settings, runtime)
        first_time = time.perf_counter() - start
        samples = []
        again = first
        for _ in range(RUNS):
            grafana.reset_journal()
            start = time.perf_counter()
            again = provision_stack(paths, settings, runtime)
            samples.append(time.perf_counter() - start)
            server_writes = len(grafana.writes())
        rerun = statistics.median(samples)
    dashboards = len(load_dashboards())
    print(f"objects             {first.folders_line()} ({dashboards} bundled dashboards)")
    print(f"first provision     {first.requests:4d} requests  {first.writes:4d} writes  {first_time * 1000:7.1f} ms")
    print(
        f"re-provision        {again.requests:4d} requests  {again.writes:4d} writes  {rerun * 1000:7.1f} ms"
        f"  (median of {RUNS}; writes seen by Grafana: {server_writes})"
    )
    print(f"requests ratio      {again.requests / max(1, first.requests):.2f} (re-run / first run)")
    ok = again.writes == 0 and server_writes == 0
    print(f"goal 0 writes on an unchanged stack: {'met' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
