"""Configs rendered for local processes: 127.0.0.1, this machine's ports and paths, real tools agree."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.components import REGISTRY
from stack.errors import StackError
from stack.runtime.process.binaries import read_version
from stack.runtime.process.plan import plan_processes
from stack.runtime.process.ports import assign_ports
from stack.settings import COMPONENT_NAMES, Settings, parse_settings
from tests.conftest import require_tool

ROOT = Path("/srv/stack-root")
SECRETS = Path("/srv/secrets")


def _plans(  # type: ignore[no-untyped-def]
    settings: Settings, ports: dict[str, dict[str, int]] | None = None, versions: dict[str, str] | None = None
):
    ports = ports or assign_ports(settings, {}, set())
    binaries = {name: (f"/opt/bin/{name}", ()) for name in settings.enabled()}
    environ = {"PATH": "/usr/bin", "GF_SMTP_HOST": "x"}
    return ports, plan_processes(settings, ROOT, SECRETS, ports, binaries, environ, versions=versions)


def _everything(plan) -> str:  # type: ignore[no-untyped-def]
    return "\n".join([*plan.argv, *plan.env.values(), *plan.files.values(), *map(str, plan.files)])


def test_every_port_is_distinct_and_published_ones_are_the_configured_ones() -> None:
    settings = Settings()
    ports, plans = _plans(settings)
    numbers = [port for given in ports.values() for port in given.values()]
    assert len(numbers) == len(set(numbers))
    assert ports["alertmanager"]["http"] == 9093
    assert ports["otel-collector"]["otlp_grpc"] == 4317
    # Tempo's OTLP ports cannot be the Collector's: they got others.
    assert ports["tempo"]["otlp_grpc"] not in (4317, 4318)
    assert set(plans) == set(COMPONENT_NAMES)


def test_nothing_points_at_service_names_or_container_paths_and_all_listen_on_loopback() -> None:
    _, plans = _plans(Settings())
    for name, plan in plans.items():
        text = _everything(plan)
        assert "0.0.0.0" not in text, name
        for other in COMPONENT_NAMES:
            assert not re.search(rf"(?<![\w/-]){other}:\d", text), (name, other)
        for container_path in REGISTRY[name].state.values():
            assert f"={container_path}" not in text and f": {container_path}" not in text, (name, container_path)
        assert "/etc/" not in re.sub(rf"{ROOT}\S*", "", text), name
        assert all(host == "127.0.0.1" for _, host, _ in plan.listen), name
        # The user's environment does not leak into a component's configuration.
        assert "GF_SMTP_HOST" not in plan.env
    assert plans["grafana"].env["GF_SECURITY_ADMIN_PASSWORD"] == f"$__file{{{SECRETS / 'grafana-admin-password'}}}"
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in plans["grafana"].env
    assert plans["grafana"].env["GF_PATHS_DATA"] == str(ROOT / "grafana" / "data")
    tempo = plans["tempo"].files[ROOT / "tempo/rendered/etc/tempo/config.yaml"]
    assert "path: /srv/stack-root/tempo/data/wal" in tempo


def test_published_ports_follow_bind_address_and_internal_ones_stay_on_loopback() -> None:
    settings = parse_settings(
        {"bind_address": "0.0.0.0", "server": {"allow_plain_http": True}, "components": {"loki": {"port": 13100}}}
    )
    _, plans = _plans(settings)
    assert ("http", "0.0.0.0", 13100) in plans["loki"].listen
    assert {port: host for port, host, _ in plans["loki"].listen}["grpc"] == "127.0.0.1"
    assert plans["prometheus"].listen == [("http", "127.0.0.1", plans["prometheus"].listen[0][2])]
    assert any(arg.startswith("--web.listen-address=127.0.0.1:") for arg in plans["prometheus"].argv)
    collector = next(iter(plans["otel-collector"].files.values()))
    assert "endpoint: 0.0.0.0:4317" in collector
    assert "host: 127.0.0.1" in collector  # its own metrics stay internal


def test_assigned_ports_avoid_taken_ones_and_stay_stable() -> None:
    settings = parse_settings({"components": {name: {"enabled": name == "prometheus"} for name in COMPONENT_NAMES}})
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = assign_ports(settings, {"prometheus": {"http": taken}}, set())
        assert ports["prometheus"]["http"] != taken
        # A running component keeps its port even though it is (by itself) in use.
        assert assign_ports(settings, {"prometheus": {"http": taken}}, {"prometheus"}) == {
            "prometheus": {"http": taken}
        }


def test_the_local_configs_are_accepted_by_promtool_and_amtool(tmp_path: Path) -> None:
    promtool, amtool = require_tool("promtool"), require_tool("amtool")
    # Rendered for the binaries' versions, as the runtime does (Debian's Prometheus is 2.x).
    versions = {"prometheus": read_version(promtool, "--version"), "alertmanager": read_version(amtool, "--version")}
    _, plans = _plans(Settings(), versions={name: version for name, version in versions.items() if version})
    for name, tool, verb in (("prometheus", promtool, ["check", "config"]), ("alertmanager", amtool, ["check-config"])):
        for path, content in plans[name].files.items():
            local = tmp_path / path.relative_to("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(content)
        main = tmp_path / next(iter(plans[name].files)).relative_to("/")
        if name == "prometheus":
            # rule_files names the real directory: point it at the copy.
            main.write_text(main.read_text().replace(str(ROOT), str(tmp_path / ROOT.relative_to("/"))))
        done = subprocess.run([tool, *verb, str(main)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("component", COMPONENT_NAMES)
def test_each_component_gets_its_own_directories(component: str) -> None:
    _, plans = _plans(Settings())
    plan = plans[component]
    assert plan.cwd == ROOT / component
    assert all(str(path).startswith(str(ROOT / component)) for path in plan.files)


def test_receiver_secrets_become_private_files_and_a_missing_one_is_named(tmp_path: Path) -> None:
    settings = parse_settings(
        {"alerting": {"receivers": {"team": {"slack": {"api_url": {"env": "STACK_TEST_SLACK"}, "channel": "#x"}}}}}
    )
    ports = assign_ports(settings, {}, set())
    binaries = {name: (f"/opt/bin/{name}", ()) for name in settings.enabled()}
    env = {"PATH": "/usr/bin", "STACK_TEST_SLACK": "https://hooks.slack.example/T0/B0/XYZ"}
    plans = plan_processes(settings, ROOT, SECRETS, ports, binaries, env)
    alertmanager = plans["alertmanager"]
    secret = ROOT / "alertmanager/rendered/run/secrets/alertmanager-team-slack-api-url"
    assert alertmanager.files[secret] == env["STACK_TEST_SLACK"]
    config = next(content for path, content in alertmanager.files.items() if path.name == "alertmanager.yml")
    assert f"api_url_file: {secret}" in config
    assert env["STACK_TEST_SLACK"] not in config
    with pytest.raises(StackError, match="STACK_TEST_SLACK, which is not set"):
        plan_processes(settings, ROOT, SECRETS, ports, binaries, {"PATH": "/usr/bin"})


def test_a_specific_bind_address_is_where_others_reach_published_ports() -> None:
    settings = parse_settings({"bind_address": "10.1.2.3", "components": {"grafana": {"port": None}}})
    _, plans = _plans(settings)
    assert ("http", "10.1.2.3", 9093) in plans["alertmanager"].listen
    prometheus = next(iter(plans["prometheus"].files.values()))
    assert "10.1.2.3:9093" in prometheus  # Alertmanager, published on that address
    grafana = next(iter(plans["grafana"].files.values()))
    assert "url: http://127.0.0.1:" in grafana  # Prometheus, internal
    assert "url: http://10.1.2.3:3100" in grafana  # Loki, published


def test_the_proxy_runs_caddy_with_its_json_config_and_storage() -> None:
    settings = parse_settings({"components": {"proxy": {"enabled": True}}, "server": {"hostname": "obs.example.com"}})
    _, plans = _plans(settings)
    proxy = plans["proxy"]
    assert proxy.argv[1:3] == ["run", "--config"]
    config = json.loads(next(iter(proxy.files.values())))
    servers = config["apps"]["http"]["servers"]
    health = {port: host for port, host, _ in proxy.listen}["health"]
    assert health == "127.0.0.1"
    assert servers["health"]["listen"][0].startswith("127.0.0.1:")
    assert servers["grafana"]["routes"][0]["handle"][0]["routes"][1]["handle"][1]["upstreams"] == [
        {"dial": "127.0.0.1:3000"}
    ]
    assert proxy.env["XDG_DATA_HOME"] == str(ROOT / "proxy" / "data")
    # Prometheus scrapes Caddy's metrics on that same internal listener.
    prometheus = yaml.safe_load(next(iter(plans["prometheus"].files.values())))
    job = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "proxy")
    assert job["static_configs"][0]["targets"] == [servers["health"]["listen"][0]]
    assert job["metrics_path"] == "/metrics"


def test_prometheus_file_sd_directory_is_a_directory_of_its_own() -> None:
    # In a container it is the `targets` volume; a process gets a directory that exists, or
    # Prometheus logs an error for the missing file watch at every start.
    _, plans = _plans(Settings())
    plan = plans["prometheus"]
    assert ROOT / "prometheus" / "targets" in plan.dirs
    config = yaml.safe_load(next(iter(plan.files.values())))
    file_sd = next(job for job in config["scrape_configs"] if job["job_name"] == "file_sd")
    assert file_sd["file_sd_configs"][0]["files"][0] == f"{ROOT}/prometheus/targets/*.yml"


def test_a_process_is_watched_only_on_the_ports_it_listens_on() -> None:
    # The Collector's frontend receiver is rendered only when `frontend` is on. Watched for anyway,
    # its port never answered and `stack up` waited out the 15 s start-up cap on every run.
    _, plans = _plans(Settings())
    assert "frontend" not in {name for name, _, _ in plans["otel-collector"].listen}
    assert {name for name, _, _ in plans["otel-collector"].listen} == {"otlp_grpc", "otlp_http", "health", "metrics"}
    on = parse_settings(
        {"components": {"otel-collector": {"frontend": {"enabled": True, "cors_origins": ["https://app.example.com"]}}}}
    )
    _, plans = _plans(on)
    assert "frontend" in {name for name, _, _ in plans["otel-collector"].listen}


@pytest.mark.parametrize("bind", ["127.0.0.1", "::1", "0.0.0.0"])
def test_loki_reaches_its_own_scheduler_where_its_grpc_listens(bind: str) -> None:
    # Given another gRPC port than the image's 9096 (taken here, say).
    settings = parse_settings({"bind_address": bind, "server": {"allow_plain_http": True}})
    ports = assign_ports(settings, {}, set())
    ports["loki"]["grpc"] = 19096
    _, plans = _plans(settings, ports)
    config = yaml.safe_load(plans["loki"].files[ROOT / "loki/rendered/etc/loki/config.yaml"])
    host = config["server"]["grpc_listen_address"]
    own = f"[{host}]:19096" if ":" in host else f"{host}:19096"
    assert config["server"]["grpc_listen_port"] == 19096
    assert config["frontend"]["scheduler_address"] == own
    assert config["frontend_worker"]["scheduler_address"] == own
