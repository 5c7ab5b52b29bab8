"""The real Collector (the stack's own otelcol-contrib build) reads every config the stack renders.

`stack validate` runs `otelcol-contrib validate`; the Collector then starts on the shipped config
with no warning in its start-up log (deprecated component names log one).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

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


def test_the_collectors_own_metrics_keep_their_prometheus_names(tmp_path: Path) -> None:
    """The stack's rules and dashboards query otelcol_* names with type suffixes (…_total)."""
    ports = realcollector.Ports.free()
    with realcollector.run(realcollector.local_config(parse_settings({}), ports), ports, tmp_path) as collector:
        text = requests.get(collector.metrics_url, timeout=5).text
    assert "otelcol_process_uptime_seconds_total" in text
