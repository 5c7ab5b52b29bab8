"""Swarm figures, on a real engine made here (tests/support/engine.py) as a one-node swarm, then with two worker
engines in network namespaces (tests/support/swarm_nodes.py) as a three-node swarm:

- `stack up --runtime swarm` from nothing to every component ready;
- `stack up` again with nothing changed (the converge check: no task is replaced);
- a rolling Collector update (a changed Collector config) until `stack up` returns, and whether the
  backends' own data has a gap meanwhile (Prometheus' self-scrape, counted over the roll).

Prometheus, Alertmanager (Debian's binaries) and the stack's Collector build; Grafana, Loki and Tempo
have no image here. `stack` runs as a user runs it (a fresh interpreter, the CLI).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stack.net.ports import free_port  # noqa: E402
from tests.support.engine import Engine, engine_problem, running_engine  # noqa: E402
from tests.support.images import collector_image  # noqa: E402
from tests.support.swarm_nodes import multi_node_swarm  # noqa: E402
from tests.support.swarm_support import eventually, one_node_swarm, query, swarm_settings  # noqa: E402

STACK = Path(sys.executable).parent / "stack"
SCRAPE_SECONDS = 2  # swarm_settings' scrape_interval


def stack(engine: Engine, project_dir: Path, *args: str) -> float:
    """Seconds `stack ARGS` took; the run must succeed."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(STACK), "-c", str(project_dir / "stack.yaml"), *args],
        env={**os.environ, **engine.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"stack {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return time.perf_counter() - start


def tasks(engine: Engine, project: str) -> set[str]:
    names = engine.docker("service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={project}")
    found: set[str] = set()
    for name in names.stdout.split():
        found |= set(engine.docker("service", "ps", "-q", "--filter", "desired-state=running", name).stdout.split())
    return found


def measure(label: str, engine: Engine, nodes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project_dir = Path(tmp)
        prometheus_port = free_port()
        settings = {
            "collector_image": collector_image(engine),
            "alertmanager_port": free_port(),
            "collector_port": free_port(),
            "prometheus_port": prometheus_port,
            "collector_extra": ", host_metrics: true",
        }
        project = swarm_settings(project_dir, engine, **settings)
        try:
            up = stack(engine, project_dir, "up", "--timeout", "300")
            eventually(lambda: len(query(prometheus_port, 'up{job="otel-collector"} == 1')) == nodes or _not_yet(), 120)
            before = tasks(engine, project)
            again = stack(engine, project_dir, "up", "--timeout", "300")
            replaced = len(before - tasks(engine, project))
            changed = ", host_metrics: true, overrides: {processors: {memory_limiter: {check_interval: 2s}}}"
            swarm_settings(project_dir, engine, **{**settings, "collector_extra": changed})
            started = time.time()
            roll = stack(engine, project_dir, "up", "--timeout", "300")
            window = int(time.time() - started) + 1
            # Prometheus' own scrape every SCRAPE_SECONDS over the roll: a gap shows as missing samples.
            time.sleep(SCRAPE_SECONDS)
            samples = query(prometheus_port, f'count_over_time(up{{job="prometheus"}}[{window}s])')
            got = int(float(samples[0]["value"][1])) if samples else 0
            expected = window // SCRAPE_SECONDS
            print(
                f"{label:<12} up {up:6.1f} s   re-up {again:5.1f} s ({replaced} tasks replaced)   "
                f"rolling Collector update {roll:5.1f} s   Prometheus samples over the roll {got}/{expected}"
            )
        finally:
            with contextlib.suppress(SystemExit):
                stack(engine, project_dir, "down", "--volumes", "--yes")


def _not_yet() -> bool:
    raise AssertionError("not yet")


@contextlib.contextmanager
def _swarm(engine: Engine, workers: int) -> Iterator[None]:
    if workers:
        with multi_node_swarm(engine, workers) as nodes:
            for node in nodes:
                collector_image(node.engine)
            yield
    else:
        with one_node_swarm(engine):
            yield


def main() -> int:
    problem = engine_problem()
    if problem:
        print(f"skipped: {problem}")
        return 0
    with running_engine() as engine:
        with _swarm(engine, 0):
            measure("one node", engine, 1)
        with _swarm(engine, 2):
            measure("three nodes", engine, 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
