"""Real Prometheus and Alertmanager processes for tests, on 127.0.0.1 at free ports.

Debian's packages provide `prometheus` and `prometheus-alertmanager` (`make test` installs them).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from stack.net.ports import free_port


@functools.cache
def _version_of(exe: str) -> str:
    from stack.versions import version_in

    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    found = version_in(done.stdout + done.stderr)
    assert found, done.stdout
    return found


def prometheus_version() -> str:
    """The version of the Prometheus these tests run (Debian's 2.x; a 3.x first on PATH where one
    is): what configs sent to it are rendered for, as the process runtime renders for its binary."""
    return _version_of(binary("prometheus"))


def is_3x(exe: str | None = None) -> bool:
    return int(_version_of(exe or binary("prometheus")).split(".")[0]) >= 3


def otlp_config() -> dict[str, Any]:
    """The `otlp` block of the config the stack renders for this Prometheus: none for a 2.x (remote
    write), the promoted resource attributes for a 3.x (its own OTLP receiver)."""
    from stack.components.prometheus import PROMOTED_RESOURCE_ATTRIBUTES

    if not is_3x():
        return {}
    promoted = {"promote_resource_attributes": list(PROMOTED_RESOURCE_ATTRIBUTES)}
    return {"otlp": {**promoted, "keep_identifying_resource_attributes": True}}


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"none of {names} is on PATH: `make test` installs Debian's packages"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_ready(server: Server, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + path, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {timeout} s:\n{server.log.read_text()[-3000:]}")


@contextlib.contextmanager
def prometheus(config: Path, data_dir: Path, *extra_flags: str) -> Iterator[Server]:
    """A real Prometheus on a free port (admin API, lifecycle and remote-write receiver on)."""
    exe = binary("prometheus")
    port = free_port()
    log = data_dir.parent / f"prometheus-{port}.log"
    argv = [
        exe,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
        "--web.enable-remote-write-receiver",
        "--enable-feature=exemplar-storage",
        # The stack renders this for a 3.x (stack/components/prometheus.py): the Collector then sends
        # metrics to Prometheus' own OTLP receiver instead of remote write.
        *(["--web.enable-otlp-receiver"] if is_3x(exe) and "--web.enable-otlp-receiver" not in extra_flags else []),
        *extra_flags,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(f"http://127.0.0.1:{port}", port, process, log)
    try:
        _wait_ready(server, "/-/ready")
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def alertmanager(config: Path, data_dir: Path) -> Iterator[Server]:
    """A real Alertmanager (Debian names it prometheus-alertmanager) on a free port, no gossip."""
    exe = binary("prometheus-alertmanager", "alertmanager")
    port = free_port()
    log = data_dir.parent / f"alertmanager-{port}.log"
    argv = [
        exe,
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(f"http://127.0.0.1:{port}", port, process, log)
    try:
        _wait_ready(server, "/-/ready")
        yield server
    finally:
        server.stop()
