"""Shared pieces of the backup tests: a real Prometheus with known series, behind the local runtime."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from stack.runtime.base import Runtime
from tests.support.local_runtime import LocalService
from tests.support.realbin import binary, prometheus

PROM_CONFIG = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


@dataclass(frozen=True)
class KnownSeries:
    """`stack_backup_probe{series="a|b"}` every 60 s for an hour, ending three hours ago."""

    start: int
    step: int = 60
    points: int = 60

    def values(self, series: str) -> list[tuple[int, float]]:
        offset = 1000.0 if series == "a" else -5.5
        return [(self.start + i * self.step, offset + i * 0.25) for i in range(self.points)]

    @property
    def end(self) -> int:
        return self.start + (self.points - 1) * self.step

    def openmetrics(self) -> str:
        lines = ["# TYPE stack_backup_probe gauge"]
        for series in ("a", "b"):
            for ts, value in self.values(series):
                lines.append(f'stack_backup_probe{{series="{series}"}} {value} {ts}')
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def write_block(data_dir: Path, scratch: Path, openmetrics: str, name: str = "known") -> None:
    """A block made by the real promtool, placed in the data directory (Prometheus must be stopped)."""
    source = scratch / f"{name}.om"
    source.write_text(openmetrics)
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        check=True,
        capture_output=True,
    )


def write_known_series(data_dir: Path, scratch: Path) -> KnownSeries:
    """Blocks made by the real promtool, placed in the data directory before Prometheus starts."""
    now = int(time.time())
    known = KnownSeries(start=(now - 4 * 3600) // 60 * 60)
    write_block(data_dir, scratch, known.openmetrics())
    return known


LATE_METRIC = "stack_written_after_backup"


def write_late_series(data_dir: Path, scratch: Path) -> tuple[int, int]:
    """`stack_written_after_backup` every minute from 3 h to 2.5 h ago (older than any head, so a
    block of its own): what a restore must remove. Returns its (start, end)."""
    start = (int(time.time()) - 3 * 3600) // 60 * 60
    points = [start + i * 60 for i in range(31)]
    lines = ["# TYPE stack_written_after_backup gauge", *(f"{LATE_METRIC} 42 {ts}" for ts in points), "# EOF"]
    write_block(data_dir, scratch, "\n".join(lines) + "\n", name="late")
    return points[0], points[-1]


def prometheus_service(root: Path) -> LocalService:
    data_dir = root / "prometheus-data"
    config = root / "prometheus.yml"

    @contextlib.contextmanager
    def start(service: LocalService) -> Iterator[Any]:
        # The scrape target is its own port, known only once started: reload after writing it.
        config.write_text("global: {scrape_interval: 1s}\n")
        with prometheus(config, service.data_dir) as server:
            config.write_text(PROM_CONFIG.format(port=server.port))
            requests.post(f"{server.url}/-/reload", timeout=5).raise_for_status()
            yield server

    return LocalService("prometheus", "/prometheus", data_dir, start, image="prom/prometheus:v3.14.0")


Samples = dict[str, list[tuple[int, float]]]


def query_range(runtime: Runtime, expr: str, start: int, end: int, step: int) -> Samples:
    """Series (by their `series` label, else their job) -> [(ts, value)]."""
    reply = runtime.http(
        "prometheus", "http", f"/api/v1/query_range?query={expr}&start={start}&end={end}&step={step}", timeout=10
    )
    assert reply.status == 200, reply.text()
    data = json.loads(reply.body)
    found = {}
    for result in data["data"]["result"]:
        key = result["metric"].get("series") or result["metric"].get("job", "")
        found[key] = [(int(ts), float(value)) for ts, value in result["values"]]
    return found


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
