"""Loading settings: the full example file, and the hostile files issue 16 found (refusal time and peak memory).

Goal: the bounded loader costs a real file little (compare with PyYAML alone), and every hostile
file is refused in well under a second with a small peak, where before it hung and grew to GBs.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import yaml

from stack.errors import SettingsError
from stack.project import SETTINGS_CHECKS
from stack.settings import load_settings
from stack.yamlio import MAX_BYTES, loads

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
FULL = Path(__file__).parents[2] / "tests" / "support" / "data" / "stack-full.yaml"
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}' if prev else 'x'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)


def measure(action: Callable[[], object]) -> tuple[float, int]:
    """Median seconds over RUNS, and the peak traced memory of one run."""
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    tracemalloc.start()
    action()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(samples), peak


def refused(text: str) -> Callable[[], object]:
    def run() -> object:
        try:
            return loads(text)
        except ValueError as exc:
            return exc

    return run


def main() -> None:
    text = FULL.read_text()
    plain, _ = measure(lambda: yaml.safe_load(text))
    ours, peak = measure(lambda: loads(text))
    # With the pack checks every command runs (stack.project.load).
    settings, _ = measure(lambda: load_settings(FULL, checks=SETTINGS_CHECKS))
    print(f"yaml.safe_load (stack-full.yaml)   {plain * 1000:7.2f} ms")
    ratio = ours / plain
    print(f"yamlio.loads, bounded, with lines  {ours * 1000:7.2f} ms  ratio {ratio:4.2f}x  peak {peak / 1024:.0f} KiB")
    print(f"load_settings (validated)          {settings * 1000:7.2f} ms")
    worst = 0.0
    for name, hostile in {
        "alias bomb (8 lines)": BOMB,
        "2000 levels of nesting": "[" * 2000 + "]" * 2000,
        "file just under the size cap": "k: " + "x" * (MAX_BYTES - 8) + "\n",
        "file over the size cap": "x" * (MAX_BYTES + 1),
    }.items():
        seconds, peak = measure(refused(hostile))
        worst = max(worst, seconds)
        print(f"{name:34} {seconds * 1000:7.2f} ms  peak {peak / 1024**2:6.1f} MiB")
    try:
        load_settings(Path("/dev/zero"))
    except SettingsError as exc:
        print(f"/dev/zero                          refused: {exc.message}")
    print(f"every hostile file under 1 s: {'yes' if worst < 1 else 'NO'}")


if __name__ == "__main__":
    main()
