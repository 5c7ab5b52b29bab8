"""Prometheus' config and flags rendered for the version that runs them: the pinned 3.x image, or
the process runtime's binary (Debian's 2.42), checked by the real promtool and a real Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from stack.components.base import RenderContext
from stack.components.prometheus import PROMOTED_RESOURCE_ATTRIBUTES, downgrade_for_promtool, otlp_metrics_endpoint
from stack.render import render_project
from stack.runtime.process.binaries import read_version
from stack.settings import Settings, parse_settings
from stack.validate import check_prometheus
from tests.conftest import require_tool


def _rendered(version: str | None, settings: Settings | None = None) -> tuple[dict[str, Any], list[str]]:
    settings = settings or Settings()
    ctx = RenderContext(settings=settings, versions={"prometheus": version} if version else {})
    project = render_project(settings, ctx)
    return yaml.safe_load(project.configs["prometheus"][0].content), project.compose["services"]["prometheus"][
        "command"
    ]


def test_the_pinned_3x_reads_retention_from_its_config_and_takes_otlp() -> None:
    config, command = _rendered(None)
    assert config["storage"]["tsdb"]["retention"]["time"] == "15d"
    assert config["otlp"]["promote_resource_attributes"] == list(PROMOTED_RESOURCE_ATTRIBUTES)
    assert "--web.enable-otlp-receiver" in command
    # Deprecated (3.8) or a no-op (native histograms are stable from 3.8): neither is passed.
    assert not [flag for flag in command if flag.startswith("--storage.tsdb.retention")]
    assert "--enable-feature=native-histograms" not in command


def test_a_2x_prometheus_gets_the_flags_it_knows() -> None:
    config, command = _rendered("2.42.0")
    assert "storage" not in config and "otlp" not in config
    assert "--storage.tsdb.retention.time=15d" in command
    assert "--enable-feature=native-histograms" in command
    assert "--web.enable-otlp-receiver" not in command


def test_a_3x_before_3_8_gets_otlp_and_the_retention_flag() -> None:
    config, command = _rendered("3.5.0")
    assert "storage" not in config and "otlp" in config
    assert "--storage.tsdb.retention.time=15d" in command
    assert "--enable-feature=native-histograms" in command
    assert "--web.enable-otlp-receiver" in command


def test_the_otlp_metrics_endpoint_is_there_on_3x_only() -> None:
    assert otlp_metrics_endpoint(RenderContext(Settings())) == "http://prometheus:9090/api/v1/otlp"
    assert otlp_metrics_endpoint(RenderContext(Settings(), versions={"prometheus": "2.42.0"})) is None
    off = parse_settings({"components": {"prometheus": {"enabled": False}}})
    assert otlp_metrics_endpoint(RenderContext(off)) is None


def test_an_older_promtool_checks_the_3x_config_without_what_it_predates() -> None:
    config, _ = _rendered(None)
    older, left_out = downgrade_for_promtool(config, Version("2.42.0"))
    assert left_out == ["storage.tsdb.retention", "otlp"]
    assert "storage" not in older and "otlp" not in older
    same, nothing = downgrade_for_promtool(config, Version("3.14.0"))
    assert same == config and nothing == []


def test_validate_accepts_the_pinned_config_with_this_machines_promtool() -> None:
    require_tool("promtool")
    checks = check_prometheus(render_project(Settings()))
    assert [check.status.value for check in checks] == ["passed", "passed"], checks


@pytest.mark.parametrize("retention", ["15d", "45d"])
def test_a_real_prometheus_starts_on_the_config_and_flags_rendered_for_it(tmp_path: Path, retention: str) -> None:
    from tests.support import realbin

    binary = require_tool("prometheus")
    version = read_version(binary, "--version")
    assert version, "cannot read this machine's Prometheus version"
    settings = parse_settings({"components": {"prometheus": {"retention": retention}}})
    config, command = _rendered(version, settings)
    config.pop("alerting", None)
    config["rule_files"] = []
    config["scrape_configs"] = []
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    # The flags the rendering decides (realbin passes the base command's own).
    flags = [
        flag
        for flag in command
        if flag.startswith("--storage.tsdb.retention")
        or flag in ("--enable-feature=native-histograms", "--web.enable-otlp-receiver")
    ]
    with realbin.prometheus(path, tmp_path / "data", *flags) as server:
        import requests

        reported = requests.get(f"{server.url}/api/v1/status/flags", timeout=5).json()["data"]
    assert reported["storage.tsdb.retention.time"] == retention
