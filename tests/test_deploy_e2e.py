"""`stack deploy` end to end on a real Docker engine, reached over a real SSH server on 127.0.0.1:
preflight, tunnel, every component ready, Grafana provisioned; then `status`, `doctor` and `down`
with the same `--host`.

Skipped, with the reason, where no engine answers (STACK_REQUIRE_DOCKER=1 makes it fail instead).
Docker's own ssh reads ~/.ssh/config only: the test points HOME at a directory holding one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.realbin import free_port
from tests.sshd import sshd
from tests.test_docker_e2e import require_engine


@pytest.mark.docker
def test_deploy_over_ssh_to_a_real_engine(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_engine()
    with sshd(tmp_path) as server:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        (home / ".ssh" / "config").write_text(
            "Host stack-deploy-e2e\n  HostName 127.0.0.1\n"
            f"  Port {server.port}\n  User {server.user}\n  IdentityFile {server.key}\n  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        )
        monkeypatch.setenv("HOME", str(home))
        ports = {name: free_port() for name in ("grafana", "loki", "tempo", "alertmanager", "health", "grpc", "http")}
        (project_dir / "stack.yaml").write_text(
            f"project: stack-deploy-e2e-{os.getpid()}\n"
            "components:\n"
            f"  grafana: {{port: {ports['grafana']}}}\n"
            f"  loki: {{port: {ports['loki']}}}\n"
            f"  tempo: {{port: {ports['tempo']}}}\n"
            f"  alertmanager: {{port: {ports['alertmanager']}}}\n"
            f"  otel-collector: {{port: {ports['health']}, otlp_grpc_port: {ports['grpc']}, "
            f"otlp_http_port: {ports['http']}}}\n"
        )
        host = "ssh://stack-deploy-e2e"
        try:
            # --force: a developer machine may be short of the disk or memory a server should have.
            result = invoke("deploy", "--host", host, "--timeout", "300", "--force")
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
