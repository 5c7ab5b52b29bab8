"""The Collector with Docker on the real test engine (tests/support/engine.py).

- The Docker logs pipeline reads a json-file log written by a real container: the real Collector
  (a process here) reads the engine's container logs, and sends them to Loki's stand-in (the
  recording OTLP receiver).
- The Collector image (tests/support/images.py: the stack's build in the official image's layout) runs the
  config the stack renders for its container, and an app's metric reaches a real Prometheus.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.net.ports import free_port
from stack.render import render_project
from stack.settings import parse_settings
from tests.support import otel_app, realcollector
from tests.support.engine import Engine
from tests.support.images import collector_image, prometheus_image
from tests.support.otlp_sink import otlp_sink

pytestmark = pytest.mark.docker


def test_docker_logs_reach_loki_with_the_container_id_and_the_parsed_message(tmp_path: Path, engine: Engine) -> None:
    """Loki stand-in: the recording OTLP receiver at /otlp/v1/logs."""
    settings = parse_settings({"components": {"otel-collector": {"docker_logs": True}}})
    image = prometheus_image(engine)  # any image with a shell
    with otlp_sink() as sink:
        ports = realcollector.Ports.free(loki_http=int(sink.http_url.rsplit(":", 1)[1]))
        config = realcollector.container_config_here(settings, ports, engine.root / "data")
        with realcollector.run(config, ports, tmp_path):
            time.sleep(0.5)  # the receiver's first poll: files found after it are read from their start
            message = f"payment service started {os.getpid()}"
            name = f"stack-logs-{os.getpid()}"
            started = engine.docker(
                "run", "-d", "--name", name,
                "--label", "com.docker.compose.service=payments",
                "--log-driver", "json-file", "--log-opt", "labels=com.docker.compose.service",
                "--entrypoint", "/bin/sh", image, "-c", f"echo '{message}'; sleep 30",
            )  # fmt: skip
            container_id = started.stdout.strip()
            try:
                [record] = sink.wait_for(lambda: [r for r in sink.log_records() if r.body == message])
            finally:
                engine.docker("rm", "-f", name, check=False)
    assert record.resource["container.id"] == container_id
    assert record.resource["container.name"] == "payments"
    # The compose service becomes service.name (Loki's service_name stream label).
    assert record.resource["service.name"] == "payments"
    assert record.attributes["log.iostream"] == "stdout"
    assert not {"attrs", "time", "log"} & set(record.attributes)


@contextlib.contextmanager
def _network(engine: Engine, name: str) -> Iterator[str]:
    engine.docker("network", "create", name)
    try:
        yield name
    finally:
        engine.docker("network", "rm", name, check=False)


def _wait_healthy(url: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def test_the_collector_image_runs_the_rendered_config_into_a_real_prometheus(tmp_path: Path, engine: Engine) -> None:
    prometheus = prometheus_image(engine)
    settings = parse_settings(
        {
            "components": {
                # The Collector's config is rendered for the Prometheus that really runs (Debian's 2.x).
                "prometheus": {"image": prometheus},
                "loki": {"enabled": False},
                "tempo": {"enabled": False},
                "grafana": {"enabled": False},
                "alertmanager": {"enabled": False},
            }
        }
    )
    [config] = render_project(settings).configs["otel-collector"]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config.content)
    config_file.chmod(0o644)  # the image's user (10001) reads it
    tag = collector_image(engine)
    assert tag.startswith("otel/opentelemetry-collector-contrib:0.160.0")
    suffix = str(os.getpid())
    otlp_port, health_port = free_port(), free_port()
    with _network(engine, f"stack-col-{suffix}") as network:
        names = [f"prometheus-{suffix}", f"collector-{suffix}"]
        try:
            engine.docker(
                "run",
                "-d",
                "--name",
                names[0],
                "--network",
                network,
                "--network-alias",
                "prometheus",
                prometheus,
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--web.enable-remote-write-receiver",
            )
            engine.docker(
                "run",
                "-d",
                "--name",
                names[1],
                "--network",
                network,
                "-v",
                f"{config_file}:{config.target}:ro",
                "-p",
                f"127.0.0.1:{otlp_port}:4318",
                "-p",
                f"127.0.0.1:{health_port}:13133",
                tag,
                f"--config={config.target}",
            )
            _wait_healthy(f"http://127.0.0.1:{health_port}/")
            otel_app.record_metrics(
                "http",
                f"http://127.0.0.1:{otlp_port}",
                {"service.name": "api", "service.namespace": "shop"},
                [lambda meter: meter.create_counter("signups").add(2)],
            )
            found: list[dict[str, object]] = []
            deadline = time.monotonic() + 30
            while not found and time.monotonic() < deadline:
                reply = engine.docker(
                    "exec",
                    names[0],
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    "http://127.0.0.1:9090/api/v1/query?query=signups_total",
                    check=False,
                )
                if reply.returncode == 0:
                    found = json.loads(reply.stdout)["data"]["result"]
                if not found:
                    time.sleep(0.5)
            assert found, "signups_total never reached Prometheus"
            assert found[0]["metric"]["job"] == "shop/api"
            user = engine.docker("inspect", "--format", "{{.Config.User}}", names[1]).stdout.strip()
            assert user == "10001:10001"
            log = engine.docker("logs", names[1]).stderr + engine.docker("logs", names[1]).stdout
            warnings = [line for line in log.splitlines() if "\twarn\t" in line or "deprecat" in line.lower()]
            assert not warnings, "\n".join(warnings)
        finally:
            engine.docker("rm", "-f", *names, check=False)


def test_stack_up_and_smoke_on_the_real_engine(tmp_path: Path, engine: Engine) -> None:
    """`stack up` with the Collector image and Prometheus (unpublished: smoke queries it from inside
    the project's network), then `stack smoke`: the metric and its exemplar arrive for real."""
    from tests.support.enginestack import running_stack

    components = {
        "otel-collector": {
            "image": collector_image(engine),
            "otlp_grpc_port": free_port(),
            "otlp_http_port": free_port(),
            "port": free_port(),
        },
        "prometheus": {"image": prometheus_image(engine), "scrape_interval": "5s"},
        "alertmanager": {"enabled": False},
    }
    with running_stack(engine, tmp_path / "project", components, kind="smoke") as stack:
        up = stack.stack("up", "--timeout", "120")
        assert up.exit_code == 0, up.output
        smoke = stack.stack("smoke", "--json", "--timeout", "30")
        assert smoke.exit_code == 0, smoke.output
        report = json.loads(smoke.stdout)
        checks = {check["check"]: check for check in report["checks"]}
        assert checks["metric"]["result"] == "passed", checks["metric"]
        assert checks["exemplar's trace id"]["detail"] == f"exemplar -> trace {report['trace_id']}"
        assert checks["trace by id"]["result"] == "skipped"
