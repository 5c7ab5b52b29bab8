"""The Docker boundary: exact compose invocations and the handling of what docker prints,
against a stand-in `docker` executable that plays back recorded output (tests/support/fake_docker.py)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.errors import RuntimeUnavailable, StackError
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.runtime.docker import DockerRuntime, PullProgress, explain, parse_compose_ps
from stack.settings import Settings, parse_settings
from tests.conftest import invoke
from tests.support.fake_docker import FakeDocker, all_running, install, loki_only, only_enabled, port_of, recorded
from tests.support.fake_engine import FakeEngine, fake_engine
from tests.support.httpservers import http_server


@pytest.fixture
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeEngine]:
    with fake_engine(tmp_path_factory.mktemp("engine")) as running:
        running.images.update(Settings().component(name).image for name in Settings().enabled())
        yield running


@pytest.fixture
def fake_docker(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, engine: FakeEngine
) -> FakeDocker:
    return install(tmp_path_factory.mktemp("fake-docker"), monkeypatch, engine.url)


ENGINE_DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
PORT_IN_USE = (
    " Network observability_default  Created\n"
    " Container observability-grafana-1  Starting\n"
    "Error response from daemon: driver failed programming external connectivity on endpoint "
    "observability-grafana-1 (0c1f...): Bind for 127.0.0.1:3000 failed: port is already allocated\n"
)
PULL_FAILED = (
    " grafana Pulling \n"
    " grafana Error manifest for grafana/grafana:13.9.9 not found: manifest unknown: manifest unknown\n"
    "Error response from daemon: manifest for grafana/grafana:13.9.9 not found: manifest unknown: manifest unknown\n"
)


def compose_prefix(paths: Paths) -> list[str]:
    return [
        "compose",
        "--file",
        str(paths.compose_file),
        "--project-name",
        "observability",
        "--project-directory",
        str(paths.render_dir),
    ]


def test_docker_runtime_is_a_runtime(paths: Paths) -> None:
    assert isinstance(DockerRuntime(Settings(), paths), Runtime)


def test_engine_down_is_one_line_pointing_at_the_process_runtime(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["version", "--format"], "stderr": ENGINE_DOWN, "rc": 1})
    result = invoke("up")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no Docker engine answers at unix:///var/run/docker.sock "
        "(hint: start Docker, or run without it: stack up --runtime process --skip-missing)\n"
    )
    assert result.stdout == ""
    # Nothing written, nothing started.
    assert sorted(p.name for p in project_dir.iterdir()) == []
    assert fake_docker.compose_calls("up") == []


def test_ssh_host_unreachable(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario(
        {
            "when": ["--host", "ssh://ops@server", "version"],
            "stderr": 'error during connect: Get "http://docker.example.com/v1.50/version": command [ssh -o '
            "ConnectTimeout=30 -T -l ops -- server docker system dial-stdio] has exited with exit status 255, "
            "make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: "
            "stderr=ssh: connect to host server port 22: Connection refused\n",
            "rc": 1,
        }
    )
    result = invoke("status", "--host", "ssh://ops@server")
    assert result.exit_code == 1
    # The connection is what failed: ssh's own words, and a hint about the connection, not "start Docker".
    assert result.stderr.startswith(
        "Error: cannot reach the Docker engine at ssh://ops@server over SSH: "
        "ssh: connect to host server port 22: Connection refused (hint: check the SSH connection: "
        "`ssh ops@server docker version` must work"
    )
    assert result.stderr.count("\n") == 1
    assert "start Docker" not in result.stderr
    assert fake_docker.calls()[0][:2] == ["--host", "ssh://ops@server"]


def test_compose_plugin_missing_or_too_old(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario(
        {"when": ["version", "--format"], "stdout": "28.2.2\n"},
        {"when": ["compose", "version"], "stderr": "docker: unknown command: docker compose\n", "rc": 1},
        engine_ok=False,
    )
    result = invoke("up")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the docker compose plugin is not installed (hint: install docker-compose-plugin "
        "(Compose v2 >= 2.23.1), or run: stack up --runtime process --skip-missing)\n"
    )
    fake_docker.scenario(
        {"when": ["version", "--format"], "stdout": "24.0.5\n"},
        {"when": ["compose", "version", "--short"], "stdout": "v2.20.2\n"},
        engine_ok=False,
    )
    result = invoke("up")
    assert result.stderr == (
        "Error: docker compose v2.20.2 is too old (stack needs >= 2.23.1) (hint: upgrade the docker compose plugin)\n"
    )


def test_status_reports_the_check_failure_though_ps_ran_beside_it(project_dir: Path, fake_docker: FakeDocker) -> None:
    # status runs `compose ps` beside the check's two calls: the check's failure is still the one said.
    ps = {"when": ["compose", "ps"], "stderr": "compose ps: this error must not be shown\n", "rc": 1}
    fake_docker.scenario({"when": ["version", "--format"], "stderr": ENGINE_DOWN, "rc": 1}, ps)
    result = invoke("status", "--json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("Error: no Docker engine answers at unix:///var/run/docker.sock (hint: ")
    fake_docker.scenario(
        {"when": ["version", "--format"], "stdout": "24.0.5\n"},
        {"when": ["compose", "version", "--short"], "stdout": "v2.20.2\n"},
        {"when": ["compose", "ps"], "stdout": recorded("ps-all-running.jsonl")},
        {"when": ["container", "inspect"], "stdout": recorded("inspect-all-running.json")},
        engine_ok=False,
    )
    result = invoke("status", "--json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: docker compose v2.20.2 is too old (stack needs >= 2.23.1) (hint: upgrade the docker compose plugin)\n"
    )


def test_docker_cli_missing(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(project_dir))
    result = invoke("status")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the docker command is not installed (hint: install Docker, or start Docker, "
        "or run without it: stack up --runtime process --skip-missing)\n"
    )


def test_up_invocation_and_its_secret_environment(paths: Paths, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["compose", "up"]})
    from stack.project import render_to_disk

    render_to_disk(paths)
    runtime = DockerRuntime(Settings(), paths)
    runtime.check()
    runtime.up()
    [up] = fake_docker.compose_calls("up")
    assert up == [*compose_prefix(paths), "up", "--detach", "--remove-orphans", "--pull", "missing"]
    record = next(r for r in fake_docker.records() if "up" in r["argv"])
    assert record["password_set"] is True
    runtime.up(pull=False, services=["grafana"])
    assert fake_docker.compose_calls("up")[-1][-5:] == ["up", "--detach", "--pull", "never", "grafana"]
    # The password itself never appears on a command line.
    password = (paths.secrets_dir / "grafana-admin-password").read_text().strip()
    assert all(password not in " ".join(argv) for argv in fake_docker.calls())


def test_up_port_in_use(paths: Paths, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["compose", "up"], "stderr": PORT_IN_USE, "rc": 1})
    with pytest.raises(StackError) as caught:
        DockerRuntime(Settings(), paths).up()
    assert caught.value.one_line() == (
        "port 3000 on 127.0.0.1 is already in use "
        "(hint: stop what uses it, or set components.grafana.port to a free port in stack.yaml)"
    )


def test_up_pull_failure(paths: Paths, fake_docker: FakeDocker) -> None:
    settings = parse_settings({"components": {"grafana": {"image": "grafana/grafana:13.9.9"}}})
    fake_docker.scenario({"when": ["compose", "up"], "stderr": PULL_FAILED, "rc": 18})
    with pytest.raises(StackError) as caught:
        DockerRuntime(settings, paths).up()
    assert caught.value.one_line() == (
        "cannot pull grafana/grafana:13.9.9: manifest for grafana/grafana:13.9.9 not found: manifest unknown: "
        "manifest unknown (hint: check components.grafana.image in stack.yaml and that the registry is reachable)"
    )


def test_unknown_failure_keeps_the_error_line() -> None:
    error = explain("some progress\nError response from daemon: no space left on device\n", Settings(), action="x")
    assert error.one_line() == "x failed: Error response from daemon: no space left on device"
    assert not isinstance(error, RuntimeUnavailable)


def test_ps_parses_recorded_payloads(paths: Paths, fake_docker: FakeDocker) -> None:
    fake_docker.scenario(
        {
            "when": ["compose", "ps", "--all", "--format", "json"],
            "stdout": recorded("ps-loki-restarting-tempo-oom.jsonl"),
        },
        {"when": ["container", "inspect"], "stdout": recorded("inspect-loki-restarting-tempo-oom.json")},
    )
    states = {s.name: s for s in DockerRuntime(Settings(), paths).ps()}
    assert list(states) == ["otel-collector", "prometheus", "loki", "tempo", "grafana", "alertmanager"]
    assert states["loki"].state == "restarting" and states["loki"].exit_code == 1
    assert states["tempo"].state == "exited" and states["tempo"].oom_killed and states["tempo"].exit_code == 137
    assert states["grafana"].running and states["grafana"].image == "grafana/grafana:13.2.0"
    assert states["grafana"].started_at is not None and states["grafana"].started_at.year == 2026
    inspect_call = next(argv for argv in fake_docker.calls() if "inspect" in argv)
    assert len(inspect_call) == 2 + 6  # one call for every container


def test_ps_of_a_project_never_started_and_the_legacy_format(paths: Paths, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["compose", "ps"], "stdout": ""})
    states = DockerRuntime(Settings(), paths).ps()
    assert {s.state for s in states} == {"missing"}
    # Without a rendered file, compose is addressed by project name only.
    assert fake_docker.compose_calls("ps")[0][:3] == ["compose", "--project-name", "observability"]
    legacy = parse_compose_ps(recorded("ps-legacy-array.json"))
    assert legacy[0]["Service"] == "grafana" and legacy[0]["State"] == "running"


def test_down_and_logs_invocations(paths: Paths, fake_docker: FakeDocker) -> None:
    fake_docker.scenario(
        {"when": ["compose", "down"]},
        {"when": ["compose", "logs"], "stdout": "ts=1 level=info msg=ready\nts=2 level=warn msg=slow\n"},
    )
    runtime = DockerRuntime(Settings(), paths)
    runtime.down()
    runtime.down(volumes=True, timeout=5)
    downs = fake_docker.compose_calls("down")
    assert downs[0][-4:] == ["down", "--remove-orphans", "--timeout", "30"]
    assert downs[1][-5:] == ["down", "--remove-orphans", "--timeout", "5", "--volumes"]
    lines = list(runtime.logs("loki", tail=30, since="10m"))
    assert lines == ["ts=1 level=info msg=ready", "ts=2 level=warn msg=slow"]
    assert fake_docker.compose_calls("logs")[0][-8:] == [
        "logs",
        "--no-color",
        "--tail",
        "30",
        "--since",
        "10m",
        "--no-log-prefix",
        "loki",
    ]
    # `stack logs -f` with no service: every service, prefixed, followed.
    assert list(runtime.logs(follow=True)) == lines
    assert fake_docker.compose_calls("logs")[1][-3:] == ["logs", "--no-color", "--follow"]


def test_stop_and_start_invocations(paths: Paths, fake_docker: FakeDocker) -> None:
    """What `stack restore` runs around replacing state: stop with a timeout, then start (not up:
    nothing is recreated)."""
    fake_docker.scenario({"when": ["compose", "stop"]}, {"when": ["compose", "start"]})
    runtime = DockerRuntime(Settings(), paths)
    runtime.stop(["prometheus", "loki"], timeout=12.7)
    runtime.start(["prometheus", "loki"])
    assert fake_docker.compose_calls("stop")[0][-5:] == ["stop", "--timeout", "12", "prometheus", "loki"]
    assert fake_docker.compose_calls("start")[0][-3:] == ["start", "prometheus", "loki"]
    assert not fake_docker.compose_calls("up")


def test_unpublished_port_is_reached_from_inside_the_network(paths: Paths, fake_docker: FakeDocker) -> None:
    # Recorded busybox wget output: headers on stderr (-S), body on stdout.
    fake_docker.scenario(
        {
            "when": ["compose", "exec", "-T", "prometheus", "wget"],
            "stdout": '{"status":"success","data":{"name":"20261128T150501Z-5b8c2e0f1b2a3c4d"}}',
            "stderr": "  HTTP/1.1 200 OK\n  Content-Type: application/json\n  Date: Sat, 28 Nov 2026 15:05:01 GMT\n",
        }
    )
    runtime = DockerRuntime(Settings(), paths)
    assert runtime.base_url("prometheus", "http") is None
    reply = runtime.http("prometheus", "http", "/api/v1/admin/tsdb/snapshot", method="POST", body=b"")
    assert reply.status == 200
    assert json.loads(reply.body)["status"] == "success"
    assert reply.headers["content-type"] == "application/json"
    [call] = fake_docker.compose_calls("exec")
    assert call == [
        *compose_prefix(paths)[:1],
        "--project-name",
        "observability",
        "exec",
        "-T",
        "prometheus",
        "wget",
        "-S",
        "-q",
        "-O",
        "-",
        "--post-data",
        "",
        "http://127.0.0.1:9090/api/v1/admin/tsdb/snapshot",
    ]
    # A shell-less image with an unpublished port is reached from a sibling that has wget.
    settings = parse_settings({"components": {"loki": {"port": None}}})
    fake_docker.scenario(
        {
            "when": ["compose", "exec", "-T", "prometheus", "wget"],
            "stderr": "wget: server returned error: HTTP/1.1 503 Service Unavailable\n",
            "rc": 1,
        }
    )
    reply = DockerRuntime(settings, paths).http("loki", "http", "/ready")
    assert reply.status == 503
    assert fake_docker.compose_calls("exec")[-1][-1] == "http://loki:3100/ready"
    fake_docker.scenario(
        {
            "when": ["compose", "exec"],
            "stderr": "wget: can't connect to remote host (127.0.0.1): Connection refused\n",
            "rc": 1,
        }
    )
    with pytest.raises(ConnectionError, match="Connection refused"):
        runtime.http("prometheus", "http", "/-/ready")


def test_published_ports_are_probed_directly(paths: Paths, fake_docker: FakeDocker) -> None:
    with http_server(lambda m, p, b: (200, b"ready")) as url:
        port = int(url.rsplit(":", 1)[1])
        settings = parse_settings({"components": {"loki": {"port": port}}})
        runtime = DockerRuntime(settings, paths)
        assert runtime.base_url("loki", "http") == url
        assert runtime.http("loki", "http", "/ready").status == 200
    assert fake_docker.calls() == []
    assert DockerRuntime(settings, paths, host="ssh://ops@server").base_url("loki", "http") is None


def write_settings(project_dir: Path, text: str) -> None:
    (project_dir / "stack.yaml").write_text(text)


def test_up_with_a_container_exiting_during_start_up(project_dir: Path, fake_docker: FakeDocker) -> None:
    grafana_log = (
        'logger=settings t=2026-11-28T15:02:13Z level=info msg="Starting Grafana" version=13.2.0\n'
        'Error: ✗ failed to parse "/etc/grafana/provisioning/datasources/stack.yaml": yaml: line 4: '
        "mapping values are not allowed in this context\n"
    )
    with http_server(lambda m, p, b: (200, b"ready")) as loki:
        only_enabled(project_dir, {"loki": port_of(loki), "grafana": 1})
        fake_docker.scenario(
            {"when": ["compose", "up"]},
            {
                "when": ["compose", "ps"],
                "replies": [{"stdout": recorded("ps-starting.jsonl")}, {"stdout": recorded("ps-grafana-exited.jsonl")}],
            },
            {
                "when": ["container", "inspect"],
                "replies": [
                    {"stdout": recorded("inspect-starting.json")},
                    {"stdout": recorded("inspect-grafana-exited.json")},
                ],
            },
            {"when": ["compose", "logs", "--tail", "30", "--no-log-prefix", "grafana"], "stdout": grafana_log},
        )
        result = invoke("up", "--timeout", "20")
    assert result.exit_code == 1, result.output
    assert "grafana is not ready: exited with code 1" in result.stderr
    assert "last 2 log lines of grafana:" in result.stderr
    assert "mapping values are not allowed in this context" in result.stderr
    assert "hint: its config was rejected: run `stack validate`" in result.stderr
    assert "Nothing was torn down" in result.stderr
    assert fake_docker.compose_calls("down") == []
    assert (project_dir / ".stack" / "compose.yaml").exists()
    # The same outcome for scripts.
    with http_server(lambda m, p, b: (200, b"ready")) as loki:
        only_enabled(project_dir, {"loki": port_of(loki), "grafana": 1})
        fake_docker.scenario(
            {"when": ["compose", "up"]},
            {"when": ["compose", "ps"], "stdout": recorded("ps-grafana-exited.jsonl")},
            {"when": ["container", "inspect"], "stdout": recorded("inspect-grafana-exited.json")},
            {"when": ["compose", "logs"], "stdout": grafana_log},
        )
        shown = invoke("up", "--json", "--timeout", "20")
    assert shown.exit_code == 1
    outcome = json.loads(shown.stdout)
    assert outcome["ok"] is False
    assert {c["name"]: c["phase"] for c in outcome["components"]} == {"loki": "ready", "grafana": "failed"}
    [diagnosis] = outcome["diagnoses"]
    assert diagnosis["state"] == "exited with code 1" and len(diagnosis["log_lines"]) == 2


def test_down_volumes_asks_first(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["compose", "down"]})
    from click.testing import CliRunner

    from stack.cli import cli

    result = CliRunner().invoke(cli, ["down", "--volumes"], input="n\n")
    assert result.exit_code == 1
    assert "Delete ALL data of project 'observability'" in result.stderr
    assert fake_docker.compose_calls("down") == []
    result = invoke("down", "--volumes", "--yes")
    assert result.exit_code == 0
    assert result.stdout == "Stopped observability; its data was deleted.\n"
    assert fake_docker.compose_calls("down")[0][-1] == "--volumes"
    result = invoke("down")
    assert result.stdout == "Stopped observability; its data is kept (`stack up` brings it back).\n"
    assert "--volumes" not in fake_docker.compose_calls("down")[-1]


def test_logs_command(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["compose", "logs"], "stdout": "a\nb\n"})
    result = invoke("logs", "grafana", "--since", "10m")
    assert result.exit_code == 0
    assert result.stdout == "a\nb\n"
    assert fake_docker.compose_calls("logs")[0][-4:] == ["--since", "10m", "--no-log-prefix", "grafana"]
    result = invoke("logs", "grafna")
    assert result.exit_code == 2  # a usage error (README)
    assert result.stderr == "Error: no component named 'grafna' in this stack (hint: did you mean 'grafana'?)\n"


def test_status_against_ready_components(project_dir: Path, fake_docker: FakeDocker) -> None:
    with (
        http_server(lambda m, p, b: (200, b"ready")) as loki,
        http_server(lambda m, p, b: (200, b'{"database":"ok","version":"13.2.0"}')) as grafana,
    ):
        only_enabled(project_dir, {"loki": port_of(loki), "grafana": port_of(grafana)})
        fake_docker.scenario(*all_running(up=False))
        result = invoke("status", "--json")
        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout)
        assert shown["ok"] is True
        assert [c["name"] for c in shown["components"]] == ["loki", "grafana"]
        grafana_row = shown["components"][1]
        assert grafana_row["version"] == "13.2.0" and grafana_row["url"] == grafana and grafana_row["ready"]
        assert grafana_row["uptime_seconds"] > 0
        table = invoke("status")
        assert table.exit_code == 0 and "grafana" in table.stdout
    # Servers gone: not ready, exit 1.
    result = invoke("status", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False


def test_no_docker_environment_leaks(paths: Paths) -> None:
    assert "FAKE_DOCKER_HOME" not in os.environ


def test_up_success_prints_the_urls_and_where_the_credentials_are(project_dir: Path, fake_docker: FakeDocker) -> None:
    with loki_only(project_dir, fake_docker) as loki:
        result = invoke("up")
        shown = invoke("up", "--json")
    assert result.exit_code == 0, result.output
    assert f"Loki  {loki}\n" in result.stdout
    outcome = json.loads(shown.stdout)
    assert outcome["ok"] is True and outcome["endpoints"] == {"Loki": loki} and outcome["diagnoses"] == []
    assert result.stdout.endswith(" s.\n") and "Ready in " in result.stdout
    assert "Waiting until every component is ready" in result.stderr
    assert "ready" in result.stderr


def test_up_provisions_grafana_and_a_second_up_writes_nothing(project_dir: Path, fake_docker: FakeDocker) -> None:
    from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
    from tests.support.fake_grafana import fake_grafana

    with http_server(lambda m, p, b: (200, b"ready")) as loki, fake_grafana() as grafana:
        SecretStore(project_dir / ".stack-secrets").put(GRAFANA_ADMIN_PASSWORD, grafana.admin_password)
        only_enabled(project_dir, {"loki": port_of(loki), "grafana": port_of(grafana.url)})
        fake_docker.scenario(*all_running())
        first = invoke("up")
        assert first.exit_code == 0, first.output
        assert set(grafana.datasources) == {"loki"}
        grafana.reset_journal()
        second = invoke("up")
        assert second.exit_code == 0, second.output
        assert grafana.writes() == []
    # The datasource, and the bundled dashboards with a panel for it (Loki), with their folders.
    from stack.grafana.dashboards import folders, selected_dashboards
    from stack.settings import load_settings

    boards = selected_dashboards(load_settings(project_dir / "stack.yaml"), project_dir)
    assert boards
    objects = 1 + len(boards) + len(folders(boards))
    # Where Grafana-managed alerts go: internal without the alertmanager component (one write, then unchanged).
    assert f"Grafana: {objects} created, 1 updated" in first.stderr
    assert grafana.admin_config == {"alertmanagersChoice": "internal"}
    objects += 1
    assert f"Grafana: 0 created, 0 updated, {objects} unchanged" in second.stderr and "0 writes" in second.stderr
    assert f"Grafana  {grafana.url}\n" in second.stdout
    # Compose was asked to converge, never to recreate.
    assert all("--force-recreate" not in argv for argv in fake_docker.calls())


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"uid": "x",\n  "title": }', "boards/bad.json:2: invalid JSON"),
        ('{"uid": "stack-slos", "title": "Mine"}', "boards/bad.json"),
    ],
)
def test_a_broken_user_dashboard_stops_up_before_anything_starts(
    project_dir: Path, fake_docker: FakeDocker, content: str, said: str
) -> None:
    (project_dir / "boards").mkdir()
    (project_dir / "boards" / "bad.json").write_text(content)
    write_settings(project_dir, "dashboards:\n  dirs: [boards]\n")
    fake_docker.scenario({"when": ["compose", "up"]})
    result = invoke("up")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and said in result.stderr
    assert result.stderr.count("\n") == 1
    assert not fake_docker.compose_calls("up")


def test_missing_images_are_pulled_with_progress_per_image(
    paths: Paths, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    engine.images.discard("grafana/grafana:13.2.0")
    engine.images.discard("grafana/loki:3.7.8")
    runtime = DockerRuntime(Settings(), paths)
    missing = runtime.missing_images()
    assert missing == ["grafana/loki:3.7.8", "grafana/grafana:13.2.0"]
    events: list[PullProgress] = []
    runtime.pull_images(missing, events.append)
    grafana_events = [e for e in events if e.image == "grafana/grafana:13.2.0"]
    assert grafana_events[0].status == "waiting"
    assert any(e.total == 2 * 4096 and 0 < e.done < e.total for e in grafana_events)
    assert grafana_events[-1].finished
    assert runtime.missing_images() == []
    pulls = [path for method, path in engine.journal if method == "POST"]
    assert pulls == ["/images/create", "/images/create"]


def test_a_failed_pull_names_the_image_and_the_setting(
    paths: Paths, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    settings = parse_settings({"components": {"grafana": {"image": "grafana/grafana:13.9.9"}}})
    engine.pulls["grafana/grafana:13.9.9"] = 404
    with pytest.raises(StackError) as caught:
        DockerRuntime(settings, paths).pull_images(["grafana/grafana:13.9.9"])
    assert caught.value.one_line() == (
        "cannot pull grafana/grafana:13.9.9: manifest for grafana/grafana:13.9.9 not found: manifest unknown: "
        "manifest unknown (hint: check components.grafana.image in stack.yaml and that the registry is reachable)"
    )
    engine.pulls["grafana/loki:3.7.8"] = [
        {"status": "Pulling from grafana/loki", "id": "3.7.8"},
        {
            "errorDetail": {"message": "toomanyrequests: You have reached your pull rate limit."},
            "error": "toomanyrequests: You have reached your pull rate limit.",
        },
    ]
    with pytest.raises(StackError, match=r"cannot pull grafana/loki:3.7.8: toomanyrequests: You have reached"):
        DockerRuntime(Settings(), paths).pull_images(["grafana/loki:3.7.8"])


def test_up_pulls_what_is_missing_before_compose(
    project_dir: Path, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    engine.images.clear()
    with loki_only(project_dir, fake_docker) as loki:
        result = invoke("up")
    assert result.exit_code == 0, result.output
    assert "Pulling 1 image" in result.stderr
    assert "grafana/loki:3.7.8" in result.stderr
    assert engine.images == {"grafana/loki:3.7.8"}
    # `--no-pull` asks the engine nothing and tells compose never to pull.
    engine.journal.clear()
    with http_server(lambda m, p, b: (200, b"ready")) as loki:
        only_enabled(project_dir, {"loki": port_of(loki)})
        assert invoke("up", "--no-pull").exit_code == 0
    assert not [entry for entry in engine.journal if entry[1].startswith("/images")]
    assert fake_docker.compose_calls("up")[-1][-2:] == ["--pull", "never"]


def test_copy_out_and_in_stream_tar_archives(paths: Paths, fake_docker: FakeDocker, engine: FakeEngine) -> None:
    fake_docker.scenario({"when": ["compose", "ps"], "stdout": recorded("ps-all-running.jsonl")})
    prometheus_id = next(
        json.loads(line)["ID"] for line in recorded("ps-all-running.jsonl").splitlines() if '"prometheus"' in line
    )
    fs = engine.container(prometheus_id)
    (fs / "prometheus" / "snapshots" / "s1").mkdir(parents=True)
    (fs / "prometheus" / "snapshots" / "s1" / "chunk").write_bytes(b"x" * 100_000)
    runtime = DockerRuntime(Settings(), paths)
    stream = runtime.copy_out("prometheus", "/prometheus/snapshots/s1")
    import tarfile

    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        names = {member.name: member.size for member in tar}
    assert names == {"s1": 0, "s1/chunk": 100_000}
    with pytest.raises(StackError, match=r"prometheus: /nope does not exist in its container"):
        runtime.copy_out("prometheus", "/nope")
    import io

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"restored"
        info = tarfile.TarInfo("restored.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    runtime.copy_in("prometheus", "/prometheus", buffer)
    assert (fs / "prometheus" / "restored.txt").read_bytes() == b"restored"
    with pytest.raises(StackError, match=r"^tempo has no container$") as caught:
        fake_docker.scenario({"when": ["compose", "ps"], "stdout": ""})
        runtime.copy_out("tempo", "/var/tempo")
    assert caught.value.hint == "run `stack up` first"


CURL_CREATED = (
    "HTTP/1.1 200 OK\r\n"
    "Cache-Control: no-store\r\n"
    "Content-Type: application/json\r\n"
    "Date: Sat, 28 Nov 2026 15:05:01 GMT\r\n"
    "Content-Length: 86\r\n"
    "\r\n"
    '{"id":7,"message":"Datasource updated","name":"Loki","datasource":{"uid":"loki"}}'
)


def test_grafana_on_a_remote_engine_is_reached_with_curl_fed_on_stdin(paths: Paths, fake_docker: FakeDocker) -> None:
    """On a remote host Grafana's port is not on this machine: requests go through `compose exec`,
    curl inside the Grafana container, every header (the token) and the body on stdin."""
    fake_docker.scenario(
        {"when": ["compose", "exec", "-T", "grafana", "curl", "--config", "-"], "stdout": CURL_CREATED}
    )
    runtime = DockerRuntime(Settings(), paths, host="ssh://ops@server")
    assert runtime.base_url("grafana", "http") is None
    body = json.dumps({"name": "Loki", "jsonData": {"url": 'say "$${__value.raw}"\n'}}).encode()
    reply = runtime.http(
        "grafana",
        "http",
        "/api/datasources/uid/loki",
        method="PUT",
        body=body,
        headers={"Authorization": "Bearer glsa_secret_token", "Content-Type": "application/json"},
    )
    assert reply.status == 200
    assert json.loads(reply.body)["message"] == "Datasource updated"
    assert reply.headers["content-type"] == "application/json"
    [record] = [r for r in fake_docker.records() if "exec" in r["argv"]]
    assert record["argv"][:2] == ["--host", "ssh://ops@server"]
    assert "glsa_secret_token" not in " ".join(record["argv"])
    config = record["stdin"].splitlines()
    assert 'request = "PUT"' in config
    assert 'url = "http://127.0.0.1:3000/api/datasources/uid/loki"' in config
    assert 'header = "Authorization: Bearer glsa_secret_token"' in config
    assert 'header = "Expect:"' in config
    data_line = next(line for line in config if line.startswith("data-binary = "))
    # curl's config quoting: backslash escapes for quotes, backslashes and newlines.
    assert data_line == "data-binary = " + '"' + body.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'
    fake_docker.scenario(
        {
            "when": ["compose", "exec", "-T", "grafana", "curl"],
            "stderr": "curl: (7) Failed to connect to 127.0.0.1 port 3000 after 0 ms: Couldn't connect to server\n",
            "rc": 7,
        }
    )
    with pytest.raises(ConnectionError, match=r"Failed to connect to 127\.0\.0\.1 port 3000"):
        runtime.http("grafana", "http", "/api/health")


def test_provisioning_through_a_remote_engine_writes_nothing_the_second_time(
    paths: Paths, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stack.grafana.dashboards import load_dashboards
    from stack.grafana.provision import provision_stack
    from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
    from tests.support.fake_grafana import fake_grafana

    # One dashboard is enough here (each request is a `docker` process); the packs are tested elsewhere.
    one = load_dashboards()[:1]
    monkeypatch.setattr("stack.grafana.provision.stack_dashboards", lambda *args, **kwargs: one)

    with fake_grafana() as grafana:
        SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, grafana.admin_password)
        fake_docker.scenario(
            {"when": ["compose", "exec", "-T", "grafana", "curl", "--config", "-"], "curl_to": grafana.url}
        )
        runtime = DockerRuntime(Settings(), paths, host="ssh://ops@server")
        first = provision_stack(paths, Settings(), runtime)
        grafana.reset_journal()
        second = provision_stack(paths, Settings(), runtime)
        assert grafana.writes() == []
    assert first.datasources.created == 4 and first.writes > 0
    assert second.writes == 0
    assert second.datasources.unchanged == 4
    token = (paths.secrets_dir / "grafana-provisioning-token").read_text().strip()
    assert all(token not in " ".join(argv) for argv in fake_docker.calls())
    assert all(grafana.admin_password not in " ".join(argv) for argv in fake_docker.calls())


@pytest.mark.parametrize(
    ("host", "docker_host", "remote"),
    [
        (None, None, False),
        (None, "unix:///run/user/1000/docker.sock", False),
        (None, "tcp://127.0.0.1:2375", False),
        (None, "tcp://10.0.0.5:2376", True),
        (None, "ssh://ops@server", True),
        ("ssh://ops@server", None, True),
        ("production", None, True),
    ],
)
def test_which_engines_are_remote(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, host: str | None, docker_host: str | None, remote: bool
) -> None:
    if docker_host:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
    else:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    runtime = DockerRuntime(Settings(), paths, host=host)
    assert runtime.remote is remote
    assert (runtime.base_url("grafana", "http") is None) is remote


def test_up_says_the_stack_is_ready_when_only_provisioning_fails(project_dir: Path, fake_docker: FakeDocker) -> None:
    from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
    from tests.support.fake_grafana import fake_grafana

    with fake_grafana() as grafana:
        SecretStore(project_dir / ".stack-secrets").put(GRAFANA_ADMIN_PASSWORD, "changed-in-the-ui-since")
        only_enabled(project_dir, {"grafana": port_of(grafana.url)})
        fake_docker.scenario(*all_running())
        result = invoke("up")
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        f"Error: every component is ready, but provisioning Grafana failed: Grafana at {grafana.url} rejected the "
        "admin credentials (admin, password in "
    )
    assert last.endswith("(hint: check the token or the user and password; then run `stack provision`)")
    assert "changed-in-the-ui-since" not in result.output


def test_up_still_works_when_the_engine_api_is_out_of_reach(project_dir: Path, fake_docker: FakeDocker) -> None:
    from stack.net.ports import free_port

    with loki_only(
        project_dir, fake_docker, {"when": ["context", "inspect"], "stdout": f"tcp://127.0.0.1:{free_port()}\n"}
    ):
        result = invoke("up")
    assert result.exit_code == 0, result.output
    assert "Pulling" not in result.stderr
    assert fake_docker.compose_calls("up")[-1][-2:] == ["--pull", "missing"]


PROMETHEUS_VOLUME = "observability_prometheus-data"


def _stopped_prometheus(new_id: str | None = None) -> tuple[str, dict[str, object]]:
    """The recorded ps and inspect of a stack whose Prometheus is stopped (`stack restore` stopped it),
    its container's Mounts as `docker container inspect` prints them for a compose named volume."""
    rows = [json.loads(line) for line in recorded("ps-all-running.jsonl").splitlines()]
    row = next(r for r in rows if r["Service"] == "prometheus")
    inspected = next(c for c in json.loads(recorded("inspect-all-running.json")) if c["Id"].startswith(row["ID"]))
    row.update(State="exited", Status="Exited (0) 5 seconds ago")
    if new_id:
        row.update(ID=new_id, State="created", Status="Created")
    inspected = {
        **inspected,
        "State": {**inspected["State"], "Status": "exited", "Running": False},
        "Mounts": [
            {
                "Type": "volume",
                "Name": PROMETHEUS_VOLUME,
                "Source": f"/var/lib/docker/volumes/{PROMETHEUS_VOLUME}/_data",
                "Destination": "/prometheus",
                "Driver": "local",
                "Mode": "z",
                "RW": True,
                "Propagation": "",
            },
            {
                "Type": "bind",
                "Source": "/srv/stack/.stack/rendered/prometheus/prometheus.yml",
                "Destination": "/etc/prometheus/prometheus.yml",
                "Mode": "ro",
                "RW": False,
                "Propagation": "rprivate",
            },
        ],
    }
    return "\n".join(json.dumps(r) for r in rows) + "\n", inspected


def _tar_with(name: str, data: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _docker_calls(fake_docker: FakeDocker) -> list[list[str]]:
    """What the runtime asked docker to do (the engine and context look-ups left out)."""
    return [argv for argv in fake_docker.calls() if argv[:1] != ["context"] and "version" not in argv]


COMPOSE = ["compose", "--project-name", "observability"]
PS = [*COMPOSE, "ps", "--all", "--format", "json"]


def test_replace_state_removes_and_recreates_the_volume_then_puts_the_archive(
    paths: Paths, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    before, inspected = _stopped_prometheus()
    new_id = "5e1f0c2d9a77"
    after, _ = _stopped_prometheus(new_id=new_id)
    fake_docker.scenario(
        {"when": ["compose", "ps"], "replies": [{"stdout": before}, {"stdout": after}]},
        {"when": ["container", "inspect"], "stdout": json.dumps([inspected])},
        {"when": ["compose", "rm"]},
        {"when": ["volume", "rm"], "stdout": PROMETHEUS_VOLUME + "\n"},
        {"when": ["compose", "create"]},
    )
    old_fs = engine.container(str(inspected["Id"])[:12])
    (old_fs / "prometheus").mkdir()
    (old_fs / "prometheus" / "written-after-the-backup").write_text("gone")
    # Compose made a new container with a new, empty volume at /prometheus.
    new_fs = engine.container(new_id)
    (new_fs / "prometheus").mkdir()

    DockerRuntime(Settings(), paths).replace_state("prometheus", "/prometheus", _tar_with("01BLOCK/meta.json", b"{}"))

    assert _docker_calls(fake_docker) == [
        PS,
        ["container", "inspect", str(inspected["Id"])[:12]],
        [*COMPOSE, "rm", "--force", "prometheus"],
        ["volume", "rm", PROMETHEUS_VOLUME],
        [*COMPOSE, "create", "--no-recreate", "prometheus"],
        PS,
    ]
    puts = [entry for entry in engine.journal if entry[0] == "PUT"]
    assert puts == [("PUT", f"/containers/{new_id}/archive")]
    assert (new_fs / "prometheus" / "01BLOCK" / "meta.json").read_bytes() == b"{}"


def test_replace_state_refuses_a_running_container_and_touches_nothing(
    paths: Paths, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    fake_docker.scenario({"when": ["compose", "ps"], "stdout": recorded("ps-all-running.jsonl")})
    with pytest.raises(StackError) as caught:
        DockerRuntime(Settings(), paths).replace_state("prometheus", "/prometheus", _tar_with("x", b"x"))
    assert caught.value.one_line() == (
        "prometheus is running: its state cannot be replaced (hint: stack stop prometheus)"
    )
    assert _docker_calls(fake_docker) == [PS]
    assert [entry for entry in engine.journal if entry[0] == "PUT"] == []


def test_replace_state_without_a_volume_at_the_path_is_one_line(
    paths: Paths, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    before, inspected = _stopped_prometheus()
    # A bind mount (a directory of the host) where the volume should be: not ours to remove.
    inspected["Mounts"] = [{"Type": "bind", "Source": "/data/prom", "Destination": "/prometheus", "RW": True}]
    fake_docker.scenario(
        {"when": ["compose", "ps"], "stdout": before},
        {"when": ["container", "inspect"], "stdout": json.dumps([inspected])},
    )
    with pytest.raises(StackError) as caught:
        DockerRuntime(Settings(), paths).replace_state("prometheus", "/prometheus", _tar_with("x", b"x"))
    line = caught.value.one_line()
    assert line == (
        "prometheus: /prometheus is not a named volume of its container: its state cannot be replaced "
        "(hint: restore into a stack started by `stack up`)"
    )
    assert "\n" not in str(caught.value)
    assert [argv[len(COMPOSE)] for argv in _docker_calls(fake_docker) if argv[:1] == ["compose"]] == ["ps"]
    assert not [argv for argv in _docker_calls(fake_docker) if argv[:1] == ["volume"]]


def test_replace_state_gives_the_container_back_when_the_volume_cannot_be_removed(
    paths: Paths, fake_docker: FakeDocker, engine: FakeEngine
) -> None:
    before, inspected = _stopped_prometheus()
    fake_docker.scenario(
        {"when": ["compose", "ps"], "stdout": before},
        {"when": ["container", "inspect"], "stdout": json.dumps([inspected])},
        {"when": ["compose", "rm"]},
        {
            "when": ["volume", "rm"],
            "stderr": f"Error response from daemon: remove {PROMETHEUS_VOLUME}: volume is in use - [0a1b2c3d4e5f]\n",
            "rc": 1,
        },
        {"when": ["compose", "create"]},
    )
    with pytest.raises(StackError) as caught:
        DockerRuntime(Settings(), paths).replace_state("prometheus", "/prometheus", _tar_with("x", b"x"))
    assert "volume is in use" in caught.value.one_line()
    assert "\n" not in caught.value.one_line()
    assert _docker_calls(fake_docker)[2:] == [
        [*COMPOSE, "rm", "--force", "prometheus"],
        ["volume", "rm", PROMETHEUS_VOLUME],
        [*COMPOSE, "create", "--no-recreate", "prometheus"],
    ]
    assert [entry for entry in engine.journal if entry[0] == "PUT"] == []


def test_up_says_where_to_look_at_an_unpublished_prometheus(capsys: pytest.CaptureFixture[str]) -> None:
    from stack.commands.display import endpoints
    from stack.components.prometheus import UNPUBLISHED as PROMETHEUS_UNPUBLISHED
    from stack.lifecycle import Endpoint

    endpoints([Endpoint("Grafana", "http://127.0.0.1:3000"), Endpoint("Prometheus", "", PROMETHEUS_UNPUBLISHED)], None)
    assert capsys.readouterr().out == (
        "Grafana     http://127.0.0.1:3000\n"
        "Prometheus  not published (its admin API shares the port): query it in Grafana > Explore\n"
    )


def test_endpoints_name_an_unpublished_prometheus() -> None:
    from stack.components.prometheus import UNPUBLISHED as PROMETHEUS_UNPUBLISHED
    from stack.lifecycle import Endpoint, unpublished
    from tests.support.urlruntime import UrlRuntime

    assert unpublished(Settings(), UrlRuntime({"grafana": "http://127.0.0.1:3000"})) == [
        Endpoint("Prometheus", "", PROMETHEUS_UNPUBLISHED)
    ]
    assert unpublished(Settings(), UrlRuntime({"prometheus": "http://127.0.0.1:9090"})) == []


def test_without_grafana_an_unpublished_prometheus_is_not_sent_to_grafana_explore() -> None:
    from stack.components.prometheus import UNPUBLISHED_NO_GRAFANA as PROMETHEUS_UNPUBLISHED_NO_GRAFANA
    from stack.lifecycle import Endpoint, unpublished
    from tests.support.urlruntime import UrlRuntime

    settings = Settings.model_validate({"components": {"grafana": {"enabled": False}}})
    assert unpublished(settings, UrlRuntime({})) == [Endpoint("Prometheus", "", PROMETHEUS_UNPUBLISHED_NO_GRAFANA)]
    assert "Grafana" not in PROMETHEUS_UNPUBLISHED_NO_GRAFANA


def test_ssh_urls_name_the_destination_ssh_is_given() -> None:
    from stack.runtime.docker import ssh_destination

    assert ssh_destination("ssh://ops@server:2222") == ("ops@server", 2222)
    # An alias: port, user and key are ~/.ssh/config's, so nothing is added to ssh's command line.
    assert ssh_destination("ssh://prod") == ("prod", None)
    assert ssh_destination("ssh://root@[::1]:22") == ("root@::1", 22)
