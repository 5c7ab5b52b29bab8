"""Rule packs and SLO rules: accepted by promtool, unit-tested by promtool, healthy in a real Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from stack.resources import repo_root
from stack.rules.packs import load_pack, pack_names, render_pack
from stack.rules.slo import WINDOWS
from stack.settings import RULE_PACKS, Settings, load_settings, parse_settings
from tests.conftest import invoke, require_tool
from tests.support import DATA, realbin
from tests.support.metrics_catalog import DOCS_CATALOG, UNIVERSAL_LABELS, catalog_labels, labels_used
from tests.support.rulesupport import PROMTOOL_TESTS, alert_names, rules_of, seed_settings, write_rules

RUNBOOKS = repo_root() / "docs" / "runbooks"


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False, timeout=120)


def test_every_bundled_pack_is_selectable() -> None:
    assert sorted(RULE_PACKS) == pack_names()


@pytest.mark.parametrize(
    "settings",
    [Settings(), seed_settings()],
    ids=["defaults", "seed SLOs"],
)
def test_promtool_accepts_every_rendered_rule_file(settings: Settings, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    paths = write_rules(settings, tmp_path)
    result = _run([promtool, "check", "rules", *map(str, paths)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    write_rules(seed_settings(), tmp_path)
    tests = sorted(PROMTOOL_TESTS.glob("*_test.yml"))
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    result = _run([promtool, "test", "rules", *(test.name for test in tests)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_promtool_unit_tests_an_slo_window_other_than_30d(tmp_path: Path) -> None:
    """The window reaches slo:window:seconds, the window ratio and the alert text (seed SLOs are all 30d)."""
    promtool = require_tool("promtool")
    slo = {"name": "weekly", "objective": 99, "window": "7d", "sli": {"kind": "availability", "selector": 'job="api"'}}
    write_rules(parse_settings({"slos": [slo]}), tmp_path)
    labels = '{slo="weekly", service="weekly"}'
    case = {
        "interval": "1m",
        # 2% errors against a 1% budget: the week's budget is overspent twice over.
        "input_series": [
            {"series": 'http_requests_total{job="api", status="200"}', "values": "0+980x60"},
            {"series": 'http_requests_total{job="api", status="500"}', "values": "0+20x60"},
        ],
        "promql_expr_test": [
            {
                "expr": "slo:window:seconds",
                "eval_time": "30m",
                "exp_samples": [{"labels": "slo:window:seconds" + labels, "value": 604800}],
            },
            {
                "expr": "round(slo:error_budget:remaining, 0.001)",
                "eval_time": "30m",
                "exp_samples": [{"labels": labels, "value": -1}],
            },
        ],
        "alert_rule_test": [
            {
                "eval_time": "30m",
                "alertname": "SLOErrorBudgetExhausted",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "warning", "slo": "weekly", "service": "weekly"},
                        "exp_annotations": {
                            "summary": "SLO weekly has -100% of its error budget left",
                            "description": "Less than 5% of the 7d error budget of weekly (99%) remains: "
                            "freeze risky changes.",
                            "runbook_url": "docs/runbooks/SLOErrorBudgetExhausted.md",
                        },
                    }
                ],
            }
        ],
    }
    document = {"rule_files": ["slos.yml"], "evaluation_interval": "1m", "tests": [case]}
    (tmp_path / "window_test.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = _run([promtool, "test", "rules", "window_test.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_promtool_unit_tests_a_good_over_total_slo(tmp_path: Path) -> None:
    """The SLI as good/total PromQL (the seeds use errors/total) gives the same ratio and alerts."""
    promtool = require_tool("promtool")
    sli = {
        "kind": "ratio",
        "good": 'sum(rate(http_requests_total{job="api", status!~"5.."}[$window]))',
        "total": 'sum(rate(http_requests_total{job="api"}[$window]))',
    }
    write_rules(parse_settings({"slos": [{"name": "good", "objective": 99.5, "window": "28d", "sli": sli}]}), tmp_path)
    labels = {"slo": "good", "service": "good"}
    case = {
        "interval": "1m",
        # 2% errors against a 0.5% budget: a 4x burn tickets (over 3x) but does not page (under 6x).
        "input_series": [
            {"series": 'http_requests_total{job="api", status="200"}', "values": "0+980x60"},
            {"series": 'http_requests_total{job="api", status="500"}', "values": "0+20x60"},
        ],
        "promql_expr_test": [
            {
                "expr": f"round(slo:sli_error:ratio_rate{window}, 0.0001)",
                "eval_time": "30m",
                "exp_samples": [{"labels": '{slo="good", service="good"}', "value": 0.02}],
            }
            for window in WINDOWS
        ],
        "alert_rule_test": [
            {
                "eval_time": "30m",
                "alertname": "SLOErrorBudgetBurn",
                "exp_alerts": [
                    {
                        "exp_labels": {**labels, "severity": "warning"},
                        "exp_annotations": {
                            "summary": "SLO good burns its error budget too fast",
                            "description": "The error ratio of good (2%) burns the 28d error budget of its 99.5% "
                            "objective faster than 3x (over 1d and 2h) or 1x (over 3d and 6h).",
                            "runbook_url": "docs/runbooks/SLOErrorBudgetBurn.md",
                        },
                    }
                ],
            }
        ],
    }
    document = {"rule_files": ["slos.yml"], "evaluation_interval": "1m", "tests": [case]}
    (tmp_path / "good_test.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = _run([promtool, "test", "rules", "good_test.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _covered() -> tuple[set[str], set[str]]:
    fires: set[str] = set()
    quiet: set[str] = set()
    for test_file in PROMTOOL_TESTS.glob("*_test.yml"):
        for group in yaml.safe_load(test_file.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    return fires, quiet


def test_every_shipped_alert_has_a_firing_and_a_quiet_unit_test(tmp_path: Path) -> None:
    shipped = alert_names(write_rules(seed_settings(), tmp_path))
    fires, quiet = _covered()
    assert shipped - fires == set(), "alerts without a promtool case where they fire"
    assert shipped - quiet == set(), "alerts without a promtool case where they stay quiet"


def test_every_alert_is_annotated_and_has_a_runbook(tmp_path: Path) -> None:
    for rule in rules_of(write_rules(seed_settings(), tmp_path)):
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook_url"}, rule["alert"]
        assert annotations["runbook_url"] == f"docs/runbooks/{rule['alert']}.md"
        runbook = repo_root() / annotations["runbook_url"]
        assert runbook.is_file(), f"{rule['alert']}: {runbook} is missing"
        text = runbook.read_text()
        assert text.startswith(f"# {rule['alert']}"), runbook
        assert "## Check" in text and "## Fix" in text, runbook


def test_runbooks_belong_to_alerts(tmp_path: Path) -> None:
    from stack.rules.packs import LOKI

    shipped = alert_names(write_rules(seed_settings(), tmp_path))
    shipped |= {rule["alert"] for group in load_pack("errors", LOKI).groups for rule in group["rules"]}
    assert {path.stem for path in RUNBOOKS.glob("*.md")} == shipped


def test_thresholds_reach_the_rules() -> None:
    text = render_pack("http", {"error_ratio_critical": 0.1, "latency_p95_warning": 0.75}, "https://wiki/")
    assert "stack:http_error_ratio:rate5m > 0.1\n" in text
    assert "p95_rate5m > 0.75\n" in text
    assert "> 0.01\n" in text  # the untouched warning threshold keeps its default
    assert "runbook_url: https://wiki/HTTPErrorRateHigh.md" in text
    assert "%{" not in text


def test_every_placeholder_is_a_declared_threshold() -> None:
    for name in pack_names():
        text = render_pack(name, {}, "docs/runbooks/")
        assert "%{" not in text, name
        assert load_pack(name).thresholds, name


def test_disabled_pack_is_not_rendered(tmp_path: Path) -> None:
    settings = parse_settings({"rules": {"queues": {"enabled": False}, "stack": {"enabled": False}}})
    names = {path.name for path in write_rules(settings, tmp_path)}
    assert "queues.yml" not in names and "stack.yml" not in names and "stack-limits.yml" not in names
    assert "http.yml" in names


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"rules": {"http": {"thresholds": {"error_rate_warning": 0.02}}}},
            "stack.yaml: rules.http.thresholds.error_rate_warning: unknown threshold (hint: did you mean "
            "'error_ratio_warning'?)",
        ),
        (
            {"rules": {"htp": {}}},
            "stack.yaml: rules.htp: unknown key (hint: did you mean 'http'?)",
        ),
        (
            {"slos": [{"name": "a", "objective": 99, "sli": {"kind": "latency"}}]},
            "stack.yaml: slos[0].sli: a latency SLI needs `threshold` (seconds), e.g. threshold: 0.5",
        ),
        (
            {"slos": [{"name": "a", "objective": 100, "sli": {"kind": "availability"}}]},
            "stack.yaml: slos[0].objective: 100 is out of range (input should be less than 100)",
        ),
        (
            {"slos": [{"name": "a", "objective": 99, "sli": {"kind": "ratio", "errors": "x", "total": "y"}}]},
            "stack.yaml: slos[0].sli: 'x' has no $window where the range goes, e.g. [$window]",
        ),
        (
            {"slos": [{"name": "a", "objective": 99, "sli": {"kind": "availability", "selector": "job=api"}}]},
            "stack.yaml: slos[0].sli.selector: 'job=api' is not a list of label matchers such as job=\"api\", "
            'route=~"/checkout.*"',
        ),
        (
            {"slos": [{"name": "a", "objective": 99, "sli": {"kind": "availability"}}] * 2},
            "stack.yaml: slos[1].name: SLO 'a' is declared twice (hint: give every SLO a name of its own)",
        ),
    ],
)
def test_bad_rule_and_slo_settings_are_one_clear_line(project_dir: Path, data: dict, message: str) -> None:
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = invoke("render")
    assert result.exit_code == 2
    where, _, rest = message.partition(": ")
    assert re.fullmatch(rf"Error: {where}:\d+: {re.escape(rest)}\n", result.stderr), result.stderr
    assert sorted(p.name for p in project_dir.iterdir()) == ["stack.yaml"]


def test_slo_rules_have_every_window_and_the_budget(tmp_path: Path) -> None:
    rules = rules_of(write_rules(seed_settings(), tmp_path))
    recorded = {
        (rule["record"], rule["labels"]["slo"])
        for rule in rules
        if "record" in rule and "slo" in rule.get("labels", {})
    }
    for slo in ("api-availability", "api-latency", "api-errors", "checkout-latency"):
        for window in WINDOWS:
            assert (f"slo:sli_error:ratio_rate{window}", slo) in recorded
        for name in (
            "slo:sli_error:ratio_rate_window",
            "slo:objective:ratio",
            "slo:window:seconds",
            "slo:error_budget:remaining",
        ):
            assert (name, slo) in recorded
    checkout = [
        r for r in rules if r.get("record") == "slo:sli_error:ratio_rate5m" and r["labels"]["slo"] == "checkout-latency"
    ]
    # An integer bucket bound matches both "1" (Prometheus 2.x) and "1.0" (Prometheus 3 normalizes).
    assert 'le=~"1|1\\\\.0"' in checkout[0]["expr"]


def _datasource_queries() -> list[str]:
    """The PromQL Grafana's Tempo datasource runs from a span (tracesToMetrics), tags filled in."""
    document = yaml.safe_load((repo_root() / "provisioning" / "datasources" / "datasources.yaml").read_text())
    tempo = next(source for source in document["datasources"] if source["uid"] == "tempo")
    return [q["query"].replace("$$__tags", 'service="api"') for q in tempo["jsonData"]["tracesToMetrics"]["queries"]]


def test_a_real_prometheus_evaluates_every_rule_without_error(tmp_path: Path) -> None:
    """Every rendered rule (and every query a datasource ships) runs in a real Prometheus without error."""
    rules_dir = tmp_path / "rules"
    paths = write_rules(seed_settings(), rules_dir)
    for path in paths:
        # Groups with a longer interval (SLOs: 1m) would take up to that long for a first evaluation.
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group.pop("interval", None)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    config = tmp_path / "prometheus.yml"

    def write_config(self_target: str | None) -> None:
        document: dict = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.yml")],
        }
        if self_target:
            # Its own metrics give the self-monitoring rules real series to work on.
            labels = {"stack_component": "prometheus"}
            document["scrape_configs"] = [
                {"job_name": "prometheus", "static_configs": [{"targets": [self_target], "labels": labels}]}
            ]
        config.write_text(yaml.safe_dump(document))

    write_config(None)
    expected = len(rules_of(paths))
    with realbin.prometheus(config, tmp_path / "data") as server:
        write_config(f"127.0.0.1:{server.port}")
        assert requests.post(f"{server.url}/-/reload", timeout=10).status_code == 200
        deadline = time.monotonic() + 30
        while True:
            groups = requests.get(f"{server.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            up = requests.get(f"{server.url}/api/v1/query", params={"query": "up"}, timeout=5).json()["data"]
            if (
                len(rules) == expected and up["result"] and all(rule["health"] != "unknown" for rule in rules)
            ) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        queries = {}
        for query in _datasource_queries():
            reply = requests.get(f"{server.url}/api/v1/query", params={"query": query}, timeout=5)
            queries[query] = reply.json()["status"]
    assert len(rules) == expected
    unhealthy = {(rule["name"], rule.get("lastError")) for rule in rules if rule.get("health") != "ok"}
    assert unhealthy == set()
    assert set(queries.values()) == {"success"}, queries
    recorded = {rule["name"] for rule in rules if rule["type"] == "recording"}
    assert "stack:memory_limit:bytes" in recorded


def test_the_users_own_rule_files_are_inlined_and_checked(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    settings = load_settings(DATA / "stack-full.yaml")
    paths = write_rules(settings, tmp_path)
    custom = tmp_path / "custom-shop.yml"
    assert custom in paths
    assert custom.read_text() == (DATA / "rules" / "shop.yml").read_text()
    result = _run([promtool, "check", "rules", *map(str, paths)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        ("groups: [\n", "is not valid YAML"),
        ("rules: []\n", "is not a Prometheus rule file (no `groups:` list)"),
    ],
)
def test_a_bad_rule_file_is_one_clear_line(project_dir: Path, content: str | None, problem: str) -> None:
    if content is not None:
        (project_dir / "mine.yml").write_text(content)
    (project_dir / "stack.yaml").write_text("rules:\n  files: [mine.yml]\n")
    result = invoke("render")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: stack.yaml:2: rules.files: rule file ")
    assert problem in result.stderr and "(hint: give a Prometheus rule file" in result.stderr


def test_burn_rate_alerts_pair_the_sre_workbook_windows(tmp_path: Path) -> None:
    """Page at 14.4x over 1h and 5m or 6x over 6h and 30m; ticket at 3x over 1d and 2h or 1x over 3d
    and 6h; budget exhausted below 5%: for a 99.9% SLO the error-ratio limits are burn x 0.001."""
    rules = [r for r in rules_of(write_rules(seed_settings(), tmp_path)) if r.get("labels", {}).get("slo")]
    alerts = [r for r in rules if r.get("alert") and r["labels"]["slo"] == "api-availability"]
    term = re.compile(
        r'\(slo:sli_error:ratio_rate(\w+)\{slo="api-availability"\} > ([\d.]+)'
        r' and slo:sli_error:ratio_rate(\w+)\{slo="api-availability"\} > ([\d.]+)\)'
    )
    pairs = {
        (rule["labels"]["severity"], long, short, float(limit))
        for rule in alerts
        if rule["alert"] == "SLOErrorBudgetBurn"
        for long, limit, short, same in term.findall(rule["expr"])
        if limit == same
    }
    assert pairs == {
        ("critical", "1h", "5m", 0.0144),
        ("critical", "6h", "30m", 0.006),
        ("warning", "1d", "2h", 0.003),
        ("warning", "3d", "6h", 0.001),
    }
    [exhausted] = [rule for rule in alerts if rule["alert"] == "SLOErrorBudgetExhausted"]
    assert exhausted["expr"] == 'slo:error_budget:remaining{slo="api-availability"} < 0.05'


def test_starter_shows_the_four_seed_slos() -> None:
    """Availability 99.9%, 95% of requests under 500 ms, errors under 0.1%, a critical endpoint 99% under 1 s."""
    seeds = {slo.name: slo for slo in seed_settings().slos}
    assert len(seeds) == 4
    summary = {(slo.sli.kind, slo.objective, slo.sli.threshold) for slo in seeds.values()}
    assert summary == {
        ("availability", 99.9, None),
        ("latency", 95, 0.5),
        ("ratio", 99.9, None),
        ("latency", 99, 1),
    }
    assert seeds["api-errors"].sli.errors and 'route="/checkout"' in seeds["checkout-latency"].sli.selector


def test_default_thresholds_are_the_issues() -> None:
    """The defaults the signals issue states (each is also exercised by a promtool case)."""
    defaults = {name: {key: t.default for key, t in load_pack(name).thresholds.items()} for name in pack_names()}
    expected = {
        ("http", "error_ratio_warning"): 0.01,
        ("http", "error_ratio_critical"): 0.05,
        ("http", "latency_p95_warning"): 1,
        ("http", "latency_p95_critical"): 2,
        ("queues", "waiting_jobs"): 500,
        ("queues", "queue_depth"): 100,
        ("queues", "tick_p95_seconds"): 2,
        ("llm", "budget_usage_warning"): 0.8,
        ("llm", "budget_usage_critical"): 0.95,
        ("workflows", "workflow_failure_ratio"): 0.1,
        ("realtime", "min_connections"): 1,
        ("realtime", "max_connections"): 5000,
        ("security", "auth_failures_per_minute"): 10,
        ("stack", "memory_ratio"): 0.85,
        ("stack", "volume_ratio"): 0.9,
    }
    assert {key: defaults[key[0]][key[1]] for key in expected} == expected
    alerts = {
        rule["alert"]: rule
        for name in pack_names()
        for group in load_pack(name).groups
        for rule in group["rules"]
        if "alert" in rule
    }
    assert (alerts["StackComponentDown"]["for"], alerts["StackComponentDown"]["labels"]["severity"]) == (
        "2m",
        "critical",
    )
    assert alerts["WorkflowFailureRateHigh"]["labels"]["severity"] == "critical"


APP_RULE_PACKS = ("http", "queues", "llm", "workflows", "realtime", "security")
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}


def _metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (functions, keywords, labels and strings removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|%\{\w+\}', " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    return {
        token
        for token in re.findall(r"[a-zA-Z_:][\w:]*(?!\s*\()(?=\W|$)", expr)
        if token not in PROMQL_KEYWORDS and not token.startswith("stack:")
    }


@pytest.mark.parametrize("pack", APP_RULE_PACKS)
def test_app_packs_read_only_catalogued_metrics_and_labels(pack: str) -> None:
    """docs/metrics.md is what app teams emit against: every metric an app pack's rule reads is in it,
    and every label the rule matches, groups or joins on is listed for one of those metrics."""
    catalog = catalog_labels(DOCS_CATALOG.read_text(encoding="utf-8"))
    bases = {name: name for name in catalog} | {
        f"{name}{suffix}": name for name in catalog for suffix in ("_bucket", "_count", "_sum")
    }
    problems = []
    for group in load_pack(pack).groups:
        for rule in group["rules"]:
            where = f"{pack} / {rule.get('alert') or rule['record']}"
            names = _metric_names(rule["expr"])
            assert names or "stack:" in rule["expr"], where
            if missing := names - set(bases):
                problems.append(f"{where}: {sorted(missing)} not in docs/metrics.md")
            allowed = UNIVERSAL_LABELS.union(*(catalog[bases[name]] for name in names & set(bases)))
            if unknown := labels_used(rule["expr"]) - allowed:
                problems.append(f"{where}: labels {sorted(unknown)} not listed for {sorted(names)}")
    assert not problems, "\n".join(problems)


def test_the_rule_catalog_check_sees_names_and_labels() -> None:
    expr = 'sum by (job, tenant) (rate(queue_jobs_failed_total{state="x"}[5m])) / on (job) stack:a:b > %{limit}'
    assert _metric_names(expr) == {"queue_jobs_failed_total"}
    assert labels_used(expr) == {"job", "tenant", "state"}
