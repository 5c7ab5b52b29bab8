"""Alertmanager config from stack.yaml: accepted by the real amtool, routes by severity, inhibits
warnings under criticals in a real Alertmanager, and never carries a secret."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.components.alertmanager import Alertmanager
from stack.components.base import RenderContext
from stack.paths import Paths
from stack.project import render_to_disk
from stack.render import render_project
from stack.settings import Settings, load_settings, parse_settings
from tests.conftest import invoke, require_tool
from tests.support import DATA, realbin
from tests.support.httpservers import http_server

SECRET_VALUES = {
    "STACK_TEST_PAGERDUTY_KEY": "pd-key-0d1e2f3a4b5c6d7e",
    "STACK_TEST_SLACK_URL": "https://hooks.slack.example/T000/B000/s3cr3tSlackToken",
    "STACK_TEST_SMTP_PASSWORD": "smtp-Pa55word-9f8e7d",
    "STACK_TEST_HOOK_TOKEN": "hook-bearer-token-a1b2c3",
}


def _alertmanager_config(settings: Settings) -> dict[str, Any]:
    files = Alertmanager().configs(RenderContext(settings))
    return yaml.safe_load(files[0].content)


def _write_config(settings: Settings, directory: Path) -> Path:
    path = directory / "alertmanager.yml"
    path.write_text(Alertmanager().configs(RenderContext(settings))[0].content)
    return path


def test_default_config_notifies_nobody_and_inhibits_warnings() -> None:
    config = _alertmanager_config(Settings())
    assert config["route"]["receiver"] == "default"
    assert "routes" not in config["route"]
    assert config["receivers"] == [{"name": "default"}]
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "service", "slo"],
        }
    ]


def test_full_config_routes_by_severity_with_secrets_as_files() -> None:
    config = _alertmanager_config(load_settings(DATA / "stack-full.yaml"))
    route = config["route"]
    assert route["group_by"] == ["alertname", "service", "slo"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("10s", "2m", "12h")
    assert route["routes"] == [
        {"receiver": "oncall", "matchers": ['severity="critical"']},
        {"receiver": "team", "matchers": ['severity="warning"']},
    ]
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert set(receivers) == {"default", "oncall", "team", "hook"}
    pagerduty = receivers["oncall"]["pagerduty_configs"][0]
    assert pagerduty["routing_key_file"] == "/run/secrets/alertmanager-oncall-pagerduty-routing-key"
    assert receivers["team"]["slack_configs"][0]["api_url_file"] == "/run/secrets/alertmanager-team-slack-api-url"
    email = receivers["team"]["email_configs"][0]
    assert email["auth_password_file"] == "/run/secrets/alertmanager-team-email-auth-password"
    assert email["from"] == "alerts@example.com"
    hook = receivers["hook"]["webhook_configs"][0]
    assert hook == {
        "send_resolved": False,
        "url": "http://hooks.internal:5001/alerts",
        "http_config": {"authorization": {"credentials_file": "/run/secrets/alertmanager-hook-webhook-bearer-token"}},
    }


def test_secret_values_never_reach_a_rendered_file(
    project_dir: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
    secret_file = project_dir / "secrets" / "hook-url"
    secret_file.parent.mkdir()
    secret_file.write_text("https://hooks.example/very-secret-path-77\n")
    secret_file.chmod(0o600)
    (project_dir / "rules").mkdir()
    for rule_file in ("shop.yml", "shop-logs.yml"):
        (project_dir / "rules" / rule_file).write_text((DATA / "rules" / rule_file).read_text())
    text = (DATA / "stack-full.yaml").read_text()
    text = text.replace("        url: http://hooks.internal:5001/alerts\n", "        url: {file: secrets/hook-url}\n")
    (project_dir / "stack.yaml").write_text(text)
    result = render_to_disk(paths)
    compose = yaml.safe_load(result.compose_file.read_text())
    assert compose["secrets"]["alertmanager-oncall-pagerduty-routing-key"] == {
        "environment": "STACK_TEST_PAGERDUTY_KEY"
    }
    # Relative to stack.yaml, stored absolute: compose resolves it wherever the project is rendered.
    assert compose["secrets"]["alertmanager-hook-webhook-url"] == {"file": str(secret_file.resolve())}
    service_secrets = {item["source"] for item in compose["services"]["alertmanager"]["secrets"]}
    assert service_secrets == {name for name in compose["secrets"] if name.startswith("alertmanager-")}
    rendered = [path for path in paths.render_dir.rglob("*") if path.is_file()]
    assert rendered
    for path in rendered:
        content = path.read_text()
        for value in [*SECRET_VALUES.values(), "very-secret-path-77"]:
            assert value not in content, f"{value} leaked into {path}"


def test_a_secret_written_inline_is_refused(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text(
        "alerting:\n  receivers:\n    team:\n      slack:\n        api_url: https://hooks.slack.com/services/T/B/x\n"
    )
    result = invoke("render")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: stack.yaml:5: alerting.receivers.team.slack.api_url: secrets are never written in stack.yaml: "
        "use {env: VARIABLE} or {file: PATH} (a file readable only by you)\n"
    )
    assert "hooks.slack.com" not in result.stderr.split("api_url:")[0]


def test_a_missing_secret_file_is_a_clear_error(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text(
        "alerting:\n  receivers:\n    oncall:\n      pagerduty:\n        routing_key: {file: nope/key}\n"
    )
    result = invoke("render")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: stack.yaml:5: alerting.receivers.oncall.pagerduty.routing_key.file: ")
    assert "does not exist (hint: create the file (chmod 600) or fix the path" in result.stderr


def test_page_must_name_a_declared_receiver(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("alerting:\n  page: oncall\n")
    result = invoke("render")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: stack.yaml:2: alerting.page: receiver 'oncall' is not declared "
        "(hint: known receivers: none declared under alerting.receivers)\n"
    )


def test_missing_secrets_are_reported_by_name() -> None:
    from stack.alerting import missing_secrets

    settings = load_settings(DATA / "stack-full.yaml")
    missing = missing_secrets(settings, environ={"STACK_TEST_SLACK_URL": "x"})
    assert missing == [
        "alerting.receivers.oncall.pagerduty.routing_key: environment variable STACK_TEST_PAGERDUTY_KEY is not set",
        "alerting.receivers.team.email.auth_password: environment variable STACK_TEST_SMTP_PASSWORD is not set",
        "alerting.receivers.hook.webhook.bearer_token: environment variable STACK_TEST_HOOK_TOKEN is not set",
    ]


@pytest.mark.parametrize("case", ["defaults", "every setting changed"])
def test_amtool_accepts_the_rendered_config(case: str, tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    settings = Settings() if case == "defaults" else load_settings(DATA / "stack-full.yaml")
    config = _write_config(settings, tmp_path)
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _amtool_version(amtool: str) -> tuple[int, int]:
    output = subprocess.run([amtool, "--version"], capture_output=True, text=True, check=False)
    text = output.stdout + output.stderr
    number = text.split("version", 1)[1].split()[0]
    major, minor = number.split(".")[:2]
    return int(major), int(minor)


def test_a_webhook_url_secret_needs_alertmanager_0_26(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`url_file` exists since Alertmanager 0.26 (the pinned image is 0.35); older amtools reject it."""
    amtool = require_tool("amtool")
    secret = tmp_path / "url"
    secret.write_text("https://hooks.example/x\n")
    settings = parse_settings({"alerting": {"receivers": {"hook": {"webhook": {"url": {"file": str(secret)}}}}}})
    config = _alertmanager_config(settings)
    assert config["receivers"][1]["webhook_configs"][0]["url_file"] == "/run/secrets/alertmanager-hook-webhook-url"
    path = _write_config(settings, tmp_path)
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
    if _amtool_version(amtool) >= (0, 26):
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert "field url_file not found" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=HTTPErrorRateHigh"], "oncall"),
        (["severity=warning", "alertname=HTTPErrorRateHigh"], "team"),
        (["severity=info", "alertname=Watchdog"], "default"),
    ],
)
def test_amtool_routes_by_severity(labels: list[str], receiver: str, tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    config = _write_config(load_settings(DATA / "stack-full.yaml"), tmp_path)
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_real_alertmanager_silences_the_warning_under_a_critical(tmp_path: Path) -> None:
    # The receivers point at a sink of our own on a free port: other test runs share this machine.
    with http_server(lambda method, path, body: (200, b"")) as sink:
        _check_inhibition(sink, tmp_path)


def _check_inhibition(sink: str, tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "alerting": {
                "receivers": {
                    "oncall": {"webhook": {"url": f"{sink}/page"}},
                    "team": {"webhook": {"url": f"{sink}/ticket"}},
                },
                "page": "oncall",
                "ticket": "team",
            }
        }
    )
    config = _write_config(settings, tmp_path)
    with realbin.alertmanager(config, tmp_path / "data") as server:
        alerts = [
            {"labels": {"alertname": "HTTPErrorRateHigh", "service": "api", "severity": severity}}
            for severity in ("critical", "warning")
        ] + [{"labels": {"alertname": "HTTPErrorRateHigh", "service": "billing", "severity": "warning"}}]
        assert requests.post(f"{server.url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200
        deadline = time.monotonic() + 10
        while True:
            got = requests.get(f"{server.url}/api/v2/alerts", timeout=5).json()
            states = {(a["labels"]["service"], a["labels"]["severity"]): a["status"] for a in got}
            if states.get(("api", "warning"), {}).get("inhibitedBy") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert states[("api", "critical")]["state"] == "active"
    assert states[("api", "warning")]["state"] == "suppressed"
    assert states[("api", "warning")]["inhibitedBy"]
    assert states[("billing", "warning")]["state"] == "active"


def test_rendered_compose_mounts_receiver_secrets_only_into_alertmanager(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = render_project(load_settings(DATA / "stack-full.yaml")).compose
    for name, service in compose["services"].items():
        sources = {item["source"] for item in service.get("secrets", [])}
        if name != "alertmanager":
            assert not any(source.startswith("alertmanager-") for source in sources), name
    assert len(compose["services"]["alertmanager"]["secrets"]) == 4


def test_validate_checks_a_url_file_webhook_even_with_an_older_amtool(project_dir: Path) -> None:
    amtool = require_tool("amtool")
    (project_dir / "hook-url").write_text("https://hooks.example/x\n")
    (project_dir / "stack.yaml").write_text(
        "alerting:\n  receivers:\n    hook:\n      webhook:\n        url: {file: hook-url}\n  page: hook\n"
    )
    result = invoke("validate", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    amtool_check = checks["amtool check-config"]
    assert amtool_check["status"] == "passed", amtool_check
    if _amtool_version(amtool) < (0, 26):
        assert "predates hook: webhook url_file" in amtool_check["detail"]


def test_amtool_version_is_read_from_its_banner() -> None:
    from stack.alerting import amtool_version

    assert amtool_version("amtool, version 0.25.0 (branch: debian/sid, revision: 0.25.0-1+b4)") == (0, 25)
    assert amtool_version("amtool, version 0.35.0 (branch: HEAD)") == (0, 35)
    assert amtool_version("something else") is None
