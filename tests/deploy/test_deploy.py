"""`stack deploy`: targets, server facts, preflight failures one by one, the SSH tunnel against a
real sshd, and the whole flow's docker invocations against a stand-in `docker` (tests/support/fake_docker.py)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.deploy.facts import Facts, Listener, parse_df, parse_meminfo, parse_proc_net_tcp, read_host_facts
from stack.deploy.flow import DeployRefused, TunnelledDockerRuntime, deploy, tunnel_ports
from stack.deploy.preflight import Check, blocking, local_file_references, run_preflight
from stack.deploy.ssh import open_tunnel, run_remote
from stack.errors import StackError
from stack.hosttarget import parse_target
from stack.paths import Paths
from stack.render import render_project
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, parse_settings
from tests.conftest import invoke
from tests.support.fake_docker import FakeDocker, install, recorded
from tests.support.httpservers import http_server
from tests.support.sshd import SshServer, sshd

GIB = 1024**3


# --- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "docker_host", "destination", "port"),
    [
        ("ssh://ops@server.example.com", "ssh", "ssh://ops@server.example.com", "ops@server.example.com", None),
        ("ssh://ops@10.0.0.5:2222", "ssh", "ssh://ops@10.0.0.5:2222", "ops@10.0.0.5", 2222),
        ("ops@server", "ssh", "ssh://ops@server", "ops@server", None),
        ("server:2200", "ssh", "ssh://server:2200", "server", 2200),
        ("ssh://root@[2001:db8::1]:22", "ssh", "ssh://root@2001:db8::1:22", "root@2001:db8::1", 22),
        ("prod", "context", "prod", None, None),
    ],
)
def test_targets(text: str, kind: str, docker_host: str, destination: str | None, port: int | None) -> None:
    target = parse_target(text)
    assert target.kind == kind
    assert target.docker_host == docker_host
    assert target.port == port
    if destination:
        assert target.destination == destination


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp://server:2375", "--host tcp://server:2375: the tcp:// scheme is not supported for deploys"),
        ("ops@", "--host ops@: not an SSH target"),
        ("ops@server:99999", "--host ops@server:99999: port 99999 is out of range"),
        ("", "--host is empty"),
    ],
)
def test_bad_targets(text: str, message: str) -> None:
    with pytest.raises(StackError) as caught:
        parse_target(text)
    assert caught.value.message == message


# --- facts -----------------------------------------------------------------------------------

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:9C40 0100007F:0BB8 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:0 0 0
   1: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:0 0 0
"""


def test_parsers() -> None:
    assert parse_proc_net_tcp(PROC_NET_TCP) == [
        Listener("127.0.0.1", 3000),
        Listener("0.0.0.0", 22),
        Listener("::", 443),
        Listener("::1", 3306),
    ]
    meminfo = parse_meminfo("MemTotal:       16314520 kB\nMemAvailable:    9021344 kB\nHugePages_Total: 0\n")
    assert meminfo["MemTotal"] == 16314520 * 1024 and meminfo["MemAvailable"] == 9021344 * 1024
    df = (
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/sda1 102400000 40000000 62400000 40% /\n"
    )
    assert parse_df(df) == (62400000 * 1024, 102400000 * 1024)


# --- preflight, one failure at a time --------------------------------------------------------


def good_facts() -> Facts:
    return Facts(
        engine_version="28.2.2",
        compose_version="2.36.2",
        arch="x86_64",
        os="Debian GNU/Linux 12 (bookworm)",
        cpus=4,
        mem_total=16 * GIB,
        mem_available=12 * GIB,
        docker_root="/var/lib/docker",
        disk_free=80 * GIB,
        disk_size=100 * GIB,
        listeners=[Listener("0.0.0.0", 22), Listener("127.0.0.53", 53)],
    )


SERVER = {"profile": "server", "server": {"hostname": "grafana.example.com"}}


def _preflight(paths: Paths, facts: Facts, settings: Settings | None = None) -> list[Check]:
    settings = settings or parse_settings(SERVER)
    SecretStore.for_paths(paths).ensure(GRAFANA_ADMIN_PASSWORD)
    document = yaml.safe_load(render_project(settings).text())
    # Public DNS is not reachable from the tests: every name points at the server.
    return run_preflight(settings, paths, facts, document, server_host="server", resolver=lambda _name: {"203.0.113.7"})


def _failed(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks if not check.ok and not check.unknown}


def test_everything_passes_on_a_good_server(paths: Paths) -> None:
    checks = _preflight(paths, good_facts())
    assert _failed(checks) == {}
    names = [check.name for check in checks]
    assert names == [
        "grafana over TLS",
        "compose file self-contained",
        "docker engine",
        "docker compose",
        "cpu architecture",
        "memory",
        "disk",
        "ports free",
        "dns",
    ]
    assert checks[0].message == "through the TLS proxy at https://grafana.example.com/"


FAILURES: dict[str, tuple[dict[str, Any], str, str]] = {
    "docker engine": (
        {"engine_version": "19.03.12"},
        "FAILED  docker engine: Docker 19.03.12 on Debian GNU/Linux 12 (bookworm)",
        "upgrade Docker on the server to 20.10 or later",
    ),
    "docker compose": (
        {"compose_version": "2.20.2"},
        "FAILED  docker compose: compose 2.20.2 (runs on this machine; inline configs need >= 2.23.1)",
        "upgrade the docker compose plugin on this machine",
    ),
    "cpu architecture": (
        {"arch": "armv7l"},
        "FAILED  cpu architecture: armv7l: the pinned images exist for amd64/arm64",
        "deploy to an amd64 or arm64 server",
    ),
    "memory": (
        {"mem_total": 4 * GIB, "mem_available": 3 * GIB},
        "FAILED  memory: limits add up to 5.6 GiB; the server has 4.0 GiB (3.0 GiB available now)",
        "lower components.*.memory, disable components, or use a larger server",
    ),
    "disk": (
        {"disk_free": 5 * GIB},
        "FAILED  disk: 5.0 GiB free at /var/lib/docker; images and retention need about 8.9 GiB",
        "free space on the server, or shorten components.*.retention",
    ),
    "ports free": (
        {"listeners": [Listener("0.0.0.0", 443), Listener("127.0.0.1", 3100), Listener("10.0.0.5", 3000)]},
        "FAILED  ports free: in use on the server: 127.0.0.1:3100 (loki), 0.0.0.0:443 (proxy)",
        "stop what listens there, or choose other ports in stack.yaml",
    ),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_each_preflight_failure_is_named_with_its_fix(name: str, paths: Paths) -> None:
    changes, line, fix = FAILURES[name]
    facts = good_facts()
    for key, value in changes.items():
        setattr(facts, key, value)
    checks = _preflight(paths, facts)
    failed = _failed(checks)
    assert list(failed) == [name]
    assert failed[name].fix == fix
    assert failed[name].line() == f"{line} (fix: {fix})"
    # --force skips requirement checks; compose too old would only break the deploy: never skipped.
    assert [c.name for c in blocking(checks, force=True)] == (["docker compose"] if name == "docker compose" else [])
    assert [c.name for c in blocking(checks, force=False)] == [name]


def test_the_project_s_own_ports_are_not_conflicts(paths: Paths) -> None:
    facts = good_facts()
    facts.listeners = [Listener("0.0.0.0", 443), Listener("127.0.0.1", 3100)]
    facts.own_ports = {443, 3100}
    assert _failed(_preflight(paths, facts)) == {}


def test_unknown_host_facts_are_reported_not_failed(paths: Paths) -> None:
    facts = good_facts()
    facts.disk_free = facts.listeners = None
    facts.host_facts_missing = "ssh: connection refused"
    checks = {c.name: c for c in _preflight(paths, facts)}
    assert checks["disk"].unknown and checks["ports free"].unknown
    assert checks["disk"].line() == "unknown disk: free space unknown (ssh: connection refused)"


def test_security_failures_cannot_be_forced(paths: Paths) -> None:
    insecure = parse_settings({"bind_address": "0.0.0.0", "components": {"loki": {"port": 3100}}}, security=False)
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, "admin")
    checks = _preflight(paths, good_facts(), insecure)
    failed = _failed(checks)
    assert set(failed) == {"grafana over TLS", "no unauthenticated API published", "doctor: weak-admin-password"}
    assert all(check.security for check in failed.values())
    assert set(failed) == {c.name for c in blocking(checks, force=True)}
    assert failed["no unauthenticated API published"].message == (
        "loki, tempo, alertmanager (no authentication) published on 0.0.0.0"
    )


def test_tls_files_are_checked_before_anything_changes(paths: Paths, tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "profile": "server",
            "server": {
                "hostname": "g.example.com",
                "tls": {"mode": "files", "cert_file": "c.pem", "key_file": "k.pem"},
            },
        }
    )
    failed = _failed(_preflight(paths, good_facts(), settings))
    assert failed["tls files"].security
    assert "server.tls.cert_file cannot be read" in failed["tls files"].message


def test_file_secrets_would_not_reach_a_remote_engine(paths: Paths, tmp_path: Path) -> None:
    token = tmp_path / "hook-token"
    token.write_text("t0k3n")
    hook = {"webhook": {"url": "http://hooks.internal/alerts", "bearer_token": {"file": str(token)}}}
    settings = parse_settings({"alerting": {"receivers": {"hook": hook}, "page": "hook"}})
    document = yaml.safe_load(render_project(settings).text())
    assert local_file_references(document) == [f"secret alertmanager-hook-webhook-bearer-token reads the file {token}"]
    failed = _failed(run_preflight(settings, paths, good_facts(), document))
    assert not failed["compose file self-contained"].forceable
    # The default render reads nothing from this machine's disk: host paths are the server's own.
    assert local_file_references(yaml.safe_load(render_project(Settings()).text())) == []
    assert local_file_references({"services": {"x": {"volumes": ["./data:/data"]}}}) == ["service x bind-mounts ./data"]


# --- a real sshd -----------------------------------------------------------------------------


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    with sshd(tmp_path) as server:
        yield server


def test_host_facts_over_real_ssh(ssh_server: SshServer) -> None:
    facts = Facts(docker_root="/var/lib/docker")
    read_host_facts(facts, parse_target(ssh_server.host), options=ssh_server.options)
    assert facts.mem_available and facts.mem_total and facts.disk_free and facts.disk_size
    assert Listener("127.0.0.1", ssh_server.port) in (facts.listeners or [])
    assert facts.arch


def test_ssh_failure_is_one_clear_line(ssh_server: SshServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    options = [*ssh_server.options]
    options[1] = str(wrong)
    with pytest.raises(StackError) as caught:
        run_remote(parse_target(ssh_server.host), "true", options=options)
    assert caught.value.message.startswith(f"ssh {ssh_server.user}@127.0.0.1: ")
    assert "Permission denied" in caught.value.message
    with pytest.raises(StackError) as caught, open_tunnel(parse_target(ssh_server.host), [3000], options=options):
        pass
    assert "Permission denied" in caught.value.message


def test_tunnel_reaches_the_server_s_loopback_ports(ssh_server: SshServer) -> None:
    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        return 200, f"{method} {path}".encode()

    with ExitStack() as stack:
        urls = [stack.enter_context(http_server(respond)) for _ in range(2)]
        ports = [int(url.rsplit(":", 1)[1]) for url in urls]
        tunnel = stack.enter_context(open_tunnel(parse_target(ssh_server.host), ports, options=ssh_server.options))
        for port in ports:
            local = tunnel.local_port(port)
            assert local and local != port
            assert requests.get(f"http://127.0.0.1:{local}/ready", timeout=5).text == "GET /ready"
        process = tunnel.process
    assert process is not None and process.poll() is not None  # closed with the block


# --- the whole flow, with the stand-in docker and the real sshd ------------------------------


@pytest.fixture
def fake_docker(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    return install(tmp_path_factory.mktemp("fake-docker"), monkeypatch)


INFO = {
    "ServerVersion": "28.2.2",
    "Architecture": "x86_64",
    "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
    "NCPU": 4,
    "MemTotal": 16 * GIB,
    "DockerRootDir": "/var/lib/docker",
}
WGET_READY = {"stdout": "Prometheus Server is Ready.\n", "stderr": "  HTTP/1.1 200 OK\n  Content-Type: text/plain\n"}


def _ps_rows(settings: Settings) -> str:
    from stack.components import REGISTRY

    rows = []
    for name in settings.enabled():
        publishers = [
            {"URL": settings.bind_address, "TargetPort": spec.container, "PublishedPort": port, "Protocol": "tcp"}
            for spec, port in REGISTRY[name].published(settings)
        ]
        rows.append(
            {
                "ID": f"id-{name}",
                "Service": name,
                "Name": f"observability-{name}-1",
                "State": "running",
                "Health": "",
                "ExitCode": 0,
                "Image": settings.component(name).image,
                "Publishers": publishers,
            }
        )
    return "\n".join(json.dumps(row) for row in rows) + "\n"


def _component_servers(stack: ExitStack) -> dict[str, int]:
    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/api/health":
            return 200, b'{"database":"ok","version":"13.2.0"}'
        return 200, b"ready"

    return {
        name: int(stack.enter_context(http_server(respond)).rsplit(":", 1)[1])
        for name in ("otel-collector", "loki", "tempo", "grafana", "alertmanager")
    }


def _settings_on(ports: dict[str, int]) -> Settings:
    components: dict[str, Any] = {name: {"port": port} for name, port in ports.items()}
    components["otel-collector"] |= {"otlp_grpc_port": None, "otlp_http_port": None}
    return parse_settings({"components": components})


def test_deploy_runs_every_docker_command_against_the_remote_host(
    paths: Paths, fake_docker: FakeDocker, ssh_server: SshServer
) -> None:
    seen: dict[str, str | None] = {}

    def provisioner(paths: Paths, settings: Settings, runtime: Any) -> str:
        seen["grafana"] = runtime.base_url("grafana", "http")
        seen["prometheus"] = runtime.base_url("prometheus", "http")
        return "provisioned"

    with ExitStack() as stack:
        ports = _component_servers(stack)
        settings = _settings_on(ports)
        fake_docker.scenario(
            {"when": ["info", "--format"], "stdout": json.dumps(INFO)},
            {"when": ["compose", "ps"], "stdout": _ps_rows(settings)},
            {"when": ["container", "inspect"], "stdout": "[]"},
            {"when": ["compose", "exec", "-T", "prometheus", "wget"], **WGET_READY},
            {"when": ["compose", "up"]},
        )
        # pull=False: pulling goes through the Engine API over the SDK's own ssh (tested in issue 4's
        # suite against a fake engine); here every compose call is what is checked.
        result = deploy(
            paths, settings, ssh_server.host, ssh_options=ssh_server.options, provisioner=provisioner, pull=False
        )
    assert result.ok, result.up.readiness
    assert result.up.provisioning == "provisioned"
    # Provisioning reached Grafana through the tunnel (a local port), Prometheus from inside the network.
    assert seen["grafana"] is not None and seen["grafana"].startswith("http://127.0.0.1:")
    assert seen["grafana"] != f"http://127.0.0.1:{ports['grafana']}"
    assert seen["prometheus"] is None
    calls = fake_docker.calls()
    host = f"ssh://{ssh_server.user}@127.0.0.1:{ssh_server.port}"
    assert calls and all(argv[:2] == ["--host", host] for argv in calls), calls
    assert any(argv[2:4] == ["info", "--format"] for argv in calls)
    [up] = fake_docker.compose_calls("up")
    assert up[:5] == ["--host", host, "compose", "--file", str(paths.compose_file)]
    assert up[-5:] == ["up", "--detach", "--remove-orphans", "--pull", "never"]
    assert (
        result.tunnel_command
        == f"ssh -N -p {ssh_server.port} -L {ports['grafana']}:127.0.0.1:{ports['grafana']} {ssh_server.user}@127.0.0.1"
    )
    # What was sent: inline configs, named volumes, secrets from the environment only.
    document = yaml.safe_load(paths.compose_file.read_text())
    assert local_file_references(document) == []
    assert SecretStore.for_paths(paths).get(GRAFANA_ADMIN_PASSWORD) not in paths.compose_file.read_text()


def test_refused_deploy_changes_nothing(paths: Paths, fake_docker: FakeDocker, ssh_server: SshServer) -> None:
    with ExitStack() as stack:
        ports = _component_servers(stack)
        settings = _settings_on(ports)
        # The servers hold the ports and the project publishes none of them yet: they are busy.
        fake_docker.scenario(
            {"when": ["info", "--format"], "stdout": json.dumps({**INFO, "ServerVersion": "19.03.1"})},
            {"when": ["compose", "ps"], "stdout": ""},
        )
        printed: list[str] = []
        with pytest.raises(DeployRefused) as caught:
            deploy(
                paths,
                settings,
                ssh_server.host,
                ssh_options=ssh_server.options,
                on_checks=lambda checks: printed.extend(c.line() for c in checks),
            )
    assert [check.name for check in caught.value.checks] == ["docker engine", "ports free"]
    assert caught.value.one_line() == (
        "preflight failed, nothing was changed on the server: docker engine, ports free "
        "(hint: fix each one, or rerun with --force)"
    )
    assert any(line.startswith("FAILED  ports free: in use on the server: 127.0.0.1:") for line in printed)
    assert fake_docker.compose_calls("up") == []


def test_deploy_to_a_docker_context_uses_its_ssh_endpoint(
    paths: Paths, fake_docker: FakeDocker, ssh_server: SshServer
) -> None:
    with ExitStack() as stack:
        ports = _component_servers(stack)
        settings = _settings_on(ports)
        fake_docker.scenario(
            {"when": ["context", "inspect", "prod"], "stdout": ssh_server.host + "\n"},
            {"when": ["info", "--format"], "stdout": json.dumps(INFO)},
            {"when": ["compose", "ps"], "stdout": _ps_rows(settings)},
            {"when": ["container", "inspect"], "stdout": "[]"},
            {"when": ["compose", "exec", "-T", "prometheus", "wget"], **WGET_READY},
            {"when": ["compose", "up"]},
        )
        result = deploy(paths, settings, "prod", ssh_options=ssh_server.options, pull=False)
    assert result.ok
    calls = [argv for argv in fake_docker.calls() if "context" not in argv[:1]]
    assert calls and all(argv[:2] == ["--context", "prod"] for argv in calls), calls
    assert result.target.describe() == "docker context prod"


def test_tunnel_ports_are_the_components_published_ones() -> None:
    settings = parse_settings(SERVER)
    assert tunnel_ports(settings) == [4317, 4318, 13133, 3100, 3200, 3000, 9093]
    runtime = TunnelledDockerRuntime(settings, Paths.discover("x/stack.yaml"), host="ssh://a@b")
    assert runtime.base_url("grafana", "http") is None  # remote and no tunnel: from inside the network


def test_cli_deploy_refused_prints_each_check(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario(
        {"when": ["context", "inspect"], "stdout": "tcp://10.0.0.5:2376\n"},
        {"when": ["info", "--format"], "stdout": json.dumps({**INFO, "Architecture": "s390x"})},
        {"when": ["compose", "ps"], "stdout": ""},
    )
    (project_dir / "stack.yaml").write_text(
        "profile: server\nserver: {hostname: grafana.example.com, tls: {mode: internal}}\n"
    )
    result = invoke("deploy", "--host", "stack-test-context-without-ssh")
    assert result.exit_code == 1
    assert "FAILED  cpu architecture: s390x: the pinned images exist for amd64/arm64" in result.stderr
    # A tcp:// context has no SSH: what only SSH can read is reported unknown, not failed.
    assert "unknown disk: free space unknown (the docker context's endpoint is not ssh://)" in result.stderr
    assert result.stderr.rstrip().endswith(
        "Error: preflight failed, nothing was changed on the server: cpu architecture "
        "(hint: fix each one, or rerun with --force)"
    )
    assert fake_docker.compose_calls("up") == []


def test_cli_deploy_needs_a_host(project_dir: Path) -> None:
    result = invoke("deploy")
    assert result.exit_code == 2
    assert "Missing option '--host'" in result.stderr


def test_other_commands_take_the_same_host_forms(paths: Paths) -> None:
    from stack.runtime.select import get_runtime

    for given, expected in [
        ("ops@server", "ssh://ops@server"),
        ("ssh://ops@server:2222", "ssh://ops@server:2222"),
        ("ops@server:2222", "ssh://ops@server:2222"),
        ("prod", "prod"),
        ("tcp://10.0.0.5:2376", "tcp://10.0.0.5:2376"),
    ]:
        assert get_runtime(Settings(), paths, name="docker", host=given).host == expected  # type: ignore[attr-defined]


# --- the operating commands take the deploy's --host (issue #8) ------------------------------

REMOTE = "ssh://ops@server"
RUNNING = (
    {"when": ["compose", "ps"], "stdout": recorded("ps-all-running.jsonl")},
    {"when": ["container", "inspect"], "stdout": recorded("inspect-all-running.json")},
)
# Recorded busybox wget output: headers on stderr (-S), body on stdout.
WGET_OK = "  HTTP/1.1 200 OK\n  Content-Type: application/json\n"
SILENCES_URL = "http://127.0.0.1:9093/api/v2/silences"
SILENCE = {
    "id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    "matchers": [{"name": "alertname", "value": "DiskFilling", "isRegex": False, "isEqual": True}],
    "startsAt": "2026-11-28T15:00:00.000Z",
    "endsAt": "2099-01-01T00:00:00.000Z",
    "createdBy": "ops",
    "comment": "disk swap on Tuesday",
    "status": {"state": "active"},
    "updatedAt": "2026-11-28T15:00:00.000Z",
}


def _all_remote(fake_docker: FakeDocker, host: str = REMOTE) -> list[list[str]]:
    """Every docker call made, after checking that each one went to `host`."""
    calls = fake_docker.calls()
    assert calls and all(argv[:2] == ["--host", host] for argv in calls), calls
    return calls


def test_logs_on_a_remote_host(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario(
        {"when": ["compose", "logs"], "stdout": "ts=1 level=info msg=ready\nts=2 level=warn msg=slow\n"}
    )
    result = invoke("logs", "--host", REMOTE, "loki", "--since", "10m")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ts=1 level=info msg=ready\nts=2 level=warn msg=slow\n"
    [logs] = [argv for argv in _all_remote(fake_docker) if "logs" in argv]
    assert logs[2:] == [
        "compose", "--project-name", "observability", "logs", "--no-color", "--since", "10m", "--no-log-prefix", "loki",
    ]  # fmt: skip


def test_down_on_a_remote_host_keeps_the_data(project_dir: Path, fake_docker: FakeDocker) -> None:
    fake_docker.scenario({"when": ["compose", "down"]})
    # `user@server`, as in `make deploy HOST=...`, means the same ssh:// engine.
    result = invoke("down", "--host", "ops@server")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Stopped observability; its data is kept (`stack up` brings it back).\n"
    [down] = [argv for argv in _all_remote(fake_docker) if "down" in argv]
    assert down[2:5] == ["compose", "--project-name", "observability"]
    assert down[-4:] == ["down", "--remove-orphans", "--timeout", "30"]
    assert "--volumes" not in down


def test_backup_and_restore_on_a_remote_host(project_dir: Path, paths: Paths, fake_docker: FakeDocker) -> None:
    """Backup and restore of Alertmanager (its silences) on an ssh:// engine: the archive is written
    on this machine, beside stack.yaml, and every docker call goes to the server.

    Alertmanager is the one component whose state travels entirely through `docker compose exec`
    (wget in its container), which the stand-in docker plays back; the others copy files through the
    Engine API, which on an ssh:// host the docker SDK reaches through its own ssh: not faked here."""
    (project_dir / "stack.yaml").write_text("project: observability\n")
    fake_docker.scenario(
        *RUNNING,
        {
            "when": ["compose", "exec", "-T", "alertmanager", "wget", SILENCES_URL],
            "stdout": json.dumps([SILENCE, {**SILENCE, "id": "expired-one", "status": {"state": "expired"}}]),
            "stderr": WGET_OK,
        },
    )
    result = invoke("backup", "--host", REMOTE, "--only", "alertmanager", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    archive = Path(shown["path"])
    assert archive.parent == project_dir / "backups" and archive.is_file()
    assert [c["component"] for c in shown["components"]] == ["alertmanager"]
    calls = _all_remote(fake_docker)
    assert any(argv[2:] == ["version", "--format", "{{.Server.Version}}"] for argv in calls)
    [listing] = [argv for argv in calls if "exec" in argv]
    assert listing[-1] == SILENCES_URL
    assert invoke("backup", "verify", str(archive)).exit_code == 0

    # The server lost its silences since: the restore creates the active one again, on the server.
    fake_docker.reset_calls()
    fake_docker.scenario(
        *RUNNING,
        {
            "when": ["compose", "exec", "-T", "alertmanager", "wget", "http://127.0.0.1:9093/-/ready"],
            "stdout": "OK",
            "stderr": WGET_OK,
        },
        {
            "when": ["compose", "exec", "-T", "alertmanager", "wget", "--post-data"],
            "stdout": json.dumps({"silenceID": "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718"}),
            "stderr": WGET_OK,
        },
        {"when": ["compose", "exec", "-T", "alertmanager", "wget", SILENCES_URL], "stdout": "[]", "stderr": WGET_OK},
    )
    result = invoke("restore", str(archive), "--host", REMOTE, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Restored alertmanager from {archive} in ")
    assert "alertmanager: 1 silence(s) restored, 0 already present or ended" in result.stderr
    calls = _all_remote(fake_docker)
    [post] = [argv for argv in calls if "--post-data" in argv]
    sent = json.loads(post[post.index("--post-data") + 1])
    assert sent["comment"] == SILENCE["comment"] and sent["matchers"] == SILENCE["matchers"]
    # Silences are restored through the API: nothing is stopped, nothing replaced.
    assert not [argv for argv in calls if {"stop", "rm", "volume"} & set(argv)]


def test_automatic_certificates_need_the_name_to_point_at_the_server(paths: Paths) -> None:
    from stack.deploy.preflight import dns_check

    settings = parse_settings(SERVER)
    table = {"grafana.example.com": {"203.0.113.7"}, "server.example.com": {"203.0.113.7"}, "other": {"198.51.100.1"}}
    resolver = lambda name: table.get(name, set())  # noqa: E731
    ok = dns_check(settings, "server.example.com", resolver)
    assert ok is not None and ok.ok and ok.message == "grafana.example.com -> 203.0.113.7"
    elsewhere = dns_check(settings, "other", resolver)
    assert elsewhere is not None and not elsewhere.ok and elsewhere.forceable
    assert elsewhere.message == "grafana.example.com points at 203.0.113.7, the server is 198.51.100.1"
    missing = dns_check(parse_settings({**SERVER, "server": {"hostname": "nowhere.invalid"}}), "other")
    assert missing is not None and missing.message == "nowhere.invalid does not resolve: no certificate can be issued"
    # Not with the user's certificate or Caddy's own CA.
    internal = parse_settings({**SERVER, "server": {"hostname": "g.example.com", "tls": {"mode": "internal"}}})
    assert dns_check(internal, "other", resolver) is None
    checks = run_preflight(
        settings, paths, good_facts(), yaml.safe_load(render_project(settings).text()), server_host="other",
        resolver=resolver,
    )  # fmt: skip
    assert [c.name for c in blocking(checks, force=False)] == ["dns"]
    assert blocking(checks, force=True) == []


# --- a server that accepts the connection but never completes the SSH handshake -------------


@contextlib.contextmanager
def _not_sshd(behaviour: str) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that does what a busy, blocked or wrong server does to ssh:
    `close` (sshd's MaxStartups, fail2ban), `silent` (no banner), `tls` (a TLS service's alert)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            if behaviour == "close":
                connection.recv(256)  # the client's banner, so that closing sends FIN, not RST
                connection.close()
            elif behaviour == "tls":
                # A TLS server's "protocol version" alert. (An HTTP server's text lines are skipped by
                # ssh as pre-banner lines: that ends as `close`.)
                connection.recv(256)
                connection.sendall(b"\x15\x03\x03\x00\x02\x02\x46")
                connection.close()
            else:
                held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


# ssh keeps the first value of an option: these win over the deploy's ConnectTimeout=10.
_QUICK = ["-o", "ConnectTimeout=2", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]


@pytest.mark.parametrize(
    ("behaviour", "meaning", "printed", "hint"),
    [
        (
            "close",
            "the server closed the connection before the SSH handshake",
            "kex_exchange_identification: Connection closed by remote host",
            "sshd's MaxStartups",
        ),
        (
            "silent",
            "the server accepted the connection but sent no SSH banner in time",
            "Connection timed out during banner exchange",
            "ConnectTimeout=30",
        ),
        (
            "tls",
            "the service on that port does not speak SSH",
            "kex_exchange_identification: banner line contains invalid characters",
            "check the port",
        ),
    ],
)
def test_a_failed_ssh_handshake_is_one_clear_line(behaviour: str, meaning: str, printed: str, hint: str) -> None:
    if not shutil.which("ssh"):
        pytest.skip("ssh is not installed: `make test-deps` installs openssh-client")
    with _not_sshd(behaviour) as port:
        target = parse_target(f"ssh://ops@127.0.0.1:{port}")
        with pytest.raises(StackError) as caught:
            run_remote(target, "true", options=_QUICK)
        assert caught.value.message == f"ssh ops@127.0.0.1: {meaning} ({printed})"
        assert caught.value.hint is not None and hint in caught.value.hint
        assert "\n" not in caught.value.one_line()
        if behaviour == "close":
            with pytest.raises(StackError) as caught, open_tunnel(target, [3000], options=_QUICK):
                pass
            assert caught.value.message == f"ssh tunnel to ops@127.0.0.1: {meaning} ({printed})"


def test_a_failed_handshake_through_docker_s_ssh_is_one_clear_line(project_dir: Path, fake_docker: FakeDocker) -> None:
    if not shutil.which("ssh"):
        pytest.skip("ssh is not installed: `make test-deps` installs openssh-client")
    with _not_sshd("close") as port:
        # What the real ssh prints, wrapped the way docker's connection helper reports it.
        ssh = subprocess.run(
            ["ssh", *_QUICK, "-p", str(port), "ops@127.0.0.1", "docker", "system", "dial-stdio"],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    assert ssh.returncode == 255
    host = f"ssh://ops@127.0.0.1:{port}"
    fake_docker.scenario(
        {
            "when": ["--host", host, "version"],
            "stderr": 'error during connect: Get "http://docker.example.com/v1.50/version": command [ssh -o '
            f"ConnectTimeout=30 -T -l ops -p {port} -- 127.0.0.1 docker system dial-stdio] has exited with exit "
            "status 255, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: "
            f"stderr={ssh.stderr}",
            "rc": 1,
        }
    )
    result = invoke("status", "--host", host)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"Error: no Docker engine answers at {host}: the server closed the connection before the SSH handshake "
        "(kex_exchange_identification: Connection closed by remote host) (hint: sshd turned this client away"
    )
    assert f"try `ssh -v {host}`" in result.stderr
    assert "Traceback" not in result.stderr
