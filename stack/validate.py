"""`stack validate`: the settings and the rendered project, checked by the real tools where possible."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from stack.components.base import ConfigFile, RenderContext
from stack.components.grafana import datasources
from stack.components.versions import VERSION_HINT
from stack.errors import StackError
from stack.grafana.dashboards import folders, is_bundled, selected_dashboards, unknown_datasources
from stack.paths import Paths
from stack.render import RenderedProject
from stack.settings import Settings
from stack.tools import run, which
from stack.versions import version_in


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str = ""


@cache
def compose_schema() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))


def compose_schema_errors(document: dict[str, Any]) -> list[str]:
    """Every violation of the Compose JSON Schema, as `path: message`."""
    import jsonschema  # import cost is paid only by the commands that validate

    validator = jsonschema.Draft7Validator(compose_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}" for error in errors]


def check_compose(project: RenderedProject) -> Check:
    # Validate what is written, not the in-memory object: a dump/load round trip catches YAML slips.
    document = yaml.safe_load(project.text())
    errors = compose_schema_errors(document)
    if errors:
        return Check("compose schema", Status.FAILED, "; ".join(errors[:5]))
    return Check("compose schema", Status.PASSED, f"{len(document['services'])} services")


def _materialize(files: list[ConfigFile], root: Path) -> dict[str, Path]:
    """Write config files under `root` at their container paths; map config name -> host path."""
    placed = {}
    for config in files:
        path = root / config.target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config.content, encoding="utf-8")
        placed[config.name] = path
    return placed


def check_prometheus(project: RenderedProject) -> list[Check]:
    files = project.configs.get("prometheus")
    if files is None:
        return [Check("promtool check config", Status.SKIPPED, "prometheus is disabled")]
    promtool = which("promtool")
    if not promtool:
        reason = "promtool is not on PATH (install Debian's 'prometheus' package or Prometheus' release)"
        return [
            Check("promtool check config", Status.SKIPPED, reason),
            Check("promtool check rules", Status.SKIPPED, reason),
        ]
    with tempfile.TemporaryDirectory(prefix="stack-validate-") as tmp:
        root = Path(tmp)
        placed = _materialize(files, root)
        config_path = placed["prometheus-config"]
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        # Point rule globs at the materialized copies, not at this machine's /etc.
        config["rule_files"] = [str(root / pattern.lstrip("/")) for pattern in config.get("rule_files", [])]
        config, left_out = _downgrade_prometheus(promtool, config)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        checks = [_tool_check("promtool check config", [promtool, "check", "config", str(config_path)])]
        if left_out and checks[0].status is Status.PASSED:
            note = f"accepted; this promtool predates {', '.join(left_out)} (Prometheus 3.x): checked without it"
            checks[0] = Check(checks[0].name, checks[0].status, note)
        rules = [str(path) for name, path in sorted(placed.items()) if name.startswith("prometheus-rules-")]
        if rules:
            checks.append(_tool_check("promtool check rules", [promtool, "check", "rules", *rules]))
        else:
            checks.append(Check("promtool check rules", Status.SKIPPED, "no rule files"))
        return checks


def check_collector(project: RenderedProject) -> Check:
    """`otelcol-contrib validate` on the rendered Collector config (user overrides included)."""
    from stack.collector_build import find_binary

    name = "otelcol-contrib validate"
    files = project.configs.get("otel-collector")
    if files is None:
        return Check(name, Status.SKIPPED, "otel-collector is disabled")
    binary = find_binary()
    if binary is None:
        return Check(name, Status.SKIPPED, "otelcol-contrib is not built (`make collector`) nor on PATH")
    with tempfile.TemporaryDirectory(prefix="stack-validate-") as tmp:
        config_path = _materialize(files, Path(tmp))["otel-collector-config"]
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        host_metrics = (config.get("receivers") or {}).get("host_metrics") or {}
        # The container sees the host's / at root_path (a mount): the Collector checks that it exists.
        if (
            isinstance(host_metrics, dict)
            and host_metrics.get("root_path")
            and not Path(host_metrics["root_path"]).is_dir()
        ):
            host_metrics["root_path"] = "/"
            config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        result = run([binary, "validate", f"--config={config_path}"])
    if result.ok:
        return Check(name, Status.PASSED, "accepted")
    return Check(name, Status.FAILED, collector_message(result.output) or f"exit code {result.returncode}")


def collector_message(output: str) -> str:
    """The Collector's error on one line: its multi-line `Error: ...` without the log lines before it."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Error:")), 0)
    text = " ".join(line.strip() for line in lines[start:] if line.strip())
    return text.removeprefix("Error:").strip()


def check_alertmanager(project: RenderedProject) -> Check:
    files = project.configs.get("alertmanager")
    if files is None:
        return Check("amtool check-config", Status.SKIPPED, "alertmanager is disabled")
    amtool = which("amtool")
    if not amtool:
        reason = "amtool is not on PATH (install Debian's 'prometheus-alertmanager' package)"
        return Check("amtool check-config", Status.SKIPPED, reason)
    with tempfile.TemporaryDirectory(prefix="stack-validate-") as tmp:
        placed = _materialize(files, Path(tmp))
        config_path = placed["alertmanager-config"]
        swapped = _downgrade_alertmanager(amtool, config_path)
        check = _tool_check("amtool check-config", [amtool, "check-config", str(config_path)])
        if swapped and check.status is Status.PASSED:
            note = f"accepted; this amtool predates {', '.join(swapped)} (Alertmanager >= 0.26): checked without it"
            return Check(check.name, check.status, note)
        return check


def _downgrade_alertmanager(amtool: str, config_path: Path) -> list[str]:
    """Let an older local amtool check a config that uses fields only newer Alertmanagers have."""
    from stack.alerting import amtool_version, downgrade_for_amtool

    version = amtool_version(run([amtool, "--version"]).output)
    if version is None:
        return []
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    downgraded, swapped = downgrade_for_amtool(config, version)
    if swapped:
        config_path.write_text(yaml.safe_dump(downgraded, sort_keys=False), encoding="utf-8")
    return swapped


def _downgrade_prometheus(promtool: str, config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Let an older local promtool check a config rendered for a newer Prometheus."""
    from packaging.version import InvalidVersion, Version

    from stack.components.prometheus import downgrade_for_promtool

    found = version_in(run([promtool, "--version"]).output)
    if found is None:
        return config, []
    try:
        return downgrade_for_promtool(config, Version(found))
    except InvalidVersion:
        return config, []


def _tool_check(name: str, argv: list[str]) -> Check:
    result = run(argv)
    if result.ok:
        return Check(name, Status.PASSED, "accepted")
    return Check(name, Status.FAILED, result.output or f"exit code {result.returncode}")


def check_dashboards(settings: Settings, base_dir: Path) -> Check:
    """The dashboards stack.yaml selects load (JSON, uids) and name only provisioned datasources."""
    if not settings.component("grafana").enabled:
        return Check("dashboards", Status.SKIPPED, "grafana is disabled")
    try:
        dashboards = selected_dashboards(settings, base_dir)
    except StackError as exc:
        return Check("dashboards", Status.FAILED, exc.one_line())
    provisioned = {source["uid"]: source["name"] for source in datasources(RenderContext(settings))}
    problems = [
        problem
        for dashboard in dashboards
        if not is_bundled(dashboard)
        for problem in unknown_datasources(dashboard, provisioned)
    ]
    if problems:
        hint = f"use one of the stack's uids ({', '.join(provisioned)}) or a datasource variable"
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return Check("dashboards", Status.FAILED, "; ".join(problems[:3]) + more + f" (hint: {hint})")
    return Check("dashboards", Status.PASSED, f"{len(dashboards)} dashboards in {len(folders(dashboards))} folders")


def check_proxy(project: RenderedProject) -> list[Check]:
    """`caddy validate` on the TLS proxy's config (only when the proxy is enabled)."""
    files = project.configs.get("proxy")
    if files is None:
        return []
    caddy = which("caddy")
    if not caddy:
        return [Check("caddy validate", Status.SKIPPED, "caddy is not on PATH (install Debian's 'caddy' package)")]
    config = json.loads(files[0].content)
    # The certificate files of tls.mode files exist only inside the container (compose secrets).
    certificates = config.get("apps", {}).get("tls", {}).pop("certificates", None)
    with tempfile.TemporaryDirectory(prefix="stack-validate-") as tmp:
        path = Path(tmp) / "caddy.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        # Caddy writes its storage under XDG dirs even to validate: keep it out of the home directory.
        env = f"XDG_DATA_HOME={tmp}/data XDG_CONFIG_HOME={tmp}/config"
        result = run(["env", *env.split(), caddy, "validate", "--config", str(path)])
    if not result.ok:
        return [Check("caddy validate", Status.FAILED, result.output.splitlines()[-1] if result.output else "rejected")]
    detail = "accepted" + (" (certificate files are checked at deploy)" if certificates else "")
    return [Check("caddy validate", Status.PASSED, detail)]


# Prometheus' rule file format, which Loki's ruler reads with LogQL in `expr`.
_RULE_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["groups"],
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": r"^(\d+(ms|s|m|h|d|w|y))+$"},
                    "limit": {"type": "integer"},
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["expr"],
                            "additionalProperties": False,
                            "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                            "properties": {
                                "alert": {"type": "string", "minLength": 1},
                                "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                                "expr": {"type": "string", "minLength": 1},
                                "for": {"type": "string", "pattern": r"^(\d+(ms|s|m|h|d|w|y))+$"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        }
    },
}


def check_loki_rules(project: RenderedProject) -> Check:
    """The LogQL rule files Loki's ruler loads: the rule file format, then every expression's syntax."""
    import jsonschema  # import cost is paid only by the commands that validate

    from stack import querysyntax

    name = "logql check rules"
    files = [config for config in project.configs.get("loki", []) if config.name.startswith("loki-rules-")]
    if "loki" not in project.configs:
        return Check(name, Status.SKIPPED, "loki is disabled")
    if not files:
        return Check(name, Status.SKIPPED, "no rule files")
    validator = jsonschema.Draft7Validator(_RULE_FILE_SCHEMA)
    expressions: list[tuple[str, str]] = []
    for config in files:
        document = yaml.safe_load(config.content)
        for error in validator.iter_errors(document):
            where = "/".join(map(str, error.absolute_path)) or "(root)"
            return Check(name, Status.FAILED, f"{config.target}: {where}: {error.message}")
        for group in document["groups"]:
            for rule in group["rules"]:
                expressions.append((f"{config.target}: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    counted = f"{len(expressions)} rules in {len(files)} file{'' if len(files) == 1 else 's'}"
    problem = querysyntax.unavailable()
    if problem:
        return Check(name, Status.PASSED, f"{counted}: format checked; LogQL syntax not checked: {problem}")
    try:
        errors = querysyntax.syntax_errors([("logql", expr) for _, expr in expressions])
    except StackError as exc:
        return Check(name, Status.SKIPPED, f"{counted}: {exc.one_line()}")
    for (where, _), error in zip(expressions, errors, strict=True):
        if error:
            return Check(name, Status.FAILED, f"{where}: {error}")
    return Check(name, Status.PASSED, f"{counted}: accepted by Grafana's LogQL grammar")


def check_versions(settings: Settings, paths: Paths, runtime_name: str | None = None) -> Check:
    """The version that will run (the image tag, or the process runtime's binary) reads every field
    the settings render: amtool may accept what an older Alertmanager refuses at start."""
    from stack.components.versions import unmet_requirements
    from stack.runtime.process.binaries import pinned_version

    chosen = runtime_name or settings.runtime
    if chosen == "process":
        from stack.runtime.process.runtime import ProcessRuntime

        problems = ProcessRuntime(settings, paths).version_problems()
        what = "the process runtime's binaries"
    else:
        versions = {name: pinned_version(settings.component(name).image) for name in settings.enabled()}
        problems = unmet_requirements(settings, versions, source="image tag")
        what = "the pinned images"
    name = f"versions ({chosen})"
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(name, Status.FAILED, f"{problems[0]}{more} (hint: {VERSION_HINT})")
    return Check(name, Status.PASSED, f"{what} read every setting")


def validate_project(project: RenderedProject) -> list[Check]:
    """Run every check on a rendered project; the settings were validated when they were loaded."""
    return [
        Check("stack.yaml", Status.PASSED, "valid"),
        check_compose(project),
        check_collector(project),
        *check_prometheus(project),
        check_alertmanager(project),
        check_loki_rules(project),
        *check_proxy(project),
    ]
