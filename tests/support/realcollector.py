"""The real OpenTelemetry Collector for tests: the stack's own build (`make collector`), on free ports.

The config is the one the stack renders, for components on 127.0.0.1 (as the process runtime
renders it), so a test runs exactly what ships.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.collector_build import CollectorBuildError, build, built_binary, go_binary
from stack.components.base import RenderContext
from stack.components.collector import Collector
from stack.net.ports import free_port
from stack.runtime.process.topology import LocalTopology
from stack.settings import Settings
from stack.yamlio import deep_merge
from tests.support import realbin


def binary() -> str:
    """The cached build, built now if Go is here (`make test` has normally built it already)."""
    found = built_binary()
    if found is not None:
        return str(found)
    if go_binary():
        try:
            return str(build().path)
        except CollectorBuildError as exc:
            pytest.fail(exc.one_line())
    message = "the Collector is not built and Go is not on PATH: run `make collector`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Ports:
    """Where the Collector listens, and where it sends each signal."""

    otlp_grpc: int
    otlp_http: int
    health: int
    metrics: int
    prometheus: int
    tempo_grpc: int
    loki_http: int

    @classmethod
    def free(cls, **given: int) -> Ports:
        names = cls.__dataclass_fields__
        return cls(**{name: given.get(name) or free_port() for name in names})

    def topology(self) -> Mapping[str, Mapping[str, int]]:
        return {
            "otel-collector": {
                "otlp_grpc": self.otlp_grpc,
                "otlp_http": self.otlp_http,
                "health": self.health,
                "metrics": self.metrics,
            },
            "prometheus": {"http": self.prometheus},
            "tempo": {"otlp_grpc": self.tempo_grpc},
            "loki": {"http": self.loki_http},
        }


def local_config(settings: Settings, ports: Ports) -> dict[str, Any]:
    """The Collector config the stack renders for this settings, every listener on 127.0.0.1."""
    # Metrics go to Debian's Prometheus 2.x here: rendered for it (remote write), not for the 3.x pin.
    ctx = RenderContext(
        settings=settings,
        topology=LocalTopology(ports.topology(), settings),
        versions={"prometheus": realbin.prometheus_version()},
    )
    collector = Collector()
    document = deep_merge(collector.document(ctx), collector.settings(ctx).overrides)
    return _loopback(document)


def _loopback(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _loopback(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_loopback(item) for item in value]
    if isinstance(value, str) and value.startswith("0.0.0.0"):
        return "127.0.0.1" + value.removeprefix("0.0.0.0")
    return "127.0.0.1" if value == "0.0.0.0" else value


@dataclass
class RunningCollector:
    server: realbin.Server
    ports: Ports
    config: dict[str, Any]

    @property
    def log(self) -> str:
        return self.server.log.read_text(encoding="utf-8", errors="replace")

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.ports.otlp_http}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.ports.otlp_grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"


@contextlib.contextmanager
def run(config: dict[str, Any], ports: Ports, workdir: Path) -> Iterator[RunningCollector]:
    """The real Collector on `config`, ready (its health endpoint answers) when this yields.

    A listener port taken meanwhile (other processes share this machine) is replaced by another free
    one, up to three times: use the ports of the RunningCollector, not those given.
    """
    exe = binary()
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        path = workdir / f"otelcol-{ports.otlp_http}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        log = workdir / f"otelcol-{ports.otlp_http}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [exe, f"--config={path}"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = realbin.Server(f"http://127.0.0.1:{ports.health}", ports.health, process, log)
        try:
            realbin._wait_ready(server, "/")
        except RuntimeError:
            server.stop()
            if attempt == 2 or "address already in use" not in log.read_text(errors="replace"):
                raise
            config, ports = _other_listen_ports(config, ports)
            continue
        try:
            yield RunningCollector(server, ports, config)
        finally:
            server.stop()
        return


_LISTENERS = ("otlp_grpc", "otlp_http", "health", "metrics")


def _other_listen_ports(config: dict[str, Any], ports: Ports) -> tuple[dict[str, Any], Ports]:
    fresh = {name: free_port() for name in _LISTENERS}
    text = yaml.safe_dump(config, sort_keys=False)
    for name in _LISTENERS:
        old = getattr(ports, name)
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{fresh[name]}").replace(
            f"port: {old}\n", f"port: {fresh[name]}\n"
        )
    moved = Ports(**{**{n: getattr(ports, n) for n in Ports.__dataclass_fields__}, **fresh})
    return yaml.safe_load(text), moved


def container_config_here(
    settings: Settings, ports: Ports, docker_root: Path, *, for_pinned_prometheus: bool = False
) -> dict[str, Any]:
    """The config rendered for the Collector's container, pointed at this machine instead.

    Listeners and exporters go to `ports` on 127.0.0.1, the Docker log receiver reads the
    json-file logs under `docker_root` (an engine's data-root), and the host metrics read this
    machine's / rather than /hostfs: everything else is exactly what the container would run.
    It is rendered for the Prometheus that runs here (Debian's 2.x: remote write), or with
    `for_pinned_prometheus` for the image the settings pin (3.x: its own OTLP receiver).
    """
    from stack.components.collector import DOCKER_LOGS_DIR, OTLP_PROMETHEUS_EXPORTER

    versions = {} if for_pinned_prometheus else {"prometheus": realbin.prometheus_version()}
    ctx = RenderContext(settings=settings, versions=versions)
    collector = Collector()
    config = deep_merge(collector.document(ctx), collector.settings(ctx).overrides)
    receivers, exporters = config["receivers"], config["exporters"]
    receivers["otlp"]["protocols"]["grpc"]["endpoint"] = f"127.0.0.1:{ports.otlp_grpc}"
    receivers["otlp"]["protocols"]["http"]["endpoint"] = f"127.0.0.1:{ports.otlp_http}"
    config["extensions"]["health_check"]["endpoint"] = f"127.0.0.1:{ports.health}"
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    reader.update(host="127.0.0.1", port=ports.metrics)
    if "file_log/docker" in receivers:
        receivers["file_log/docker"]["include"] = [
            pattern.replace(DOCKER_LOGS_DIR, str(docker_root / "containers"))
            for pattern in receivers["file_log/docker"]["include"]
        ]
    if "host_metrics" in receivers:
        receivers["host_metrics"]["root_path"] = "/"
    if "otlp_grpc/tempo" in exporters:
        exporters["otlp_grpc/tempo"]["endpoint"] = f"127.0.0.1:{ports.tempo_grpc}"
    if "otlp_http/loki" in exporters:
        exporters["otlp_http/loki"]["endpoint"] = f"http://127.0.0.1:{ports.loki_http}/otlp"
    if OTLP_PROMETHEUS_EXPORTER in exporters:
        exporters[OTLP_PROMETHEUS_EXPORTER]["metrics_endpoint"] = (
            f"http://127.0.0.1:{ports.prometheus}/api/v1/otlp/v1/metrics"
        )
    if "prometheus_remote_write" in exporters:
        exporters["prometheus_remote_write"]["http"]["endpoint"] = f"http://127.0.0.1:{ports.prometheus}/api/v1/write"
    return config
