"""What the Swarm tests share: a one-node swarm on the session's engine, the stack's settings for it,
and a stand-in Collector image until the real Collector image is built for the tests.

The stand-in answers the Collector's health port (13133) and serves a metrics page on 8888 with
busybox httpd: enough to show that Swarm runs it on every node and that Prometheus finds it through
Swarm discovery; it reads no config and receives no OTLP.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.engine import Engine
from tests.images import Layout, alertmanager_image, import_image, prometheus_image
from tests.realbin import free_port

STANDIN_COLLECTOR = "stack-test/otel-collector-standin:1"
STANDIN_SCRIPT = """#!/bin/sh
# Stand-in Collector: health on 13133, a metrics page on 8888 (its arguments are ignored).
httpd -p 8888 -h /www/metrics
exec httpd -f -p 13133 -h /www/health
"""
STANDIN_METRICS = "# TYPE otelcol_process_uptime counter\notelcol_process_uptime 1\n"


def standin_collector_image(engine: Engine) -> str:
    layout = Layout()
    layout.add_busybox()
    layout.links["/bin/httpd"] = "busybox"
    layout.texts["/standin.sh"] = STANDIN_SCRIPT
    layout.texts["/www/health/index.html"] = "Server available\n"
    layout.texts["/www/metrics/metrics"] = STANDIN_METRICS
    layout.changes = ['ENTRYPOINT ["/bin/sh", "/standin.sh"]']
    return import_image(engine, STANDIN_COLLECTOR, layout)


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


def swarm_settings(
    project_dir: Path,
    engine: Engine,
    *,
    collector_image: str,
    alertmanager_port: int,
    collector_port: int,
    prometheus_port: int | None = None,
    collector_extra: str = "",
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
        f"  alertmanager: {{image: {alertmanager_image(engine)}, port: {alertmanager_port}}}\n"
        f"  otel-collector: {{image: {collector_image}, port: {collector_port}, docker_logs: false,\n"
        f"                   otlp_grpc_port: null, otlp_http_port: null{collector_extra}}}\n"
        "  loki: {enabled: false}\n"
        "  tempo: {enabled: false}\n"
        "  grafana: {enabled: false}\n"
    )
    return project
