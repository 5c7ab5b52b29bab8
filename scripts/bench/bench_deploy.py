"""Deploy and doctor figures, against a real sshd on 127.0.0.1 (Debian's openssh-server).

- `stack doctor --settings-only` as a user runs it (a fresh interpreter).
- Reading the server's facts over SSH (one ssh round trip: meminfo, df, listening sockets).
- Opening the deploy tunnel (one `ssh -N`, seven forwards) until every local port answers.
- One readiness probe through the tunnel vs one through a fresh `ssh` command per probe: why the
  deploy forwards ports instead of running each probe remotely.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from stack.deploy.facts import Facts, read_host_facts  # noqa: E402
from stack.deploy.ssh import open_tunnel, run_remote  # noqa: E402
from stack.hosttarget import parse_target  # noqa: E402
from tests.support.httpservers import http_server  # noqa: E402
from tests.support.sshd import sshd  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "15"))


def timed(func, runs: int = RUNS) -> list[float]:  # type: ignore[no-untyped-def]
    found = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        found.append(time.perf_counter() - start)
    return found


def show(name: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"{name:<48} median {median * 1000:8.1f} ms   min {min(samples) * 1000:8.1f} ms   ({len(samples)} runs)")
    return median


def main() -> int:
    stack_bin = Path(sys.executable).parent / "stack"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "stack.yaml").write_text("profile: server\nserver: {hostname: grafana.example.com}\n")
        show(
            "stack doctor --settings-only (CLI)",
            timed(
                lambda: subprocess.run(
                    [str(stack_bin), "-c", str(tmp / "stack.yaml"), "doctor", "--settings-only"],
                    capture_output=True,
                    check=True,
                ),
                runs=max(3, RUNS // 3),
            ),
        )
        try:
            server_cm = sshd(tmp)
            server = server_cm.__enter__()
        except BaseException as exc:  # pytest.skip raises a BaseException subclass
            print(f"sshd unavailable, SSH figures skipped: {exc}")
            return 0
        try:
            target = parse_target(server.host)
            show(
                "server facts over ssh",
                timed(lambda: read_host_facts(Facts(docker_root="/var/lib/docker"), target, options=server.options)),
            )
            with contextlib.ExitStack() as stack:
                urls = [stack.enter_context(http_server(lambda *_: (200, b"ready"))) for _ in range(7)]
                ports = [int(url.rsplit(":", 1)[1]) for url in urls]

                def open_close() -> None:
                    with open_tunnel(target, ports, options=server.options):
                        pass

                show("open the tunnel (7 forwards, all answering)", timed(open_close, runs=max(3, RUNS // 3)))
                with open_tunnel(target, ports, options=server.options) as tunnel:
                    through = tunnel.url(ports[0])
                    session = requests.Session()
                    via_tunnel = show(
                        "readiness probe through the tunnel", timed(lambda: session.get(through + "/ready", timeout=5))
                    )
                via_ssh = show(
                    "readiness probe as one ssh command each",
                    timed(
                        lambda: run_remote(
                            target,
                            f"exec 3<>/dev/tcp/127.0.0.1/{ports[0]} 2>/dev/null || true",
                            options=server.options,
                        )
                    ),
                )
                direct = show(
                    "readiness probe, no ssh at all (reference)",
                    timed(lambda: requests.get(urls[0] + "/ready", timeout=5)),
                )
                print(
                    f"ratio ssh-per-probe / tunnel: {via_ssh / via_tunnel:.0f}x; "
                    f"tunnel / direct: {via_tunnel / direct:.1f}x"
                )
        finally:
            server_cm.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
