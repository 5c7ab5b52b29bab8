from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stack import __version__
from tests.conftest import invoke, require_tool
from tests.support import realcollector

BAD_INPUT = {
    "malformed YAML": (
        "project: x\ncomponents:\n  grafana: {port: 3000\n",
        "Error: stack.yaml:4: malformed YAML: expected ',' or '}', but got '<stream end>' "
        "(hint: check the indentation and quoting)",
    ),
    "unknown key": (
        "components:\n  grafana:\n    prot: 3000\n",
        "Error: stack.yaml:3: components.grafana.prot: unknown key (hint: did you mean 'port'?)",
    ),
    "unknown component": (
        "components:\n  promethues: {enabled: false}\n",
        "Error: stack.yaml:2: components.promethues: unknown key (hint: did you mean 'prometheus'?)",
    ),
    "wrong type": (
        "components:\n  grafana:\n    port: abc\n",
        "Error: stack.yaml:3: components.grafana.port: expected a whole number, got 'abc'",
    ),
    "bad duration": (
        "components:\n  prometheus:\n    retention: 15x\n",
        "Error: stack.yaml:3: components.prometheus.retention: '15x' is not a duration "
        "(hint: use a positive duration such as 15d, 72h or 30m)",
    ),
    "zero retention": (
        "components:\n  loki:\n    retention: 0d\n",
        "Error: stack.yaml:3: components.loki.retention: '0d' must be longer than zero "
        "(hint: use a positive duration such as 15d, 72h or 30m)",
    ),
    "negative retention": (
        "components:\n  tempo:\n    retention: -72h\n",
        "Error: stack.yaml:3: components.tempo.retention: '-72h' must be longer than zero "
        "(hint: use a positive duration such as 15d, 72h or 30m)",
    ),
    "two components on one port": (
        "components:\n  loki:\n    port: 3000\n",
        "Error: stack.yaml:3: components.loki.port: port 3000 is also published by components.grafana.port "
        "(hint: choose another port)",
    ),
    "unpinned image": (
        "components:\n  grafana:\n    image: grafana/grafana:latest\n",
        "Error: stack.yaml:3: components.grafana.image: 'grafana/grafana:latest' uses 'latest'; pin a version "
        "(hint: e.g. grafana/grafana:13.2.0)",
    ),
    "bad bind address": (
        "bind_address: everywhere\n",
        "Error: stack.yaml:1: bind_address: 'everywhere' is not an IP address (use 127.0.0.1, 0.0.0.0 or a "
        "specific address)",
    ),
    "not a mapping": ("- a\n- b\n", "Error: stack.yaml: expected a mapping of settings at the top level"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
@pytest.mark.parametrize("command", ["render", "validate"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(project_dir: Path, case: str, command: str) -> None:
    text, expected = BAD_INPUT[case]
    (project_dir / "stack.yaml").write_text(text)
    result = invoke(command)
    assert result.exit_code == 2
    assert result.stderr == expected + "\n"
    assert result.stdout == ""
    assert sorted(p.name for p in project_dir.iterdir()) == ["stack.yaml"]


def test_unwritable_output_directory(project_dir: Path) -> None:
    (project_dir / "afile").write_text("")
    result = invoke("render", "--out", "afile/out")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: afile/out: cannot write the rendered project: afile is not a directory (hint: use --out DIR)\n"
    )
    assert sorted(p.name for p in project_dir.iterdir()) == ["afile"]


def test_config_option_and_environment_variable(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project_dir / "elsewhere").mkdir()
    (project_dir / "elsewhere" / "s.yaml").write_text("components:\n  tempo: {enabled: false}\n")
    result = invoke("-c", "elsewhere/s.yaml", "render")
    assert result.exit_code == 0, result.output
    assert (project_dir / "elsewhere" / ".stack" / "compose.yaml").exists()
    assert "5 services" in result.stdout
    monkeypatch.setenv("STACK_CONFIG", "elsewhere/missing.yaml")
    result = invoke("render")
    assert result.exit_code == 0
    assert "6 services" in result.stdout


def test_help_and_version_work_without_a_settings_file(project_dir: Path) -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("init", "render", "validate", "credentials"):
        assert name in result.stdout
    result = invoke("--version")
    assert result.stdout == f"stack, version {__version__}\n"


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from stack.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "mods = ('pydantic', 'yaml', 'requests', 'rich', 'jsonschema', 'python_on_whales')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_init_writes_the_starter_once(project_dir: Path) -> None:
    result = invoke("init")
    assert result.exit_code == 0
    assert (project_dir / "stack.yaml").read_text().startswith("# stack.yaml")
    result = invoke("init")
    assert result.exit_code == 2  # a usage error, like every other (README)
    assert result.stderr == "Error: stack.yaml: already exists (hint: use --force to overwrite it)\n"
    assert invoke("init", "--force").exit_code == 0


def test_credentials_are_generated_once_and_shown(project_dir: Path) -> None:
    result = invoke("credentials", "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["url"] == "http://localhost:3000/"
    assert shown["user"] == "admin"
    assert len(shown["password"]) >= 32
    assert json.loads(invoke("credentials", "--json").stdout)["password"] == shown["password"]
    assert shown["password"] in invoke("credentials").stdout
    # Rendering never prints it.
    assert shown["password"] not in invoke("render").output


def test_secret_file_readable_by_others_is_refused(project_dir: Path) -> None:
    invoke("credentials")
    secret = project_dir / ".stack-secrets" / "grafana-admin-password"
    secret.chmod(0o644)
    result = invoke("credentials")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {Path('.stack-secrets/grafana-admin-password')}: secret file is readable by others (mode 644) "
        f"(hint: run: chmod 600 {Path('.stack-secrets/grafana-admin-password')})\n"
    )


def test_validate_runs_the_real_tools(project_dir: Path) -> None:
    require_tool("promtool")
    require_tool("amtool")
    realcollector.binary()
    result = invoke("validate", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c["status"] for c in json.loads(result.stdout)}
    assert checks == {
        "stack.yaml": "passed",
        "compose schema": "passed",
        "otelcol-contrib validate": "passed",
        "promtool check config": "passed",
        "promtool check rules": "passed",
        "amtool check-config": "passed",
        "logql check rules": "passed",
        "versions (docker)": "passed",
        "dashboards": "passed",
    }


def test_validate_reports_what_the_real_tool_rejects(project_dir: Path) -> None:
    require_tool("promtool")
    require_tool("amtool")
    (project_dir / "stack.yaml").write_text(
        "components:\n"
        "  prometheus:\n    overrides:\n      global: {scrape_timeout: 1m, scrape_interval: 15s}\n"
        "  alertmanager:\n    overrides:\n      route: {receiver: nobody}\n"
    )
    result = invoke("validate", "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["promtool check config"]["status"] == "failed"
    assert "scrape timeout greater than scrape interval" in checks["promtool check config"]["detail"]
    assert checks["amtool check-config"]["status"] == "failed"
    assert "nobody" in checks["amtool check-config"]["detail"]
    assert checks["compose schema"]["status"] == "passed"


def test_validate_table_output(project_dir: Path) -> None:
    result = invoke("validate")
    assert "compose schema" in result.stdout
    assert "passed" in result.stdout
