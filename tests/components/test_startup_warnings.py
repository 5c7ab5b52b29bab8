"""No deprecation warning in a component's start-up log with the shipped configs, where this
machine has the real binary: Debian's Prometheus and Alertmanager, started by the process runtime on
the configs and flags rendered for them (every rule pack, an SLO, the memory-limit rules); Caddy; Loki
where one is on PATH (none is packaged for Debian)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from stack.net.ports import free_port
from stack.polling import poll_until
from tests.runtime.process.test_process_runtime import _settings_text, open_runtime, processes_under
from tests.support.realbin import binary

DEPRECATED = re.compile(r"deprecat", re.IGNORECASE)
SLO = {
    "name": "api",
    "objective": 99.5,
    "window": "7d",
    "sli": {"kind": "latency", "selector": 'job="api"', "convention": "otel", "threshold": 0.5},
}


@pytest.fixture
def project(project_dir: Path) -> Path:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    (project_dir / "stack.yaml").write_text(_settings_text(free_port(), {"slos": [SLO]}))
    return project_dir


def _ready(runtime: object, component: str) -> bool:
    try:
        return runtime.http(component, "http", "/-/ready", timeout=2).status == 200  # type: ignore[attr-defined]
    except (ConnectionError, TimeoutError):
        return False


def test_prometheus_and_alertmanager_start_without_a_deprecation_warning(project: Path) -> None:
    runtime = open_runtime(project)
    try:
        runtime.up()
        for component in ("prometheus", "alertmanager"):
            assert poll_until(lambda c=component: _ready(runtime, c), 30, interval=0.2), f"{component} not ready"
        # Rule files are loaded by then; give a rule evaluation a moment to log.
        logs = {
            component: (runtime.logs_dir / f"{component}.log").read_text()
            for component in ("prometheus", "alertmanager")
        }
    finally:
        runtime.down(volumes=True, timeout=5)
    assert processes_under(project) == []
    assert "Server is ready to receive web requests" in logs["prometheus"]
    assert "Completed loading of configuration file" in logs["prometheus"]
    for component, text in logs.items():
        flagged = [line for line in text.splitlines() if DEPRECATED.search(line)]
        assert not flagged, f"{component}: {flagged}"
        errors = [line for line in text.splitlines() if "level=error" in line]
        assert not errors, f"{component}: {errors}"


@pytest.mark.parametrize("mode", ["files", "internal"])
def test_caddy_starts_on_the_proxy_config_without_a_deprecation_warning(tmp_path: Path, mode: str) -> None:
    from stack.render import render_project
    from stack.settings import parse_settings
    from tests.settings.test_server_profile import _caddy, _caddy_config

    server: dict[str, object] = {"hostname": "grafana.test", "tls": {"mode": mode}}
    if mode == "files":
        server["tls"] = {"mode": mode, "cert_file": "c", "key_file": "k"}
    project = render_project(parse_settings({"profile": "server", "server": server}))
    ports = {"http": free_port(), "https": free_port(), "health": free_port()}
    config = _caddy_config(project.configs["proxy"][0].content, ports, free_port())
    with _caddy(config, tmp_path, ports["health"]):
        pass
    log = (tmp_path / "caddy.log").read_text()
    assert '"msg":"serving initial configuration"' in log
    flagged = [line for line in log.splitlines() if DEPRECATED.search(line)]
    assert not flagged, flagged
    # Nothing of this machine is changed: the local CA's root is not installed into its trust store.
    assert "installing root certificate" not in log


def test_loki_starts_without_a_deprecation_warning_and_is_ready_in_moments(project_dir: Path) -> None:
    if shutil.which("loki") is None:
        pytest.skip("no loki on PATH: no Debian package has it (its releases, or a build from its Go module)")
    data = yaml.safe_load(_settings_text(free_port()))
    data["components"] = {name: {"enabled": name == "loki"} for name in data["components"]}
    data["components"]["loki"] = {"port": free_port()}
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(data))
    runtime = open_runtime(project_dir)
    try:
        started = time.monotonic()
        runtime.up()

        def ready() -> bool:
            try:
                return runtime.http("loki", "http", "/ready", timeout=2).status == 200
            except (ConnectionError, TimeoutError):
                return False

        assert poll_until(ready, 30, interval=0.1), "loki not ready"
        # One node: its ingesters' and pattern ingester's lifecyclers (15 s each by default) and the
        # scheduler found through the ring (8 s) held /ready back; measured 30 s untuned, 10 s
        # with only the lifecyclers tuned, 2.4 s now.
        assert time.monotonic() - started < 8
        query = "/loki/api/v1/query_range?query=%7Bservice_name%3D%22x%22%7D&limit=1"
        assert runtime.http("loki", "http", query, timeout=10).status == 200  # a querier is connected
        log = (runtime.logs_dir / "loki.log").read_text()
    finally:
        runtime.down(volumes=True, timeout=5)
    assert processes_under(project_dir) == []
    flagged = [line for line in log.splitlines() if DEPRECATED.search(line) or "level=warn" in line]
    assert not flagged, flagged
