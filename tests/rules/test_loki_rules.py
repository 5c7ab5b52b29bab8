"""Loki's ruler: the LogQL alert pack `errors`, its rendering, its switch and `stack validate`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from stack import querysyntax
from stack.components.alertmanager import Alertmanager
from stack.components.base import ConfigFile, RenderContext
from stack.errors import SettingsError
from stack.project import SETTINGS_CHECKS
from stack.render import RenderedProject, render_project
from stack.resources import repo_root
from stack.rules.packs import LOKI, load_pack
from stack.settings import Settings, load_settings, parse_settings
from stack.validate import Status, check_loki_rules
from tests.conftest import invoke, require_tool
from tests.support import DATA, realbin
from tests.support.httpservers import http_server
from tests.support.querycheck import syntax_errors

ALERTS = ("NewExceptionType", "ErrorLogRateSpike", "PanicOrFatalLogged")


def _loki(settings: Settings) -> dict[str, ConfigFile]:
    return {config.target: config for config in render_project(settings).configs["loki"]}


def _rules(settings: Settings) -> list[dict]:
    text = _loki(settings)["/etc/loki/rules/fake/errors.yml"].content
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def test_the_ruler_reads_the_rendered_files_and_sends_to_the_stacks_alertmanager() -> None:
    files = _loki(Settings())
    config = yaml.safe_load(files["/etc/loki/config.yaml"].content)
    ruler = config["ruler"]
    assert ruler["alertmanager_url"] == "http://alertmanager:9093"
    # Loki reads <directory>/<tenant>/*.yml; without auth the tenant is "fake".
    assert ruler["storage"] == {"type": "local", "local": {"directory": "/etc/loki/rules"}}
    assert "/etc/loki/rules/fake/errors.yml" in files
    # The scratch directory is in Loki's data volume, never in the read-only configs.
    assert ruler["rule_path"].startswith("/loki/")


def test_the_pack_ships_the_three_alerts_with_runbooks_and_routed_severities() -> None:
    rules = _rules(Settings())
    assert [rule["alert"] for rule in rules] == list(ALERTS)
    for rule in rules:
        # The same severities Alertmanager routes for the Prometheus packs.
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["labels"]["service"] == "{{ $labels.service_name }}"
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook_url"}
        assert annotations["runbook_url"] == f"docs/runbooks/{rule['alert']}.md"
        runbook = repo_root() / annotations["runbook_url"]
        text = runbook.read_text(encoding="utf-8")
        assert text.startswith(f"# {rule['alert']}") and "## Check" in text and "## Fix" in text
        assert "%{" not in json.dumps(rule)
    assert {rule["alert"]: rule["labels"]["severity"] for rule in rules}["PanicOrFatalLogged"] == "critical"


def test_every_rule_parses_with_grafanas_logql_grammar() -> None:
    rules = _rules(Settings())
    errors = syntax_errors([("logql", rule["expr"]) for rule in rules])
    assert errors == [None] * len(rules), errors


def test_thresholds_reach_the_rules_and_unknown_ones_are_refused() -> None:
    settings = parse_settings({"rules": {"errors": {"thresholds": {"known_for_hours": 72, "spike_factor": 3}}}})
    exprs = {rule["alert"]: rule["expr"] for rule in _rules(settings)}
    assert "[72h] offset 1h" in exprs["NewExceptionType"]
    assert "> 3 * (\n" in exprs["ErrorLogRateSpike"]
    with pytest.raises(SettingsError) as caught:
        parse_settings({"rules": {"errors": {"thresholds": {"spike_factr": 3}}}}, checks=SETTINGS_CHECKS)
    assert caught.value.one_line().endswith(
        ": rules.errors.thresholds.spike_factr: unknown threshold (hint: did you mean 'spike_factor'?)"
    )


def test_every_threshold_is_used_and_documented() -> None:
    pack = load_pack("errors", LOKI)
    text = json.dumps(pack.groups)
    assert all(f"%{{{name}}}" in text for name in pack.thresholds)
    assert all(threshold.description for threshold in pack.thresholds.values())


def test_switched_off_there_is_no_ruler_and_no_rule_file() -> None:
    files = _loki(parse_settings({"rules": {"errors": {"enabled": False}}}))
    assert list(files) == ["/etc/loki/config.yaml"]
    assert "ruler" not in yaml.safe_load(files["/etc/loki/config.yaml"].content)


def test_without_alertmanager_the_ruler_evaluates_but_sends_nowhere() -> None:
    files = _loki(parse_settings({"components": {"alertmanager": {"enabled": False}}}))
    ruler = yaml.safe_load(files["/etc/loki/config.yaml"].content)["ruler"]
    assert "alertmanager_url" not in ruler


def test_prometheus_does_not_load_the_logql_pack() -> None:
    prometheus = render_project(Settings()).configs["prometheus"]
    assert not [config for config in prometheus if "errors" in config.target]


# --- stack validate ------------------------------------------------------------------------------


def test_validate_reports_the_logql_rules(project_dir: Path) -> None:
    checks = {check["name"]: check for check in json.loads(invoke("validate", "--json").stdout)}
    syntax_errors([])  # skips (or fails in CI) when the parsers are not installed
    assert checks["logql check rules"] == {
        "name": "logql check rules",
        "status": "passed",
        "detail": "3 rules in 1 file: accepted by Grafana's LogQL grammar",
    }


def _project_with(content: str) -> RenderedProject:
    project = render_project(Settings())
    project.configs["loki"] = [
        *project.configs["loki"][:1],
        ConfigFile("loki-rules-mine", "/etc/loki/rules/fake/mine.yml", content),
    ]
    return project


def test_validate_names_the_rule_with_a_logql_syntax_error() -> None:
    syntax_errors([])
    bad = "groups:\n- name: g\n  rules:\n  - alert: Broken\n    expr: 'sum by (a) count_over_time({a=\"b\"} [5m])'\n"
    check = check_loki_rules(_project_with(bad))
    assert check.status is Status.FAILED
    assert check.detail.startswith("/etc/loki/rules/fake/mine.yml: Broken: syntax error at ")


def test_validate_names_a_malformed_rule() -> None:
    check = check_loki_rules(_project_with("groups:\n- name: g\n  rules:\n  - alert: NoExpr\n"))
    assert check.status is Status.FAILED
    assert check.detail == "/etc/loki/rules/fake/mine.yml: groups/0/rules/0: 'expr' is a required property"


def test_validate_skips_without_loki_or_rules() -> None:
    no_loki = render_project(parse_settings({"components": {"loki": {"enabled": False}}}))
    assert check_loki_rules(no_loki).status is Status.SKIPPED
    no_rules = render_project(parse_settings({"rules": {"errors": {"enabled": False}}}))
    assert (check_loki_rules(no_rules).status, check_loki_rules(no_rules).detail) == (Status.SKIPPED, "no rule files")


# --- alerts from Loki's ruler reach the stack's Alertmanager and are routed like the others -----


def _as_the_ruler_sends(rule: dict, service: str = "checkout-api") -> dict[str, str]:
    """The labels of a firing alert: the expression's result labels, the rule's labels (templates
    filled in), and alertname, as Loki's ruler (Prometheus' rule manager) posts them."""
    labels = {"service_name": service, "exception_type": "KeyError"} if "exception_type" in rule["expr"] else {}
    labels |= {key: value.replace("{{ $labels.service_name }}", service) for key, value in rule["labels"].items()}
    return {**labels, "alertname": rule["alert"]}


@pytest.mark.parametrize("alert", ALERTS)
def test_amtool_routes_each_loki_alert_by_its_severity(alert: str, tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    settings = load_settings(DATA / "stack-full.yaml")
    rule = next(rule for rule in _rules(settings) if rule["alert"] == alert)
    config = tmp_path / "alertmanager.yml"
    config.write_text(Alertmanager().configs(RenderContext(settings))[0].content, encoding="utf-8")
    labels = [f"{key}={value}" for key, value in _as_the_ruler_sends(rule).items()]
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
        capture_output=True,
        text=True,
        check=False,
    )
    # stack-full.yaml pages `oncall` for critical alerts and files warnings to `team`.
    expected = {"critical": "oncall", "warning": "team"}[rule["labels"]["severity"]]
    assert result.stdout.strip() == expected, result.stdout + result.stderr


def test_a_real_alertmanager_pages_for_the_panic_alert_and_tickets_the_new_exception(tmp_path: Path) -> None:
    received: list[tuple[str, dict]] = []

    def sink(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        received.append((path, json.loads(body)))
        return 200, b""

    with http_server(sink) as url:
        settings = parse_settings(
            {
                "alerting": {
                    "receivers": {
                        "oncall": {"webhook": {"url": f"{url}/page"}},
                        "team": {"webhook": {"url": f"{url}/ticket"}},
                    },
                    "page": "oncall",
                    "ticket": "team",
                    "group_wait": "1s",
                }
            }
        )
        config = tmp_path / "alertmanager.yml"
        config.write_text(Alertmanager().configs(RenderContext(settings))[0].content, encoding="utf-8")
        rules = {rule["alert"]: rule for rule in _rules(settings)}
        alerts = [
            {
                "labels": _as_the_ruler_sends(rules[name], service),
                "annotations": {"runbook_url": rules[name]["annotations"]["runbook_url"]},
                "generatorURL": "http://loki:3100/graph",
            }
            for name, service in (("PanicOrFatalLogged", "worker"), ("NewExceptionType", "checkout-api"))
        ]
        with realbin.alertmanager(config, tmp_path / "data") as server:
            assert requests.post(f"{server.url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200
            deadline = time.monotonic() + 20
            while {path for path, _ in received} != {"/page", "/ticket"} and time.monotonic() < deadline:
                time.sleep(0.2)
    notified = {path: {a["labels"]["alertname"] for a in body["alerts"]} for path, body in received}
    assert notified == {"/page": {"PanicOrFatalLogged"}, "/ticket": {"NewExceptionType"}}


# --- the user's own LogQL rule files (rules.loki_files) -------------------------------------------

APP_RULES = """groups:
  - name: checkout-logs
    rules:
      - alert: CheckoutPaymentDeclinedBurst
        expr: sum by (service_name) (count_over_time({service_name="checkout-api"} |= "payment declined" [5m])) > 20
        labels: {severity: warning}
        annotations: {summary: "many declined payments"}
"""


def test_the_users_loki_rule_files_are_inlined_beside_the_pack(project_dir: Path) -> None:
    (project_dir / "rules").mkdir()
    (project_dir / "rules" / "checkout.yml").write_text(APP_RULES, encoding="utf-8")
    (project_dir / "stack.yaml").write_text(
        "rules:\n  errors: {enabled: false}\n  loki_files: [rules/checkout.yml]\n", encoding="utf-8"
    )
    settings = load_settings(project_dir / "stack.yaml")
    files = _loki(settings)
    assert files["/etc/loki/rules/fake/custom-checkout.yml"].content == APP_RULES
    assert "/etc/loki/rules/fake/errors.yml" not in files
    # Rules of the user's own alone still switch the ruler on.
    assert yaml.safe_load(files["/etc/loki/config.yaml"].content)["ruler"]["alertmanager_url"]
    syntax_errors([])
    checks = {check["name"]: check for check in json.loads(invoke("validate", "--json").stdout)}
    assert checks["logql check rules"]["status"] == "passed", checks["logql check rules"]
    assert checks["logql check rules"]["detail"].startswith("1 rules in 1 file")


def test_validate_names_the_users_file_and_rule_with_a_logql_error(project_dir: Path) -> None:
    syntax_errors([])
    (project_dir / "app.yml").write_text(APP_RULES.replace("[5m]))", "[5m])"), encoding="utf-8")
    (project_dir / "stack.yaml").write_text("rules:\n  loki_files: [app.yml]\n", encoding="utf-8")
    result = invoke("validate", "--json")
    assert result.exit_code == 1
    [check] = [check for check in json.loads(result.stdout) if check["name"] == "logql check rules"]
    assert check["status"] == "failed"
    where = "/etc/loki/rules/fake/custom-app.yml: CheckoutPaymentDeclinedBurst"
    assert check["detail"].startswith(f"{where}: syntax error at")


def test_a_loki_rule_file_that_is_not_one_is_a_one_line_settings_error(project_dir: Path) -> None:
    (project_dir / "app.yml").write_text("rules: []\n", encoding="utf-8")
    (project_dir / "stack.yaml").write_text("rules:\n  loki_files: [app.yml]\n", encoding="utf-8")
    result = invoke("validate")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert "rules.loki_files" in line and "is not a Loki rule file (no `groups:` list)" in line
    assert "(hint: give a Loki rule file (`groups:`, LogQL in `expr`) relative to stack.yaml" in line


def test_without_the_grammar_validate_checks_the_format_and_says_the_syntax_was_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(querysyntax, "unavailable", lambda: "node is not on PATH (Node.js 20 or newer)")
    check = check_loki_rules(render_project(Settings()))
    assert (check.status, check.detail) == (
        Status.PASSED,
        "3 rules in 1 file: format checked; LogQL syntax not checked: node is not on PATH (Node.js 20 or newer)",
    )


def test_the_parsers_say_why_they_cannot_run(tmp_path: Path) -> None:
    only_a_checkout = "the query parsers ship with a source checkout only (scripts/querycheck)"
    assert querysyntax.unavailable(tmp_path) == only_a_checkout
    (tmp_path / "check.mjs").write_text("", encoding="utf-8")
    assert querysyntax.unavailable(tmp_path) == f"the query parsers are not installed (npm ci --prefix {tmp_path})"
