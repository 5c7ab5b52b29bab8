"""Rendered rule files on disk, and the seed SLOs of the starter file, for the rule tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stack.components.base import RenderContext
from stack.components.prometheus import Prometheus
from stack.resources import repo_root
from stack.settings import Settings, parse_settings

STARTER = repo_root() / "stack" / "starter.yaml"
PROMTOOL_TESTS = Path(__file__).parent / "promtool"


def seed_slos() -> list[dict[str, Any]]:
    """The commented seed SLOs of stack/starter.yaml, uncommented."""
    lines = STARTER.read_text().splitlines()
    start = lines.index("# --- seed SLOs (begin)") + 1
    end = lines.index("# --- seed SLOs (end)")
    text = "\n".join(line[1:] for line in lines[start:end])
    return yaml.safe_load("slos:\n" + text)["slos"]


def seed_settings(**extra: Any) -> Settings:
    return parse_settings({"slos": seed_slos(), **extra})


def write_rules(settings: Settings, directory: Path) -> list[Path]:
    """Render the rule files of `settings` into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in Prometheus().rule_files(RenderContext(settings)).items():
        path = directory / name
        path.write_text(content)
        paths.append(path)
    return paths


def rules_of(paths: list[Path]) -> list[dict[str, Any]]:
    return [rule for path in paths for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alert_names(paths: list[Path]) -> set[str]:
    return {rule["alert"] for rule in rules_of(paths) if "alert" in rule}
