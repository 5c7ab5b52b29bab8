"""What the Swarm tests share: a one-node swarm on the session's engine, the stack's settings for it,
and queries to the Prometheus it runs."""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from stack.net.ports import free_port
from tests.support.engine import Engine
from tests.support.images import alertmanager_image, prometheus_image


def free_udp_port() -> int:
    """A free UDP port in the range Swarm takes for its data path (1024-49151)."""
    for port in random.sample(range(20000, 49152), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free UDP port between 20000 and 49151")


@contextlib.contextmanager
def one_node_swarm(engine: Engine, *, label: str = "stack.role=backend") -> Iterator[str]:
    """The engine as a one-node swarm whose node has the backend label; it leaves the swarm after.

    Its ports are free ones on 127.0.0.1, not the defaults (2377, VXLAN 4789), so that another
    engine on this machine (another test session) can be a swarm too."""
    address = f"127.0.0.1:{free_port()}"
    engine.docker(
        "swarm",
        "init",
        "--advertise-addr",
        address,
        "--listen-addr",
        address,
        "--data-path-port",
        str(free_udp_port()),
    )
    try:
        node = engine.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        if label:
            engine.docker("node", "update", "--label-add", label, node)
        yield node
    finally:
        engine.docker("swarm", "leave", "--force", check=False)
        # Swarm leaves its docker_gwbridge behind, in this machine's namespace: the next swarm here would
        # publish host-mode ports through a stale one.
        engine.docker("network", "rm", "docker_gwbridge", check=False)


def swarm_settings(
    project_dir: Path,
    engine: Engine,
    *,
    collector_image: str,
    alertmanager_port: int,
    collector_port: int,
    prometheus_port: int | None = None,
    collector_extra: str = "",
    alertmanager_extra: str = "",
    backend_label: str | None = None,
) -> str:
    """stack.yaml for a swarm of Prometheus, Alertmanager and the Collector (Grafana, Loki and Tempo
    have no image here); the project name. The engine's socket and data root are not the default ones."""
    project = f"swarm{os.getpid()}"
    prometheus = f"{{image: {prometheus_image(engine)}, scrape_interval: 2s"
    prometheus += f", port: {prometheus_port}}}" if prometheus_port else "}"
    (project_dir / "stack.yaml").write_text(
        f"project: {project}\n"
        "runtime: swarm\n"
        "swarm:\n"
        f"  docker_socket: {engine.socket}\n"
        f"  docker_data_root: {engine.root / 'data'}\n"
        "  resolve_image: never\n" + (f"  backend_label: {backend_label}\n" if backend_label else "") + "components:\n"
        f"  prometheus: {prometheus}\n"
        f"  alertmanager: {{image: {alertmanager_image(engine)}, port: {alertmanager_port}{alertmanager_extra}}}\n"
        f"  otel-collector: {{image: {collector_image}, port: {collector_port}, docker_logs: false,\n"
        f"                   otlp_grpc_port: null, otlp_http_port: null{collector_extra}}}\n"
        "  loki: {enabled: false}\n"
        "  tempo: {enabled: false}\n"
        "  grafana: {enabled: false}\n"
    )
    return project


def query(port: int, promql: str) -> list[dict[str, Any]]:
    """An instant query to Prometheus published on 127.0.0.1:`port`."""
    reply = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql}, timeout=10)
    reply.raise_for_status()
    return list(reply.json()["data"]["result"])


def eventually(check: Callable[[], Any], timeout: float = 90) -> None:
    """`check` until it passes (its AssertionError raised at the end)."""
    for attempt in Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(1), retry=retry_if_exception_type(AssertionError), reraise=True
    ):
        with attempt:
            check()
