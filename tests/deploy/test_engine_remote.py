"""Every `--host` command end to end on the real test engine (tests/support/engine.py), reached over real sshds
on 127.0.0.1 (tests/support/sshd.py) whose sessions' `docker` talks to that engine: `deploy`, `status`, `logs`,
`backup`, `restore`, `doctor` and `down`.

The host is named three ways: `ssh://root@127.0.0.1:PORT`; an alias of the user's ssh config with
its Port, User and the key only there (IdentityFile); and an alias reached through a second sshd
(ProxyJump). DOCKER_HOST is unset for `stack`, so that anything not going to the --host engine fails.
`stack` runs as a program, so that a stray line from any process it starts would show on stderr.

Grafana, Loki and Tempo have no binary here: they are disabled; Prometheus and Alertmanager run from
images built from Debian's binaries (tests/support/images.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.backup.retention import archives_of
from stack.errors import RuntimeUnavailable
from stack.paths import Paths
from stack.project import load
from stack.runtime.docker.runtime import DockerRuntime
from tests.backup.test_backup_archive import GOOD, build
from tests.conftest import require_tool
from tests.support.engine import Engine
from tests.support.enginestack import write_engine_settings
from tests.support.sshd import SshServer, alias, ssh_config_on_path, sshd

KNOWN_HOSTS_OFF = "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"


@dataclass(frozen=True)
class Remote:
    host: str
    servers: tuple[SshServer, ...]


def stack_cli(project_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack", *args],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def no_stray_lines(done: subprocess.CompletedProcess[str]) -> None:
    """Nothing from a second, differently configured connection (the SDK's own ssh, say)."""
    for text in (done.stdout, done.stderr):
        assert "ssh: connect to host" not in text, text
        assert "Traceback" not in text, text


@pytest.fixture(params=["url", "alias", "proxyjump"])
def remote(
    request: pytest.FixtureRequest, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Remote]:
    """The test engine behind an sshd, named as --host in one of three ways."""
    reach_engine = engine.env()
    with sshd(tmp_path, environment=reach_engine) as server:
        # Only the server's sessions reach the engine: not DOCKER_HOST on this side.
        monkeypatch.delenv("DOCKER_HOST")
        if request.param == "url":
            # The key and known hosts as a user keeps them; the port and user only in the URL.
            config = f"Host 127.0.0.1\n  IdentityFile {server.key}\n  IdentitiesOnly yes\n" + KNOWN_HOSTS_OFF
            ssh_config_on_path(tmp_path, monkeypatch, config)
            yield Remote(f"ssh://{server.user}@127.0.0.1:{server.port}", (server,))
            return
        if request.param == "alias":
            ssh_config_on_path(tmp_path, monkeypatch, alias("stack-prod", server))
            yield Remote("ssh://stack-prod", (server,))
            return
        with sshd(tmp_path, name="jump") as jump:
            config = alias("stack-behind", server, ProxyJump="stack-jump") + alias("stack-jump", jump)
            ssh_config_on_path(tmp_path, monkeypatch, config)
            yield Remote("ssh://stack-behind", (server, jump))


@pytest.mark.docker
def test_every_host_command_on_the_real_engine_over_ssh(project_dir: Path, engine: Engine, remote: Remote) -> None:
    project = write_engine_settings(project_dir, engine, "stack-remote")
    host = remote.host
    try:
        # --force: a developer machine may be short of the disk or memory a server should have.
        deployed = stack_cli(project_dir, "deploy", "--host", host, "--timeout", "120", "--force", "--no-pull")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        no_stray_lines(deployed)
        assert "ok      compose file self-contained" in deployed.stderr
        assert engine.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()

        status = stack_cli(project_dir, "status", "--json", "--host", host)
        assert status.returncode == 0, status.stderr
        no_stray_lines(status)
        assert all(c["ready"] for c in json.loads(status.stdout)["components"])

        logs = stack_cli(project_dir, "logs", "alertmanager", "--tail", "50", "--host", host)
        assert logs.returncode == 0, logs.stderr
        no_stray_lines(logs)
        assert "Listening" in logs.stdout or "listening" in logs.stdout, logs.stdout

        backed_up = stack_cli(project_dir, "backup", "--json", "--host", host)
        assert backed_up.returncode == 0, backed_up.stderr
        no_stray_lines(backed_up)
        report = json.loads(backed_up.stdout)
        assert report["notes"] == []
        assert {c["component"] for c in report["components"]} >= {"prometheus", "alertmanager"}
        (archive,) = archives_of(project_dir / "backups", project)
        assert stack_cli(project_dir, "backup", "verify", str(archive)).returncode == 0

        restored = stack_cli(project_dir, "restore", str(archive), "--yes", "--host", host)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        no_stray_lines(restored)

        doctor = stack_cli(project_dir, "doctor", "--json", "--host", host)
        no_stray_lines(doctor)
        findings = json.loads(doctor.stdout)
        assert "running stack" not in findings["skipped"], findings

        down = stack_cli(project_dir, "down", "--host", host)
        assert down.returncode == 0, down.stderr
        no_stray_lines(down)
        assert engine.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout == ""
        # down keeps the data.
        volumes = engine.docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}")
        assert f"{project}_prometheus-data" in volumes.stdout.split()
    finally:
        stack_cli(project_dir, "down", "--volumes", "--yes", "--host", host)
        engine.docker("compose", "--project-name", project, "down", "--volumes", check=False)
    if len(remote.servers) == 2:
        # Every connection went through the jump host.
        assert "Accepted publickey" in remote.servers[1].log.read_text()


NOWHERE = (
    "cannot reach the Docker engine at ssh://stack-nowhere over SSH: ssh: Could not resolve hostname "
    "nowhere.invalid: Name or service not known (hint: check the SSH connection: "
    "`ssh stack-nowhere docker version` must work without a prompt (~/.ssh/config, key or agent))"
)


def nowhere(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An alias whose HostName does not resolve, in the user's ssh config."""
    require_tool("docker")
    ssh_config_on_path(tmp_path, monkeypatch, "Host stack-nowhere\n  HostName nowhere.invalid\n" + KNOWN_HOSTS_OFF)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    (project_dir / "stack.yaml").write_text("project: stack-nowhere\n")


@pytest.mark.parametrize(
    "command",
    [
        ["deploy", "--force"],
        ["status"],
        ["logs"],
        ["backup"],
        ["restore", "ARCHIVE", "--yes"],
        ["down"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_alias_that_does_not_resolve_is_one_line_about_the_connection(
    command: list[str], project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere(project_dir, tmp_path, monkeypatch)
    archive = build(tmp_path / "good.tar.zst", GOOD)
    argv = [str(archive) if part == "ARCHIVE" else part for part in command]
    done = stack_cli(project_dir, *argv, "--host", "ssh://stack-nowhere", timeout=120)
    no_stray_lines(done)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [f"Error: {NOWHERE}"], done.stderr
    # Nothing else on stderr but the progress lines of the command.
    assert all(line.startswith(("Error: ", "•")) for line in done.stderr.splitlines() if line.strip()), done.stderr


def test_doctor_with_an_alias_that_does_not_resolve_skips_the_running_stack_saying_why(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere(project_dir, tmp_path, monkeypatch)
    done = stack_cli(project_dir, "doctor", "--host", "ssh://stack-nowhere", timeout=120)
    no_stray_lines(done)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Skipped running stack: {NOWHERE}" in done.stdout.splitlines()
    # Probed from here at the alias's HostName, as ssh resolves it.
    assert "reachable from here (nowhere.invalid)" in done.stdout


def test_the_engine_api_over_an_alias_that_does_not_resolve_is_the_same_one_line(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The commands check the engine with the docker CLI first, so the tests above never reach the
    # Engine API's own connection (archives, pulls): where issue 19 saw a BrokenPipe and "start Docker".
    nowhere(project_dir, tmp_path, monkeypatch)
    paths = Paths.discover(project_dir / "stack.yaml")
    runtime = DockerRuntime(load(paths), paths, host="ssh://stack-nowhere")
    with pytest.raises(RuntimeUnavailable) as caught:
        runtime.engine.call(lambda api: api.version())
    assert caught.value.one_line() == NOWHERE


@pytest.mark.docker
def test_the_engine_api_losing_its_ssh_server_mid_way_is_one_line_about_the_connection(
    project_dir: Path, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir / "stack.yaml").write_text("project: stack-gone\n")
    paths = Paths.discover(project_dir / "stack.yaml")
    with sshd(tmp_path, environment=engine.env()) as server:
        ssh_config_on_path(tmp_path, monkeypatch, alias("stack-gone", server))
        monkeypatch.delenv("DOCKER_HOST")
        runtime = DockerRuntime(load(paths), paths, host="ssh://stack-gone")
        api = runtime.engine.client.api
        assert runtime.engine.call(lambda api: api.version())["ApiVersion"]
    # The server is gone, and so is the connection the client kept (its ssh ends).
    api.transport.close()
    with pytest.raises(RuntimeUnavailable) as caught:
        runtime.engine.call(lambda api: api.version())
    assert caught.value.one_line() == (
        f"cannot reach the Docker engine at ssh://stack-gone over SSH: ssh: connect to host 127.0.0.1 port "
        f"{server.port}: Connection refused (hint: check the SSH connection: `ssh stack-gone docker version` "
        "must work without a prompt (~/.ssh/config, key or agent))"
    )
