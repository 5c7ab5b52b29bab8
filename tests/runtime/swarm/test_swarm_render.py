"""The stack rendered for Swarm (`docker stack deploy`), without an engine: placement, update policy,
content-hashed configs, host-mode ports, and configs the real Prometheus accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.paths import Paths
from stack.runtime.base import ServiceState
from stack.runtime.swarm import service_state
from stack.runtime.swarmrender import render_swarm, swarm_dir, write_swarm
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import parse_settings
from tests.conftest import invoke, require_tool
from tests.support.images import binary_version


def _settings(**extra: Any) -> Any:
    data: dict[str, Any] = {"project": "obs", "runtime": "swarm", **extra}
    return parse_settings(data)


def _stack(paths: Paths, **extra: Any) -> dict[str, Any]:
    swarm = render_swarm(_settings(**extra), paths)
    return yaml.safe_load(swarm.text())


def test_the_collector_is_global_and_the_backends_run_once_on_the_backend_node(paths: Paths) -> None:
    services = _stack(paths)["services"]
    assert services["otel-collector"]["deploy"]["mode"] == "global"
    assert "placement" not in services["otel-collector"]["deploy"]
    for name in ("prometheus", "loki", "tempo", "grafana", "alertmanager"):
        deploy = services[name]["deploy"]
        assert deploy["mode"] == "replicated" and deploy["replicas"] == 1
        assert "node.labels.stack.role == backend" in deploy["placement"]["constraints"]
        assert deploy["update_config"]["order"] == "stop-first"
        assert deploy["update_config"]["failure_action"] == "rollback"
        assert "depends_on" not in services[name] and "restart" not in services[name]
    # Swarm discovery needs a manager's API.
    assert "node.role == manager" in services["prometheus"]["deploy"]["placement"]["constraints"]


def test_ports_are_published_in_host_mode_without_host_ip(paths: Paths) -> None:
    services = _stack(paths)["services"]
    ports = services["otel-collector"]["ports"]
    assert {port["target"] for port in ports} == {4317, 4318, 13133}
    assert all(port["mode"] == "host" and "host_ip" not in port for port in ports)
    assert "ports" not in services["prometheus"]


def test_every_signal_carries_the_node_name(paths: Paths) -> None:
    swarm = render_swarm(_settings(), paths)
    collector = yaml.safe_load(swarm.files["configs/otel-collector-config"])
    assert collector["processors"]["resource/node"]["attributes"][0] == {
        "key": "host.name",
        "value": "${env:STACK_NODE_NAME:-unknown}",
        "action": "upsert",
    }
    for pipeline in collector["service"]["pipelines"].values():
        assert pipeline["processors"][:2] == ["memory_limiter", "resource/node"]
    service = yaml.safe_load(swarm.text())["services"]["otel-collector"]
    assert service["environment"]["STACK_NODE_NAME"] == "{{.Node.Hostname}}"
    # Container logs are named by their Swarm service, read from the engine's data root.
    assert "com.docker.swarm.service.name" in swarm.files["configs/otel-collector-config"]
    assert "/var/lib/docker/containers:/var/lib/docker/containers:ro" in service["volumes"]


def test_prometheus_discovers_the_collectors_through_swarm_and_runs_as_root_for_the_socket(paths: Paths) -> None:
    swarm = render_swarm(_settings(swarm={"docker_socket": "/run/docker.sock"}), paths)
    prometheus = yaml.safe_load(swarm.files["configs/prometheus-config"])
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    collector = jobs["otel-collector"]
    assert collector["dockerswarm_sd_configs"] == [
        {"host": "unix:///var/run/docker.sock", "role": "tasks", "port": 8888}
    ]
    assert {"source_labels": ["__meta_dockerswarm_node_hostname"], "target_label": "node"} in collector[
        "relabel_configs"
    ]
    assert "swarm_services" in jobs
    service = yaml.safe_load(swarm.text())["services"]["prometheus"]
    assert service["user"] == "0"
    assert "/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]


def test_without_a_socket_there_is_no_discovery_and_no_root(paths: Paths) -> None:
    swarm = render_swarm(_settings(swarm={"docker_socket": ""}), paths)
    prometheus = yaml.safe_load(swarm.files["configs/prometheus-config"])
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert "static_configs" in jobs["otel-collector"] and "swarm_services" not in jobs
    service = yaml.safe_load(swarm.text())["services"]["prometheus"]
    assert "user" not in service
    assert "node.role == manager" not in service["deploy"]["placement"]["constraints"]


def test_a_changed_collector_setting_renames_only_the_collector_config(paths: Paths) -> None:
    before = _stack(paths)["configs"]
    after = _stack(paths, components={"otel-collector": {"sampling_ratio": 0.5}})["configs"]
    changed = {key for key in before if before[key]["name"] != after[key]["name"]}
    assert changed == {"otel-collector-config"}
    assert all("content" not in config and config["file"].startswith("./configs/") for config in after.values())


def test_the_grafana_password_is_a_file_secret_never_in_the_stack_file(paths: Paths) -> None:
    swarm = render_swarm(_settings(), paths)
    secret = yaml.safe_load(swarm.text())["secrets"]["grafana_admin_password"]
    password = SecretStore.for_paths(paths).get(GRAFANA_ADMIN_PASSWORD) or "missing"
    assert Path(secret["file"]) == SecretStore.for_paths(paths).path(GRAFANA_ADMIN_PASSWORD).resolve()
    assert password not in swarm.text()
    assert all(password not in text for text in swarm.files.values())


def test_the_proxy_is_refused_on_swarm_with_one_line(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("runtime: swarm\nprofile: server\nserver: {hostname: example.org}\n")
    result = invoke("render", "--runtime", "swarm")
    assert result.exit_code == 2, result.output
    assert "components.proxy: the TLS proxy does not run on Swarm yet" in result.output


def test_a_bad_backend_label_is_one_line(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("runtime: swarm\nswarm: {backend_label: backend}\n")
    result = invoke("render")
    assert result.exit_code == 2
    assert "swarm.backend_label" in result.output and "key=value" in result.output
    assert "Traceback" not in result.output


def test_the_rendered_prometheus_config_passes_promtool(paths: Paths) -> None:
    promtool = require_tool("promtool")
    out = swarm_dir(paths)
    # Rendered for the Prometheus that promtool comes with (the config differs from 3.x on).
    version = binary_version([promtool, "--version"])
    write_swarm(
        render_swarm(_settings(components={"prometheus": {"image": f"prom/prometheus:v{version}"}}), paths), out
    )
    done = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(out / "configs" / "prometheus-config")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_write_removes_configs_no_longer_rendered(paths: Paths) -> None:
    out = swarm_dir(paths)
    write_swarm(render_swarm(_settings(), paths), out)
    assert (out / "configs" / "loki-config").exists()
    write_swarm(render_swarm(_settings(components={"loki": {"enabled": False}}), paths), out)
    assert not (out / "configs" / "loki-config").exists()
    assert (out / "stack.yaml").exists()


def _task(
    state: str,
    *,
    err: str = "",
    desired: str = "running",
    updated: str = "2026-01-01T00:00:01Z",
    created: str = "2026-01-01T00:00:01Z",
    node: str = "node0123456789ab",
) -> dict:
    return {
        "DesiredState": desired,
        "CreatedAt": created,
        "UpdatedAt": updated,
        "NodeID": node,
        "Status": {"State": state, "Err": err, "Timestamp": "2026-01-01T00:00:00Z"},
    }


SERVICE = {"Spec": {"Mode": {"Replicated": {"Replicas": 1}}, "TaskTemplate": {"ContainerSpec": {"Image": "x:1@sha"}}}}


def test_service_state_names_the_task_error() -> None:
    taken = "no suitable node (host-mode port already in use on 1 node)"
    state = service_state("alertmanager", SERVICE, [_task("pending", err=taken)])
    assert state.state == "failed" and taken in (state.error or "")
    exits = [_task("failed", err="task: non-zero exit (1)", desired="shutdown") for _ in range(2)]
    failed = service_state("alertmanager", SERVICE, exits)
    assert failed.state == "failed" and "non-zero exit (1) on node node01234567" in (failed.error or "")
    assert service_state("alertmanager", SERVICE, [_task("running")]).running
    assert service_state("alertmanager", None, []) == ServiceState(name="alertmanager", state="missing")


def test_a_task_that_failed_once_is_still_starting_while_swarm_replaces_it() -> None:
    # Seen on the test engine (moby/moby#48783): one start fails, Swarm's restart policy starts another
    # 5 s later. `stack up` failed on it at once; only the same slot failing again is final.
    remount = "starting container failed: unable to remount dir as readonly: device or resource busy"
    service = {**SERVICE, "UpdatedAt": "2026-01-01T00:00:00.5Z"}
    once = [_task("failed", err=remount, desired="shutdown", created="2026-01-01T00:00:01Z")]
    state = service_state("prometheus", service, once)
    assert state.state == "starting" and remount in (state.error or "")
    again = [*once, _task("failed", err=remount, desired="shutdown", created="2026-01-01T00:00:07Z")]
    assert service_state("prometheus", service, again).state == "failed"
    # A failure before the last deploy does not count against the deployed service.
    old = [_task("failed", err=remount, desired="shutdown", created="2025-12-31T23:59:00Z")]
    assert service_state("prometheus", service, [*old, *once]).state == "starting"
    # Each slot (each node, for a global service) has its own count.
    other = [_task("failed", err=remount, desired="shutdown", created="2026-01-01T00:00:02Z", node="othernode0123")]
    assert service_state("prometheus", service, [*once, *other]).state == "starting"


def test_the_failed_state_is_one_line_for_readiness() -> None:
    from stack.health import describe_state

    state = ServiceState(name="x", state="failed", error="host-mode port already in use on 1 node")
    assert describe_state(state) == "failed: host-mode port already in use on 1 node"


@pytest.mark.parametrize("runtime", ["swarm"])
def test_runtime_option_takes_swarm(project_dir: Path, runtime: str) -> None:
    result = invoke("render", "--runtime", runtime)
    assert result.exit_code == 0, result.output


def test_the_swarm_collector_config_passes_the_real_collector() -> None:
    from stack.components.base import RenderContext, SwarmTopology
    from stack.render import render_project
    from stack.validate import Status, check_collector
    from tests.support import realcollector

    realcollector.binary()
    for data in ({}, {"components": {"otel-collector": {"host_metrics": True, "sampling_ratio": 0.5}}}):
        settings = _settings(**data)
        check = check_collector(render_project(settings, RenderContext(settings=settings, topology=SwarmTopology())))
        assert check.status is Status.PASSED, check.detail
