"""Loki's ruler: the LogQL alert pack `errors`, its rendering, its switch and `stack validate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stack.components.base import ConfigFile
from stack.errors import SettingsError
from stack.render import RenderedProject, render_project
from stack.resources import repo_root
from stack.rules.packs import LOKI, load_pack
from stack.settings import Settings, parse_settings
from stack.validate import Status, check_loki_rules
from tests.conftest import invoke
from tests.querycheck import syntax_errors

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
    assert "> 3 * sum by (service_name)" in exprs["ErrorLogRateSpike"]
    with pytest.raises(SettingsError) as caught:
        parse_settings({"rules": {"errors": {"thresholds": {"spike_factr": 3}}}})
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
