"""`stack --help` start-up against `python -c pass`, and `stack render` time.

Goal (issue 2): `stack --help` under 150 ms more than a bare interpreter start.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
STACK = [sys.executable, "-m", "stack"]


def timed(argv: list[str], cwd: str | None = None) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    bare = timed([sys.executable, "-c", "pass"])
    helped = timed([*STACK, "--help"])
    version = timed([*STACK, "--version"])
    with tempfile.TemporaryDirectory() as tmp:
        render = timed([*STACK, "render"], cwd=tmp)
        size = (Path(tmp) / ".stack" / "compose.yaml").stat().st_size
    extra = (helped - bare) * 1000
    print(f"python -c pass      {bare * 1000:7.1f} ms (median of {RUNS})")
    print(f"stack --help        {helped * 1000:7.1f} ms  ratio {helped / bare:4.2f}x  +{extra:.1f} ms (goal < +150 ms)")
    print(f"stack --version     {version * 1000:7.1f} ms  ratio {version / bare:4.2f}x")
    print(f"stack render        {render * 1000:7.1f} ms  ratio {render / bare:4.2f}x  ({size} bytes of compose.yaml)")
    print(f"help goal met: {'yes' if extra < 150 else 'NO'}")


if __name__ == "__main__":
    main()
