"""The process runtime's Grafana, against a stand-in that reads what the Grafana binary reads
(tests/support/grafana_standin.py): the generated admin password reaches it through `$__file{}` with an
absolute path, so `stack up` provisions it, and the password is in no argv, environment or file
other than its own 0600 one."""

from __future__ import annotations

import json
from pathlib import Path

import requests
import yaml

from stack.net.ports import free_port
from stack.secrets import GRAFANA_ADMIN_PASSWORD
from stack.settings import COMPONENT_NAMES
from tests.conftest import invoke
from tests.runtime.process.test_process_runtime import processes_under
from tests.support.grafana_standin import install, settings


def _project(directory: Path, port: int) -> None:
    components = {name: {"enabled": False} for name in COMPONENT_NAMES}
    components["grafana"] = {"port": port}
    data = {"project": "graf-test", "runtime": "process", "process": {"bin_dir": "bin"}, "components": components}
    (directory / "stack.yaml").write_text(yaml.safe_dump(data))
    install(directory / "bin")


def test_the_standin_reads_what_the_binary_reads(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-the-file\n")
    # `__FILE` is the Docker image's run.sh feature: the binary starts as admin/admin with it.
    assert settings({"GF_SECURITY_ADMIN_PASSWORD__FILE": str(secret)})[("security", "admin_password")] == "admin"
    expanded = settings({"GF_SECURITY_ADMIN_PASSWORD": f"$__file{{{secret}}}"})
    assert expanded[("security", "admin_password")] == "from-the-file"
    assert settings({"GF_SECURITY_ADMIN_PASSWORD": "$__env{X}", "X": "y"})[("security", "admin_password")] == "y"


def test_up_provisions_the_standin_with_the_generated_password(project_dir: Path) -> None:
    port = free_port()
    _project(project_dir, port)
    try:
        result = invoke("up")
        assert result.exit_code == 0, result.stdout + result.stderr
        assert "Ready in" in result.stdout
        # Provisioning logged in with the generated password (a 401 would have failed `up`).
        assert "Grafana: 0 created, 1 updated" in result.stderr, result.stderr

        password = (project_dir / ".stack-secrets" / GRAFANA_ADMIN_PASSWORD).read_text().strip()
        url = f"http://127.0.0.1:{port}/api/org"
        assert requests.get(url, auth=("admin", password), timeout=5).status_code == 200
        assert requests.get(url, auth=("admin", "admin"), timeout=5).status_code == 401

        # The password itself is in no argv, no environment and no file but its own.
        state = json.loads((project_dir / ".stack-state/process/graf-test/state.json").read_text())
        record = state["processes"]["grafana"]
        assert password not in " ".join(record["argv"])
        environ = _environ_of_children(record["pid"])
        assert environ, "cannot read Grafana's environment"
        assert all(password not in value for value in environ)
        reference = next(value for value in environ if value.startswith("GF_SECURITY_ADMIN_PASSWORD="))
        secret_path = reference.partition("=")[2].removeprefix("$__file{").removesuffix("}")
        assert Path(secret_path).is_absolute() and Path(secret_path).read_text().strip() == password
        for path in (project_dir / ".stack-state").rglob("*"):
            if path.is_file():
                assert password not in path.read_text(errors="replace"), path
    finally:
        invoke("down", "--volumes", "--yes", "--timeout", "5")
    assert processes_under(project_dir) == []


def _environ_of_children(pid: int) -> list[str]:
    """The environment of the process under the runner `pid` (the runner's own, when it has none)."""
    import psutil

    try:
        runner = psutil.Process(pid)
        targets = runner.children(recursive=True) or [runner]
        found: list[str] = []
        for process in targets:
            with open(f"/proc/{process.pid}/environ", "rb") as handle:
                found += [item.decode(errors="replace") for item in handle.read().split(b"\0") if item]
        return found
    except (psutil.Error, OSError):
        return []
