"""Rule rendering and evaluation cost: render time of the packs and SLO rules, promtool's checks,
and what the rendered rules cost a real Prometheus per evaluation cycle.

Goals: the packs and 10 SLOs render in under 100 ms (YAML dumping is most of it); a full
evaluation cycle of every pack plus 10 SLOs takes under 1% of the 15 s evaluation interval (150 ms).
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

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stack.components.base import RenderContext  # noqa: E402 (after the path is set)
from stack.components.prometheus import Prometheus  # noqa: E402
from stack.settings import parse_settings  # noqa: E402
from tests.support import realbin  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "15"))


def _slos(count: int) -> list[dict]:
    kinds = [
        {"kind": "availability", "selector": 'job="api"'},
        {"kind": "latency", "selector": 'job="api"', "threshold": 0.5},
        {
            "kind": "ratio",
            "errors": 'sum(rate(http_requests_errors_total{job="api"}[$window]))',
            "total": 'sum(rate(http_requests_total{job="api"}[$window]))',
        },
    ]
    return [{"name": f"slo-{i}", "objective": 99.9, "sli": kinds[i % 3]} for i in range(count)]


def render_ms(slo_count: int) -> tuple[float, int, int]:
    settings = parse_settings({"slos": _slos(slo_count)})
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        files = Prometheus().rule_files(RenderContext(settings))
        samples.append(time.perf_counter() - start)
    rules = sum(len(g["rules"]) for text in files.values() for g in yaml.safe_load(text)["groups"])
    return statistics.median(samples) * 1000, rules, sum(len(text) for text in files.values())


def write(slo_count: int, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in Prometheus().rule_files(RenderContext(parse_settings({"slos": _slos(slo_count)}))).items():
        (directory / name).write_text(text)
        paths.append(directory / name)
    return paths


def timed(argv: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def evaluation_cost(tmp: Path) -> tuple[float, float, int]:
    """Sum of the last evaluation duration of every group (ms), the slowest group (ms), rule count."""
    rules_dir = tmp / "eval-rules"
    paths = write(10, rules_dir)
    for path in paths:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group["interval"] = "1s"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1s"}, "rule_files": [f"{rules_dir}/*.yml"]}))
    with realbin.prometheus(config, tmp / "data") as server:
        time.sleep(5)
        groups = requests.get(f"{server.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    durations = [group["evaluationTime"] * 1000 for group in groups]
    rules = sum(len(group["rules"]) for group in groups)
    return sum(durations), max(durations), rules


def main() -> None:
    for count in (0, 10, 50):
        ms, rules, size = render_ms(count)
        print(f"render packs + {count:2d} SLOs   {ms:7.2f} ms (median of {RUNS})  {rules} rules, {size} bytes")
    ms10 = render_ms(10)[0]
    print(f"render goal (packs + 10 SLOs < 100 ms) met: {'yes' if ms10 < 100 else 'NO'}")
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool not on PATH: skipping promtool and Prometheus figures (make test-deps)")
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paths = write(4, tmp / "rules")
        check = timed([promtool, "check", "rules", *map(str, paths)])
        print(f"promtool check rules  {check * 1000:7.1f} ms ({len(paths)} files)")
        tests = sorted((ROOT / "tests" / "promtool").glob("*_test.yml"))
        from tests.support.rulesupport import seed_settings, write_rules

        write_rules(seed_settings(), tmp / "unit")
        for test in tests:
            shutil.copy(test, tmp / "unit" / test.name)
        unit = timed([promtool, "test", "rules", *(t.name for t in tests)], cwd=tmp / "unit")
        print(f"promtool test rules   {unit * 1000:7.1f} ms ({len(tests)} test files)")
        if shutil.which("prometheus"):
            total, slowest, rules = evaluation_cost(tmp)
            share = total / 15000 * 100
            print(
                f"evaluation cycle      {total:7.2f} ms for {rules} rules (slowest group {slowest:.2f} ms), "
                f"{share:.3f}% of a 15 s interval (goal < 1%: {'yes' if share < 1 else 'NO'})"
            )


if __name__ == "__main__":
    main()
