"""The process runtime: `stack up --runtime process` to all ready, against Prometheus started by hand.

For each run, in a fresh project (Prometheus and Alertmanager enabled, Debian's binaries):
  1. `stack up --runtime process` (the CLI, interpreter start-up included) until it returns: it
     returns once every component answers its readiness endpoint;
  2. `stack down`;
  3. by hand: the very command line the runtime recorded for Prometheus (same config, a fresh data
     directory), timed from spawn until `/-/ready` answers 200; then the same for Prometheus and
     Alertmanager started together.
  4. `lifecycle.up` / `lifecycle.down` called from Python (what the runtime itself costs).
Prints medians and the ratios. Skips (exit 0, saying why) where the binaries are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from stack.net.ports import free_port

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
STACK = [sys.executable, "-m", "stack"]


def settings(port: int) -> str:
    disabled = "".join(f"  {name}: {{enabled: false}}\n" for name in ("otel-collector", "loki", "tempo", "grafana"))
    return f"project: bench\nruntime: process\ncomponents:\n{disabled}  alertmanager: {{port: {port}}}\n"


def run_stack(directory: Path, *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([*STACK, *args], cwd=directory, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stack {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def by_hand(argvs: list[tuple[list[str], str]], scratch: Path) -> float:
    """Start each argv (its data directory replaced by a fresh one), until every URL answers 200."""
    processes = []
    scratch.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        for index, (argv, _) in enumerate(argvs):
            fresh = scratch / f"data-{index}"
            data_flags = ("--storage.tsdb.path=", "--storage.path=")
            adjusted = [f"{arg.split('=', 1)[0]}={fresh}" if arg.startswith(data_flags) else arg for arg in argv]
            log = (scratch / f"log-{index}").open("wb")
            processes.append(subprocess.Popen(adjusted, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        pending = [url for _, url in argvs]
        deadline = time.monotonic() + 60
        while pending:
            if time.monotonic() > deadline:
                raise SystemExit("a component started by hand was not ready after 60 s")
            try:
                if requests.get(pending[0], timeout=1).status_code == 200:
                    pending.pop(0)
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.01)
        return time.perf_counter() - start
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def in_process(directory: Path) -> tuple[float, float]:
    """`lifecycle.up` and `lifecycle.down` called from Python: the runtime without interpreter start-up."""
    from stack import lifecycle
    from stack.paths import Paths
    from stack.project import load
    from stack.runtime.select import get_runtime

    paths = Paths.discover(directory / "stack.yaml")
    settings = load(paths)
    runtime = get_runtime(settings, paths)
    start = time.perf_counter()
    result = lifecycle.up(paths, settings, runtime)
    up = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"in-process up failed: {result.diagnoses}")
    start = time.perf_counter()
    lifecycle.down(runtime)
    return up, time.perf_counter() - start


def main() -> int:
    missing = [name for name in ("prometheus", "prometheus-alertmanager") if not shutil.which(name)]
    if missing:
        print(f"skipped: {', '.join(missing)} not on PATH (`make test-deps` installs them)")
        return 0
    ups, downs, prom_alone, both, api_ups, api_downs = [], [], [], [], [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
            directory = Path(tmp)
            (directory / "stack.yaml").write_text(settings(free_port()))
            ups.append(run_stack(directory, "up", "--no-provision"))
            state = json.loads((directory / ".stack-state/process/bench/state.json").read_text())
            downs.append(run_stack(directory, "down"))
            argv = {name: record["argv"] for name, record in state["processes"].items()}
            ports = state["ports"]
            prom_url = f"http://127.0.0.1:{ports['prometheus']['http']}/-/ready"
            am_url = f"http://127.0.0.1:{ports['alertmanager']['http']}/-/ready"
            prom_alone.append(by_hand([(argv["prometheus"], prom_url)], directory / "hand-1"))
            both.append(by_hand([(argv["prometheus"], prom_url), (argv["alertmanager"], am_url)], directory / "hand-2"))
            shutil.rmtree(directory / ".stack-state")
            inner_up, inner_down = in_process(directory)
            api_ups.append(inner_up)
            api_downs.append(inner_down)
    up, down = statistics.median(ups), statistics.median(downs)
    alone, pair = statistics.median(prom_alone), statistics.median(both)
    print(f"runs: {RUNS} (medians); Prometheus + Alertmanager, Debian's binaries")
    print(f"prometheus by hand to /-/ready         {alone * 1000:7.0f} ms")
    print(f"prometheus + alertmanager by hand       {pair * 1000:7.0f} ms")
    print(f"stack up --runtime process to all ready {up * 1000:7.0f} ms  ratio {up / alone:5.2f}x prometheus alone")
    print(f"                                        {'':7s}     ratio {up / pair:5.2f}x both by hand")
    print(f"stack down                              {down * 1000:7.0f} ms")
    api_up, api_down = statistics.median(api_ups), statistics.median(api_downs)
    ratio = api_up / alone
    print(f"lifecycle.up in Python (no interpreter) {api_up * 1000:7.0f} ms  ratio {ratio:5.2f}x prometheus alone")
    print(f"lifecycle.down in Python                {api_down * 1000:7.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
