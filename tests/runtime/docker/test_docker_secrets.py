"""The project's secrets (Grafana's admin password, the TLS proxy's key) reach `docker compose`, which
needs them, and no other child: not ssh, not promtool, not a plain `docker` command run later."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.paths import Paths
from stack.project import render_to_disk
from stack.runtime.docker import DockerRuntime
from stack.secrets import GRAFANA_PASSWORD_ENV
from stack.settings import load_settings
from tests.support import DATA
from tests.support.fake_docker import FakeDocker, install
from tests.support.fake_engine import fake_engine

TLS = DATA / "tls"
SECRETS = (GRAFANA_PASSWORD_ENV, "STACK_PROXY_TLS_CERT", "STACK_PROXY_TLS_KEY")


@pytest.fixture
def fake_docker(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDocker]:
    with fake_engine(tmp_path_factory.mktemp("engine")) as engine:
        yield install(tmp_path_factory.mktemp("fake-docker"), monkeypatch, engine.url)


def _server_project(project_dir: Path) -> Paths:
    (project_dir / "stack.yaml").write_text(
        "profile: server\n"
        "server:\n"
        "  hostname: grafana.example.com\n"
        "  tls:\n"
        "    mode: files\n"
        f"    cert_file: {TLS / 'cert.pem'}\n"
        f"    key_file: {TLS / 'key.pem'}\n"
    )
    paths = Paths.discover(project_dir / "stack.yaml")
    render_to_disk(paths)
    return paths


def _seen_by_a_later_child() -> dict[str, str]:
    """The secret variables a program started now would find in its environment (a real process)."""
    script = "import json, os, sys; json.dump({k: os.environ[k] for k in sys.argv[1:] if k in os.environ}, sys.stdout)"
    done = subprocess.run(["python3", "-c", script, *SECRETS], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def test_secrets_reach_compose_only_not_later_children(project_dir: Path, fake_docker: FakeDocker) -> None:
    paths = _server_project(project_dir)
    fake_docker.scenario({"when": ["compose", "up"]}, {"when": ["compose", "ps"], "stdout": ""})
    runtime = DockerRuntime(load_settings(paths.settings_file), paths)
    runtime.check()
    runtime.up()
    runtime.ps()

    # compose got them: its `up` saw the password and the TLS key in its own environment.
    up = next(record for record in fake_docker.records() if "up" in record["argv"])
    assert up["password_set"] is True
    assert set(up["secrets_set"]) == set(SECRETS)
    # A plain docker command (inspect, version) is no compose: it gets none of them.
    plain = [record for record in fake_docker.records() if "compose" not in record["argv"]]
    assert plain and all(not record["secrets_set"] for record in plain)
    # And nothing is left behind for the children started after `up` (ssh, promtool...).
    assert not [name for name in SECRETS if name in os.environ]
    assert _seen_by_a_later_child() == {}
