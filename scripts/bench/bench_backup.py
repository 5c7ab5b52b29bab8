"""Backup and restore of a Prometheus TSDB (1 GiB by default) against plain `tar czf` / `tar xzf`
of the same data directory on the same disk, checksums included on our side.

The TSDB is made by the real `promtool tsdb create-blocks-from openmetrics` from random samples
(incompressible, like real chunks), then served by a real Prometheus; `stack`'s backup goes through
the admin API snapshot, the runtime's tar stream, zstd and a sha256 per member; its restore
verifies the whole archive, spools it and unpacks it into the stopped Prometheus, then waits until
Prometheus is ready again. Goal (issue 6): at least 0.9x tar's speed, printed as ratios (tar's
time / ours: above 1 means faster than tar).

BENCH_BACKUP_SIZE=256M for a quicker run; the generated TSDB is cached in BENCH_CACHE
(default ~/.cache/stack-bench).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stack.backup.create import create_backup  # noqa: E402 - after the path set-up above
from stack.backup.restore import restore_backup  # noqa: E402
from stack.paths import Paths  # noqa: E402
from stack.settings import Settings  # noqa: E402
from stack.units import parse_size  # noqa: E402
from tests.support.backup_helpers import prometheus_service  # noqa: E402
from tests.support.local_runtime import LocalRuntime  # noqa: E402

SIZE = parse_size(os.environ.get("BENCH_BACKUP_SIZE", "1G"))
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "stack-bench"))
STEP = 15
POINTS = 5760  # a day at 15 s
# Random 12-digit values cost about 7 bytes per sample once in chunks (measured).
BYTES_PER_SAMPLE = 7


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_tsdb(target: Path) -> None:
    """Blocks of about SIZE bytes from the real promtool, cached between runs."""
    if (target / "done").exists():
        return
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    series = max(1, SIZE // (POINTS * BYTES_PER_SAMPLE))
    end = (int(time.time()) - 3 * 3600) // 3600 * 3600
    start = end - POINTS * STEP
    # Every series gets its own random 12-digit values (like real, incompressible chunks). Lines
    # have a fixed layout, so each series is a copy of one template whose label and value digits
    # are filled in with strided slice assignments: gigabytes of text in seconds, not minutes.
    label_digits, value_digits = 7, 12
    head = b'bench_random{series="'
    line = head + b"0" * label_digits + b'"} 0.' + b"0" * value_digits + b" "
    template = bytearray(b"".join(line + str(start + i * STEP).encode() + b"\n" for i in range(POINTS)))
    stride = len(line) + len(str(start)) + 1
    label_at = len(head)
    value_at = len(line) - value_digits - 1
    digits = bytes((n % 10) + 48 for n in range(256))
    source = target.parent / f"{target.name}.om"
    print(f"generating {series} series x {POINTS} samples of OpenMetrics...", flush=True)
    with source.open("wb") as out:
        out.write(b"# TYPE bench_random gauge\n")
        for index in range(series):
            body = bytearray(template)
            label = str(index).zfill(label_digits).encode()
            for j in range(label_digits):
                body[label_at + j :: stride] = bytes([label[j]]) * POINTS
            noise = os.urandom(POINTS * value_digits).translate(digits)
            for j in range(value_digits):
                body[value_at + j :: stride] = noise[j * POINTS : (j + 1) * POINTS]
            out.write(body)
        out.write(b"# EOF\n")
    print(f"promtool create-blocks-from openmetrics ({source.stat().st_size / 1024**3:.1f} GiB of text)...", flush=True)
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(target)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    source.unlink()
    (target / "done").write_text("")


def timed(argv: list[str], cwd: Path) -> float:
    begin = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True)
    return time.perf_counter() - begin


def main() -> None:
    if not shutil.which("promtool") or not shutil.which("prometheus"):
        print("promtool/prometheus missing: `make test-deps` installs them")
        sys.exit(1)
    source = CACHE / f"tsdb-{SIZE}"
    make_tsdb(source)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp_name:
        tmp = Path(tmp_name)
        service = prometheus_service(tmp)
        shutil.copytree(source, service.data_dir, ignore=shutil.ignore_patterns("done"))
        data_size = du(service.data_dir)
        print(f"TSDB: {data_size / 1024**2:.0f} MiB in {service.data_dir}")

        # tar czf of the same directory (what a user would script), then tar xzf of it.
        tar_file = tmp / "plain.tar.gz"
        tar_c = timed(["tar", "czf", str(tar_file), "-C", str(service.data_dir), "."], tmp)
        tar_size = tar_file.stat().st_size
        unpack = tmp / "unpacked"
        unpack.mkdir()
        tar_x = timed(["tar", "xzf", str(tar_file), "-C", str(unpack)], tmp)
        shutil.rmtree(unpack)

        runtime = LocalRuntime(service)
        runtime.up()
        try:
            paths = Paths.discover(tmp / "stack.yaml")
            settings = Settings()
            begin = time.perf_counter()
            result = create_backup(runtime, settings, paths, only=["prometheus"])
            ours_c = time.perf_counter() - begin

            runtime.stop(["prometheus"])
            shutil.rmtree(service.data_dir)
            service.data_dir.mkdir()
            runtime.start(["prometheus"])
            begin = time.perf_counter()
            restored = restore_backup(runtime, settings, paths, result.path, only=["prometheus"])
            ours_x = time.perf_counter() - begin
        finally:
            runtime.down()

    print(f"{'':22}{'seconds':>9}{'MiB/s':>9}{'archive MiB':>13}")
    print(f"{'tar czf':22}{tar_c:9.2f}{data_size / 1024**2 / tar_c:9.0f}{tar_size / 1024**2:13.0f}")
    print(f"{'stack backup':22}{ours_c:9.2f}{data_size / 1024**2 / ours_c:9.0f}{result.archive_size / 1024**2:13.0f}")
    print(f"{'tar xzf':22}{tar_x:9.2f}{data_size / 1024**2 / tar_x:9.0f}")
    print(f"{'stack restore':22}{ours_x:9.2f}{data_size / 1024**2 / ours_x:9.0f}")
    print(f"  of which verify+spool {restored.verified.seconds:.2f} s; the rest: stop, copy in, start, readiness")
    print(f"backup  speed ratio vs tar czf: {tar_c / ours_c:.2f}x (goal >= 0.9x)")
    print(f"restore speed ratio vs tar xzf: {tar_x / ours_x:.2f}x (goal >= 0.9x)")
    print("(page cache warm for both; sha256 of every member computed on backup and verified on restore)")


if __name__ == "__main__":
    main()
