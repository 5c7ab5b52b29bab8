"""`stack up/status/logs/down --runtime process` end to end, with Debian's real binaries."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.net.ports import free_port
from stack.resources import repo_root
from tests.conftest import invoke
from tests.runtime.docker.test_docker_e2e import engine_problem
from tests.runtime.process.test_process_runtime import _fake_binary, _settings_text, open_runtime, processes_under
from tests.support.backup_helpers import query_range, write_known_series
from tests.support.realbin import binary


@pytest.fixture
def project(project_dir: Path) -> Iterator[Path]:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    (project_dir / "stack.yaml").write_text(_settings_text(free_port()))
    yield project_dir
    invoke("down", "--runtime", "process", "--volumes", "--yes", "--timeout", "5")
    assert processes_under(project_dir) == []


def _set(project: Path, **changes: object) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data.update(changes)
    (project / "stack.yaml").write_text(yaml.safe_dump(data))


def test_up_status_logs_down(project: Path) -> None:
    # The settings say docker; the flag chooses the process runtime for each command.
    _set(project, runtime="docker")
    result = invoke("up", "--runtime", "process")
    assert result.exit_code == 0, result.stderr
    assert "Ready in" in result.stdout
    port = yaml.safe_load((project / "stack.yaml").read_text())["components"]["alertmanager"]["port"]
    assert f"Alertmanager  http://localhost:{port}" in result.stdout
    assert "Warning: alertmanager: " in result.stderr  # Debian's version differs from the pinned one

    status = invoke("status", "--runtime", "process", "--json")
    assert status.exit_code == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["runtime"] == "process"
    assert {c["name"]: (c["state"], c["ready"]) for c in report["components"]} == {
        "prometheus": ("running", True),
        "alertmanager": ("running", True),
    }
    assert all(c["version"] for c in report["components"])

    logs = invoke("logs", "alertmanager", "--runtime", "process", "--tail", "3")
    assert logs.exit_code == 0
    assert len(logs.stdout.splitlines()) == 3

    # Run again: idempotent, nothing restarted.
    pids = json.loads((project / ".stack-state/process/proc-test/state.json").read_text())["processes"]
    assert invoke("up", "--runtime", "process").exit_code == 0
    again = json.loads((project / ".stack-state/process/proc-test/state.json").read_text())["processes"]
    assert {n: r["pid"] for n, r in again.items()} == {n: r["pid"] for n, r in pids.items()}

    down = invoke("down", "--runtime", "process")
    assert down.exit_code == 0, down.stderr
    assert processes_under(project) == []
    status = invoke("status", "--runtime", "process", "--json")
    assert status.exit_code == 1
    assert [c["state"] for c in json.loads(status.stdout)["components"]] == ["missing", "missing"]


def test_runtime_process_in_stack_yaml(project: Path) -> None:
    result = invoke("up")
    assert result.exit_code == 0, result.stderr
    assert invoke("status").exit_code == 0
    assert invoke("down").exit_code == 0
    assert processes_under(project) == []


def test_a_port_already_taken(project: Path) -> None:
    port = yaml.safe_load((project / "stack.yaml").read_text())["components"]["alertmanager"]["port"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = invoke("up")
    assert result.exit_code == 1
    error = result.stderr.splitlines()[-1]
    assert error.startswith(
        f"Error: alertmanager: port {port} on 127.0.0.1 (components.alertmanager.port) is already in use by pid "
    )
    assert error.endswith("(hint: stop that program, or set components.alertmanager.port to a free port in stack.yaml)")
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1
    assert "Traceback" not in result.stderr
    assert processes_under(project) == []


def test_a_missing_binary(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["components"]["tempo"] = {"enabled": True}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    result = invoke("up")
    assert result.exit_code == 1
    error = result.stderr.splitlines()[-1]
    assert error.startswith("Error: process runtime: binaries not found in PATH")
    assert "tempo (tempo): download tempo from https://github.com/grafana/tempo/releases" in error
    assert "components.tempo.enabled: false" in error
    assert "Traceback" not in result.stderr
    assert processes_under(project) == []
    # Status and down still work (and say what runs).
    assert invoke("status", "--json").exit_code == 1
    assert invoke("down").exit_code == 0


def test_a_binary_that_exits_at_once(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["components"]["alertmanager"]["overrides"] = {"route": {"receiver": "nobody"}}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    result = invoke("up")
    assert result.exit_code == 1
    assert "Error: alertmanager is not ready: exited with code 1 during start-up" in result.stderr
    assert "log lines of alertmanager:" in result.stderr
    assert 'undefined receiver \\"nobody\\"' in result.stderr
    assert processes_under(project) == []


def test_backup_wipe_restore_brings_the_same_series_back(project: Path) -> None:
    runtime = open_runtime(project)
    # Known series as blocks made by the real promtool, in the data directory before the first start.
    known = write_known_series(runtime.root / "prometheus" / "data", project)
    assert invoke("up").exit_code == 0
    before = query_range(runtime, "stack_backup_probe", known.start, known.end, known.step)
    assert before == {"a": known.values("a"), "b": known.values("b")}
    now = datetime.now(UTC)
    silence = {
        "matchers": [{"name": "alertname", "value": "ProcessRuntimeTest", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=2)).isoformat(),
        "createdBy": "test",
        "comment": "kept across a restore",
    }
    created = runtime.http(
        "alertmanager",
        "http",
        "/api/v2/silences",
        method="POST",
        body=json.dumps(silence).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert created.status == 200, created.text()

    backup = invoke("backup")
    assert backup.exit_code == 0, backup.stderr
    archives = list((project / "backups").iterdir())
    assert len(archives) == 1

    # Wipe: everything deleted, then a fresh, empty stack.
    assert invoke("down", "--volumes", "--yes").exit_code == 0
    assert not (runtime.root / "prometheus" / "data").exists()
    assert invoke("up").exit_code == 0
    assert query_range(runtime, "stack_backup_probe", known.start, known.end, known.step) == {}
    assert json.loads(runtime.http("alertmanager", "http", "/api/v2/silences").body) == []

    restore = invoke("restore", str(archives[0]), "--yes")
    assert restore.exit_code == 0, restore.stderr
    assert query_range(runtime, "stack_backup_probe", known.start, known.end, known.step) == before
    silences = json.loads(runtime.http("alertmanager", "http", "/api/v2/silences").body)
    assert [s["comment"] for s in silences] == ["kept across a restore"]
    assert {s.state for s in runtime.ps()} == {"running"}

    assert invoke("down").exit_code == 0
    assert processes_under(project) == []


def test_down_honours_process_stop_timeout(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["process"] = {"bin_dir": "bin", "stop_timeout": "1s"}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    # An Alertmanager stand-in that answers its readiness probe but ignores SIGTERM.
    _fake_binary(
        project / "bin",
        "alertmanager",
        """
        import http.server, signal, sys
        if "--version" in sys.argv:
            print("alertmanager, version 0.35.1")
            sys.exit(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        host, port = [a for a in sys.argv if a.startswith("--web.listen-address=")][0].split("=", 1)[1].rsplit(":", 1)
        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
        http.server.HTTPServer((host, int(port)), Ok).serve_forever()
        """,
    )
    assert invoke("up").exit_code == 0
    began = time.monotonic()
    assert invoke("down").exit_code == 0
    assert 1 <= time.monotonic() - began < 10
    assert processes_under(project) == []


def test_logs_follow_ends_when_the_stack_stops(project: Path) -> None:
    assert invoke("up").exit_code == 0
    runtime = open_runtime(project)
    lines: list[str] = []
    follower = threading.Thread(target=lambda: lines.extend(runtime.logs("alertmanager", follow=True)))
    follower.start()
    time.sleep(0.5)
    assert invoke("down").exit_code == 0
    follower.join(timeout=10)
    assert not follower.is_alive()
    assert any("Listening on" in line for line in lines)


def test_make_up_without_docker_points_at_the_process_runtime(tmp_path: Path) -> None:
    """The README's first command, through the real Makefile, on a machine without a Docker engine."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    if shutil.which("docker") and engine_problem() is None:
        pytest.skip("a Docker engine answers here")
    # As from a user's shell: under `make test` (CI) the parent make's MAKELEVEL/MAKEFLAGS would make
    # this one a sub-make, which words its own lines `make[1]: ...`.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STACK_") and k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    }
    venv = Path(sys.prefix)
    # `-o install`: this virtualenv is the one running the tests, already installed.
    done = subprocess.run(
        ["make", "-f", str(repo_root() / "Makefile"), "-o", "install", "--no-print-directory", "up", f"VENV={venv}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("Error: ")
    assert "Docker" in errors[0]
    # Under make, the hint is the make target: `stack` itself is not on PATH (the venv is not active).
    assert "make up RUNTIME=process" in errors[0]
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def _make(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`make ...` with the repository's Makefile, as from a user's shell, in `directory`."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STACK_") and k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    }
    return subprocess.run(
        ["make", "-f", str(repo_root() / "Makefile"), "-o", "install", "--no-print-directory", *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def test_make_up_runtime_process_starts_what_is_here_and_skips_the_rest(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The no-Docker path a newcomer walks: one command, what this machine has comes up, each missing
    component is one line saying why and how to get it, and the URLs printed are the ones that work."""
    from stack.components import REGISTRY
    from stack.runtime.process.binaries import find

    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    # A cache of its own: the Collector build in the shared cache (`make collector`) may appear while
    # this runs (another session building it), which would change what is missing between the two looks.
    monkeypatch.setenv("XDG_CACHE_HOME", str(project_dir / "cache"))
    port = free_port()
    # Only the ports: everything else is the defaults a fresh clone has (all six components).
    components: dict[str, Any] = {"alertmanager": {"port": port}, "grafana": {"port": free_port()}}
    # The Collector is found too where `make collector` has built it: never on the machine's 4317/4318.
    components["otel-collector"] = {"otlp_grpc_port": free_port(), "otlp_http_port": free_port(), "port": free_port()}
    settings = {"project": "newcomer", "components": components}
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(settings))
    missing = [
        name
        for name in ("otel-collector", "prometheus", "loki", "tempo", "grafana", "alertmanager")
        if find(name, None) is None
    ]
    assert "prometheus" not in missing and "alertmanager" not in missing
    venv = f"VENV={Path(sys.prefix)}"
    try:
        done = _make(project_dir, "up", "RUNTIME=process", venv)
        assert done.returncode == 0, done.stdout + done.stderr
        skipped = [line for line in done.stderr.splitlines() if line.startswith("Warning: skipping ")]
        assert [line.split()[2].rstrip(":") for line in skipped] == missing
        for line in skipped:
            component = line.split()[2].rstrip(":")
            assert REGISTRY[component].binary.get_it in line
        assert re.search(rf"^Alertmanager +http://localhost:{port}$", done.stdout, re.MULTILINE), done.stdout
        if "grafana" in missing:
            # No URL of a skipped component, and no pointer to it.
            assert "Grafana" not in done.stdout, done.stdout
        assert "Ready in" in done.stdout
        version_warnings = [line for line in done.stderr.splitlines() if "stack.yaml pins" in line]

        again = _make(project_dir, "up", "RUNTIME=process", venv)
        assert again.returncode == 0, again.stdout + again.stderr
        # The skipped components are said again (they are still missing); version differences once only.
        assert [line for line in again.stderr.splitlines() if line.startswith("Warning: skipping ")] == skipped
        assert version_warnings, "Debian's versions differ from the pins: the first up says so"
        assert not [line for line in again.stderr.splitlines() if "stack.yaml pins" in line]
    finally:
        invoke("down", "--runtime", "process", "--volumes", "--yes", "--timeout", "5")
    assert processes_under(project_dir) == []


def test_skip_missing_is_for_the_process_runtime_and_needs_something_to_start(project_dir: Path) -> None:
    result = invoke("up", "--runtime", "docker", "--skip-missing")
    assert result.exit_code == 2
    assert "--skip-missing is for the process runtime" in result.stderr
    components = {name: {"enabled": False} for name in ("otel-collector", "prometheus", "alertmanager")}
    (project_dir / "stack.yaml").write_text(yaml.safe_dump({"project": "nothing", "components": components}))
    empty = project_dir / "empty-bin"
    empty.mkdir()
    os.environ["PATH"], saved = str(empty), os.environ["PATH"]
    try:
        result = invoke("up", "--runtime", "process", "--skip-missing")
    finally:
        os.environ["PATH"] = saved
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: process runtime: none of the enabled components has its binary here")
    assert "skipping grafana: no grafana or grafana-server in PATH" in error
    assert "Traceback" not in result.stderr
