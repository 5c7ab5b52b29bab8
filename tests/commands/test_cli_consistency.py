"""The smaller inconsistencies of issue 16, each as the user meets it: usage errors exit 2, a refused
`up` prints no step and writes nothing, every missing secret named at once, `credentials` without
Grafana, and the process runtime's `status` and `doctor` (Debian's real binaries)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stack.net.ports import free_port
from tests.conftest import invoke
from tests.runtime.process.test_process_runtime import _settings_text, processes_under
from tests.support.realbin import binary


@pytest.mark.parametrize(
    "args",
    [("logs", "nosuch"), ("logs", "--since", "yesterday"), ("logs", "--since", "10x", "prometheus")],
    ids=["unknown-service", "since-yesterday", "since-bad-unit"],
)
def test_usage_errors_exit_2(project_dir: Path, args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_credentials_without_grafana_are_refused_and_nothing_is_generated(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("components:\n  grafana: {enabled: false}\n")
    result = invoke("credentials")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: stack.yaml: grafana is disabled, so it has no credentials (hint: enable components.grafana to use it)\n"
    )
    assert result.stdout == ""
    assert sorted(p.name for p in project_dir.iterdir()) == ["stack.yaml"]


def test_every_missing_secret_is_named_at_once_before_anything_is_written(project_dir: Path) -> None:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    alerting = {
        "receivers": {
            "team": {"slack": {"api_url": {"env": "STACK_H16_MISSING_A"}}},
            "oncall": {"pagerduty": {"routing_key": {"env": "STACK_H16_MISSING_B"}}},
        },
        "page": "oncall",
        "ticket": "team",
    }
    (project_dir / "stack.yaml").write_text(_settings_text(free_port(), {"alerting": alerting}))
    result = invoke("up", "--runtime", "process")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: stack.yaml: 2 secrets cannot be read: "
        "alerting.receivers.oncall.pagerduty.routing_key: environment variable STACK_H16_MISSING_B is not set; "
        "alerting.receivers.team.slack.api_url: environment variable STACK_H16_MISSING_A is not set "
        "(hint: export the variables or create the files (chmod 600) named in stack.yaml, then run it again)\n"
    )
    # No "• Starting the components" before the refusal, no .stack-state/ or .stack-secrets/.
    assert "Starting" not in result.output
    assert sorted(p.name for p in project_dir.iterdir()) == ["stack.yaml"]


def test_a_missing_binary_is_refused_before_any_step(project_dir: Path) -> None:
    data = yaml.safe_load(_settings_text(free_port()))
    data["process"] = {"bin_dir": str(project_dir / "bin")}
    data["components"]["tempo"] = {"enabled": True}
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(data))
    (project_dir / "bin").mkdir()
    result = invoke("up", "--runtime", "process")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: process runtime: binaries not found")
    assert "Starting the components" not in result.output
    assert sorted(p.name for p in project_dir.iterdir()) == ["bin", "stack.yaml"]


def test_process_runtime_status_after_down_and_doctor_right_after_up(project_dir: Path) -> None:
    binary("prometheus")
    alertmanager = binary("prometheus-alertmanager", "alertmanager")
    (project_dir / "stack.yaml").write_text(_settings_text(free_port()))
    try:
        assert invoke("up").exit_code == 0
        # Right after `up`: Prometheus' discovery of its Alertmanager is waited for, not reported.
        doctor = invoke("doctor", "--json")
        findings = {f["id"]: f for f in json.loads(doctor.stdout)["findings"]}
        titles = [f["title"] for f in json.loads(doctor.stdout)["findings"]]
        assert "Prometheus has no active Alertmanager: firing alerts go nowhere" not in titles
        # Debian's binaries are older than the pinned images: the advice is not `stack up`.
        behind = findings.get("version-behind") or findings.get("version-differs")
        assert behind is not None and behind["component"] in ("prometheus", "alertmanager")
        assert "stack up` cannot change a system binary" in behind["fix"]
        assert "run `stack up`" not in behind["fix"]
        assert invoke("down").exit_code == 0
        status = json.loads(invoke("status", "--json").stdout)
        rows = {row["name"]: row for row in status["components"]}
        assert rows["alertmanager"]["detail"] == "not running (never started, or stopped by `stack down`)"
        # The version of the binary that would run, not the pinned image's tag (0.35.0).
        assert rows["alertmanager"]["version"] != "0.35.0"
        assert rows["alertmanager"]["version"] is not None and alertmanager
    finally:
        invoke("down", "--volumes", "--yes", "--timeout", "5")
    assert processes_under(project_dir) == []
