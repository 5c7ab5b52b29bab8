"""`stack deploy` of the whole stack end to end on the suite's real engine (tests/support/engine.py), reached
over a real SSH server on 127.0.0.1 through an alias of the ssh config: preflight, tunnel, every
component ready, Grafana provisioned; then `status`, `doctor` and `down` with the same `--host`.

It needs an image of every component on the test engine (tests/support/enginestack.py full_stack_settings):
until Grafana, Loki and Tempo have one, it skips naming them. Prometheus and Alertmanager alone run
every --host command over SSH in tests/deploy/test_engine_remote.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.enginestack import full_stack_settings
from tests.support.sshd import alias, ssh_config_on_path, sshd


@pytest.mark.docker
def test_deploy_over_ssh_to_a_real_engine(
    project_dir: Path, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_stack_settings(engine, project_dir)
    with sshd(tmp_path, environment=engine.env()) as server:
        ssh_config_on_path(tmp_path, monkeypatch, alias("stack-deploy-e2e", server))
        # Only the server's sessions reach the engine.
        monkeypatch.delenv("DOCKER_HOST")
        host = "ssh://stack-deploy-e2e"
        try:
            # --force: a developer machine may be short of the disk or memory a server should have.
            result = invoke("deploy", "--host", host, "--timeout", "300", "--force", "--no-pull")
            assert result.exit_code == 0, result.output
            assert "ok      compose file self-contained" in result.stderr
            status = invoke("status", "--json", "--host", host)
            assert status.exit_code == 0, status.output
            assert all(c["ready"] for c in json.loads(status.stdout)["components"])
            doctor = invoke("doctor", "--json", "--host", host, "--skip", "reachable-from-outside")
            report = json.loads(doctor.stdout)
            assert report["counts"]["high"] == 0, report["findings"]
            assert "running stack" not in report["skipped"]
        finally:
            down = invoke("down", "--volumes", "--yes", "--host", host)
            assert down.exit_code == 0, down.output
