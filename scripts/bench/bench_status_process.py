"""`stack status --json` on a running process-runtime stack, against a bare `python -c pass`.

Prometheus and Alertmanager (Debian's binaries) are brought up with `stack up --runtime process`;
then, in turn, `python -c pass` and `stack status --json` (a fresh interpreter each time, both
components probed for real). Prints the medians, the ratio and what status costs above a bare
interpreter (issue 15's goal: under 150 ms above `python -c pass`), and the slowest imports of one run
(`python -X importtime`), which is where that cost lives.

A third figure is the floor that importing less cannot go below: an interpreter that only imports
what status cannot do without (click for the command line, the settings models on pydantic and
PyYAML, requests for the probes, psutil for the processes) and does nothing else.
Skips (exit 0, saying why) where the binaries are missing.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stack.net.ports import free_port

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
STACK = [sys.executable, "-m", "stack"]
FLOOR = [sys.executable, "-c", "import click, psutil, requests, yaml; import stack.settings"]
GOAL_MS = 150
# As a user runs it: with the bytecode Python writes on the first run (a CI or sandbox setting that
# forbids it would make every run compile every module of stack again).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def settings_text() -> str:
    disabled = "".join(f"  {name}: {{enabled: false}}\n" for name in ("otel-collector", "loki", "tempo", "grafana"))
    return (
        f"project: bench-status\nruntime: process\ncomponents:\n{disabled}"
        f"  prometheus: {{port: {free_port()}}}\n  alertmanager: {{port: {free_port()}}}\n"
    )


def stack(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*STACK, *args], cwd=directory, env=ENV, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        printed = done.stdout[-1000:] + done.stderr[-2000:]
        raise SystemExit(f"stack {' '.join(args)} failed ({done.returncode}):\n{printed}")
    return done


def once(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def slowest_imports(directory: Path, count: int = 8) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the top-level imports of one `stack status --json`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "stack", "status", "--json"],
        cwd=directory,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if cumulative.strip().isdigit() and not name.startswith("   "):  # top level: two-space indent at most
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    missing = [name for name in ("prometheus", "prometheus-alertmanager") if not shutil.which(name)]
    if missing:
        print(f"skipped: {', '.join(missing)} not on PATH (`make test-deps` installs them)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        directory = Path(tmp)
        (directory / "stack.yaml").write_text(settings_text())
        stack(directory, "up", "--no-provision")
        try:
            stack(directory, "status", "--json")  # warm: bytecode compiled, files in the page cache
            bare_samples, status_samples, floor_samples = [], [], []
            for _ in range(RUNS):  # interleaved, so that a noisy moment costs all alike
                bare_samples.append(once([sys.executable, "-c", "pass"], directory))
                status_samples.append(once([*STACK, "status", "--json"], directory))
                floor_samples.append(once(FLOOR, directory))
            imports = slowest_imports(directory)
        finally:
            stack(directory, "down")
    bare, status = statistics.median(bare_samples), statistics.median(status_samples)
    floor = statistics.median(floor_samples)
    above = (status - bare) * 1000
    print(f"runs: {RUNS} (medians); process runtime, Prometheus + Alertmanager running (Debian's binaries)")
    print(f"python -c pass          {bare * 1000:7.1f} ms")
    print(
        f"stack status --json     {status * 1000:7.1f} ms  ratio {status / bare:5.1f}x  +{above:.0f} ms "
        f"(goal < +{GOAL_MS} ms: {'met' if above < GOAL_MS else 'NOT met'})"
    )
    print(
        f"floor (imports only)    {floor * 1000:7.1f} ms  ratio {floor / bare:5.1f}x  +{(floor - bare) * 1000:.0f} ms "
        "(click, PyYAML, pydantic + the settings models, requests, psutil: what status cannot do without)"
    )
    print("slowest imports of one run (cumulative):")
    for micros, name in imports:
        print(f"  {micros / 1000:7.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
