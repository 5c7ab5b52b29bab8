"""`stack status --json` imports only what it needs: no Docker SDK, python-on-whales, rich, OpenTelemetry,
backup, Grafana provisioning or doctor code, and no runtime but the one chosen.

Its speed is measured in scripts/bench/bench_status_process.py (rule 6: no timed tests); this guards
the import discipline that speed rests on. Each case runs the real command in a fresh interpreter,
doing its real work (a real Prometheus probed, a real engine asked), then lists what got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stack.net.ports import free_port
from tests.conftest import require_tool
from tests.support.engine import Engine

# Libraries and packages that no `status --json` needs, on any runtime.
NEVER = (
    "docker",
    "python_on_whales",
    "rich",
    "tenacity",
    "jsonschema",
    "opentelemetry",
    "zstandard",
    "cryptography",
    "stack.backup",
    "stack.deploy",
    "stack.doctor",
    "stack.grafana",
    "stack.smoke",
    "stack.validate",
)

# Rendering: on Docker, status reads the component registry but renders no compose file nor config
# (the process runtime's plan still imports the renderer).
RENDERING = ("stack.render", "stack.alerting")

# Runs the CLI as the console script does, then writes the names of the imported modules to argv[1].
PROBE = """
import json, sys
from stack.cli import main
code = 0
try:
    main(["status", "--json"])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def _status_imports(project: Path, env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    """Exit code, imported modules and stdout of `stack status --json` run in `project`."""
    report = project / "imports.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report)],
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert report.exists(), done.stderr
    found = json.loads(report.read_text())
    return found["code"], set(found["modules"]), done.stdout


def _loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(name for name in modules if any(name == p or name.startswith(p + ".") for p in packages))


def _write_settings(project: Path, runtime: str, enabled: tuple[str, ...]) -> None:
    lines = [f"project: status-imports\nruntime: {runtime}\ncomponents:"]
    for name in ("otel-collector", "prometheus", "loki", "tempo", "grafana", "alertmanager"):
        lines.append(f"  {name}: {{port: {free_port()}}}" if name in enabled else f"  {name}: {{enabled: false}}")
    (project / "stack.yaml").write_text("\n".join(lines) + "\n")


def test_status_on_the_process_runtime_probes_a_real_prometheus_with_a_lean_import_set(project_dir: Path) -> None:
    require_tool("prometheus")
    _write_settings(project_dir, "process", ("prometheus",))
    up = subprocess.run(
        [sys.executable, "-m", "stack", "up", "--no-provision"], cwd=project_dir, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stderr
    try:
        code, modules, stdout = _status_imports(project_dir)
    finally:
        subprocess.run([sys.executable, "-m", "stack", "down"], cwd=project_dir, capture_output=True, check=False)
    assert code == 0, stdout
    assert json.loads(stdout)["components"][0]["ready"] is True  # the probe really ran
    assert _loaded(modules, NEVER) == []
    assert _loaded(modules, ("stack.runtime.docker", "stack.runtime.swarm")) == []


def test_status_on_the_docker_runtime_asks_the_real_engine_with_a_lean_import_set(
    project_dir: Path, engine: Engine
) -> None:
    _write_settings(project_dir, "docker", ("prometheus", "alertmanager"))
    code, modules, stdout = _status_imports(project_dir)
    # Nothing is up: every component is reported missing (exit 1), after the engine answered.
    assert code == 1, stdout
    assert {row["state"] for row in json.loads(stdout)["components"]} == {"missing"}
    assert _loaded(modules, NEVER) == []
    assert _loaded(modules, ("stack.runtime.process", "stack.runtime.swarm", "psutil")) == []
    assert _loaded(modules, RENDERING) == []


def test_status_with_no_engine_answering_fails_without_importing_docker_libraries(project_dir: Path) -> None:
    _write_settings(project_dir, "docker", ("prometheus",))
    socket_path = project_dir / "no-engine.sock"
    code, modules, _ = _status_imports(project_dir, {"DOCKER_HOST": f"unix://{socket_path}"})
    assert code != 0
    assert _loaded(modules, NEVER) == []
