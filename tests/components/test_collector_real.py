"""The real Collector (the stack's own otelcol-contrib build) reads every config the stack renders.

`stack validate` runs `otelcol-contrib validate`; the Collector then starts on the shipped config
with no warning in its start-up log (deprecated component names log one).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.net.ports import free_port
from stack.render import render_project
from stack.settings import load_settings, parse_settings
from stack.validate import Status, check_collector
from tests.conftest import invoke
from tests.support import DATA, realcollector
from tests.support.otlp_sink import otlp_sink

OFF = {"enabled": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "host metrics on": {"components": {"otel-collector": {"host_metrics": True}}},
    "docker logs off": {"components": {"otel-collector": {"docker_logs": False}}},
    "prometheus off": {"components": {"prometheus": OFF}},
    "loki off": {"components": {"loki": OFF}},
    "tempo off": {"components": {"tempo": OFF, "grafana": {"enabled": True}}},
    "every backend off": {
        "components": {"prometheus": OFF, "loki": OFF, "tempo": OFF, "grafana": OFF, "alertmanager": OFF}
    },
    # A Prometheus 2.x (no OTLP receiver) gets remote write instead of OTLP.
    "prometheus 2.x": {"components": {"prometheus": {"image": "prom/prometheus:v2.53.0"}}},
    "sampling": {"components": {"otel-collector": {"sampling_ratio": 0.25}}},
    "frontend on": {
        "components": {"otel-collector": {"frontend": {"enabled": True, "cors_origins": ["https://shop.example.com"]}}}
    },
    "user override": {
        "components": {
            "otel-collector": {
                "overrides": {
                    "processors": {"memory_limiter": {"limit_percentage": 70}},
                    "exporters": {"otlp_http/loki": {"sending_queue": {"batch": {"flush_timeout": "1s"}}}},
                }
            }
        }
    },
}


def test_validate_accepts_the_example_with_every_setting_changed() -> None:
    check = check_collector(render_project(load_settings(DATA / "stack-full.yaml")))
    assert check.status is Status.PASSED, check.detail


@pytest.fixture(scope="module", autouse=True)
def _collector_built() -> None:
    realcollector.binary()


@pytest.mark.parametrize("data", VARIANTS.values(), ids=VARIANTS.keys())
def test_validate_accepts_every_rendered_collector_config(data: dict[str, Any]) -> None:
    check = check_collector(render_project(parse_settings(data)))
    assert check.status is Status.PASSED, check.detail


KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")


def _component_types(config: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, type) of every component a Collector config names: `otlp_http/loki` is otlp_http."""
    return {(kind, name.split("/", 1)[0]) for kind in KINDS for name in config.get(kind) or {}}


def test_the_build_holds_exactly_the_components_the_rendered_configs_use() -> None:
    """The manifest lists what some rendered config uses, no more (every one builds: validate shows it)."""
    used: set[tuple[str, str]] = set()
    for data in VARIANTS.values():
        [config] = render_project(parse_settings(data)).configs["otel-collector"]
        used |= _component_types(yaml.safe_load(config.content))
    listed = yaml.safe_load(
        subprocess.run([realcollector.binary(), "components"], capture_output=True, check=True).stdout
    )
    built = {(kind, item["name"]) for kind in KINDS for item in listed.get(kind) or []}
    assert built == used, f"built but unused: {sorted(built - used)}; used but not built: {sorted(used - built)}"
    assert listed["buildinfo"]["version"] == "0.160.0"


def test_validate_refuses_a_broken_override_with_the_collectors_message(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text(
        "components:\n  otel-collector:\n    overrides:\n"
        "      exporters:\n        otlp_http/loki:\n          sending_queue:\n            batch:\n"
        "              flush_timeout: -1s\n"
    )
    check = check_collector(
        render_project(
            parse_settings(
                {
                    "components": {
                        "otel-collector": {
                            "overrides": {
                                "exporters": {"otlp_http/loki": {"sending_queue": {"batch": {"flush_timeout": "-1s"}}}}
                            }
                        }
                    }
                }
            )
        )
    )
    assert check.status is Status.FAILED
    assert "flush_timeout" in check.detail and "must be positive" in check.detail
    assert "\n" not in check.detail
    result = invoke("validate")
    assert result.exit_code == 1
    assert "otelcol-contrib validate" in result.output and "flush_timeout" in result.output


def test_validate_names_an_unknown_component() -> None:
    settings = parse_settings({"components": {"otel-collector": {"overrides": {"processors": {"batch": {}}}}}})
    check = check_collector(render_project(settings))
    assert check.status is Status.FAILED
    assert 'unknown type: "batch"' in check.detail


# A warning, an error, or a deprecation anywhere in the log (zap's console encoder: tab-separated level).
_BAD = re.compile(r"\t(warn|error|dpanic|panic|fatal)\t|deprecat", re.IGNORECASE)


def _start_up_log(config: dict[str, Any], ports: realcollector.Ports, workdir: Path) -> str:
    # Tempo's and Loki's stand-ins listen, so that the exporters' connections succeed.
    with (
        otlp_sink(grpc_port=ports.tempo_grpc, http_port=ports.loki_http),
        realcollector.run(config, ports, workdir) as collector,
    ):
        # Scrapers and receivers start after the health check says ready; give them a moment.
        time.sleep(1.5)
        assert requests.get(collector.metrics_url, timeout=5).status_code == 200
        return collector.log


def test_no_warning_at_start_up_with_the_process_runtime_config(tmp_path: Path) -> None:
    ports = realcollector.Ports.free()
    settings = parse_settings({"components": {"otel-collector": {"host_metrics": True}}})
    log = _start_up_log(realcollector.local_config(settings, ports), ports, tmp_path)
    bad = [line for line in log.splitlines() if _BAD.search(line)]
    assert not bad, "\n".join(bad)
    assert "Everything is ready" in log


def test_no_warning_at_start_up_with_the_container_config(tmp_path: Path) -> None:
    """Every receiver, processor and exporter of the container's config (Docker logs, host metrics)."""
    ports = realcollector.Ports.free()
    (tmp_path / "docker" / "containers").mkdir(parents=True)
    settings = parse_settings({"components": {"otel-collector": {"host_metrics": True}}})
    config = realcollector.container_config_here(settings, ports, tmp_path / "docker")
    assert {"otlp", "file_log/docker", "host_metrics"} <= set(config["receivers"])
    log = _start_up_log(config, ports, tmp_path)
    bad = [line for line in log.splitlines() if _BAD.search(line)]
    assert not bad, "\n".join(bad)


def test_no_warning_at_start_up_with_the_container_config_for_the_pinned_prometheus(tmp_path: Path) -> None:
    """The config as it ships for the pinned Prometheus 3.x (metrics over OTLP to its own receiver,
    not remote write): the other start-up tests render for Debian's 2.x, which runs here."""
    (tmp_path / "docker" / "containers").mkdir(parents=True)
    loki_http = free_port()
    # Prometheus' OTLP receiver stand-in: the recording sink, which also takes /api/v1/otlp/v1/metrics.
    ports = realcollector.Ports.free(loki_http=loki_http, prometheus=loki_http)
    settings = parse_settings({"components": {"otel-collector": {"host_metrics": True}}})
    config = realcollector.container_config_here(settings, ports, tmp_path / "docker", for_pinned_prometheus=True)
    assert "prometheus_remote_write" not in config["exporters"]
    assert {"metrics", "metrics/host"} <= {
        name
        for name, pipeline in config["service"]["pipelines"].items()
        if "otlp_http/prometheus" in pipeline["exporters"]
    }
    with (
        otlp_sink(grpc_port=ports.tempo_grpc, http_port=ports.loki_http) as sink,
        realcollector.run(config, ports, tmp_path) as collector,
    ):
        # The host metrics' first scrape is exported at start-up: it reaches the OTLP path.
        sink.wait_for(lambda: sink.metrics)
        time.sleep(1.0)
        log = collector.log
    bad = [line for line in log.splitlines() if _BAD.search(line)]
    assert not bad, "\n".join(bad)


def test_the_collectors_own_metrics_keep_their_prometheus_names(tmp_path: Path) -> None:
    """The stack's rules and dashboards query otelcol_* names with type suffixes (…_total)."""
    ports = realcollector.Ports.free()
    with realcollector.run(realcollector.local_config(parse_settings({}), ports), ports, tmp_path) as collector:
        text = requests.get(collector.metrics_url, timeout=5).text
    assert "otelcol_process_uptime_seconds_total" in text
