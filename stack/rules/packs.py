"""Alert rule packs: bundled rule files with named thresholds, rendered with the user's values.

A pack file (`configs/prometheus/rules/<pack>.yml`, or `configs/loki/rules/<pack>.yml` for the
LogQL packs Loki's ruler evaluates) is a rule file plus a `pack:` header
listing its thresholds with their defaults. In the rules, `%{name}` stands for a threshold and
`%{runbook}` for the alert's runbook URL. `unknown_threshold` checks the thresholds stack.yaml
names against the packs (a SettingsCheck, run by stack.project when settings load).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import yaml

from stack.resources import bundled
from stack.yamlio import dumps

if TYPE_CHECKING:
    from stack.settings import Problem, Settings

_PLACEHOLDER = re.compile(r"%\{([a-z_][a-z0-9_]*)\}")
RUNBOOK = "runbook"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Which program evaluates a pack's rules: Prometheus (PromQL) or Loki's ruler (LogQL).
PROMETHEUS = "prometheus"
LOKI = "loki"


@dataclass(frozen=True)
class Threshold:
    name: str
    default: float
    description: str


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    thresholds: dict[str, Threshold]
    groups: list[dict[str, Any]]


@cache
def load_pack(name: str, engine: str = PROMETHEUS) -> Pack:
    """The bundled pack `name` of `engine`, parsed (cached: packs never change at run time)."""
    # No line numbers needed (the packs are ours, tested): the C loader is ten times faster.
    text = (bundled("configs") / engine / "rules" / f"{name}.yml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_LOADER)
    header = data["pack"]
    thresholds = {
        key: Threshold(key, float(spec["default"]), spec["description"])
        for key, spec in header.get("thresholds", {}).items()
    }
    return Pack(name=name, title=header["title"], thresholds=thresholds, groups=data["groups"])


def pack_names(engine: str = PROMETHEUS) -> list[str]:
    return sorted(path.stem for path in (bundled("configs") / engine / "rules").glob("*.yml"))


def pack_thresholds(name: str, engine: str = PROMETHEUS) -> dict[str, Threshold]:
    return load_pack(name, engine).thresholds


def unknown_threshold(settings: Settings) -> Problem | None:
    """The first threshold under `rules.<pack>.thresholds` that its pack does not have."""
    engines = {**dict.fromkeys(settings.rules.packs(), PROMETHEUS), **dict.fromkeys(settings.rules.loki_packs(), LOKI)}
    for pack, chosen in {**settings.rules.packs(), **settings.rules.loki_packs()}.items():
        known = pack_thresholds(pack, engines[pack])
        for key in chosen.thresholds:
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
                hint = f"did you mean '{close[0]}'?" if close else f"known thresholds: {', '.join(known)}"
                return ("rules", pack, "thresholds", key), "unknown threshold", hint
    return None


def format_number(value: float) -> str:
    """A threshold as PromQL and people read it: 500 not 500.0, 0.05 not 5e-02."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def runbook_url(base: str, alert: str) -> str:
    return f"{base}{alert}.md"


def _substitute(text: str, values: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{where}: unknown placeholder %{{{key}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, text)


def _render_value(value: Any, values: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return _substitute(value, values, where)
    if isinstance(value, dict):
        return {key: _render_value(item, values, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, values, where) for item in value]
    return value


def render_groups(
    name: str, thresholds: Mapping[str, float], runbook_base: str, engine: str = PROMETHEUS
) -> list[dict[str, Any]]:
    """The rule groups of pack `name` with `thresholds` (missing ones take the pack default)."""
    pack = load_pack(name, engine)
    numbers = {key: format_number(thresholds.get(key, spec.default)) for key, spec in pack.thresholds.items()}
    groups = []
    for group in pack.groups:
        rules = []
        for rule in group["rules"]:
            alert = rule.get("alert")
            values = dict(numbers)
            if alert:
                values[RUNBOOK] = runbook_url(runbook_base, alert)
            rules.append(_render_value(rule, values, f"pack {name}, {alert or rule.get('record')}"))
        groups.append({**group, "rules": rules})
    return groups


def render_pack(name: str, thresholds: Mapping[str, float], runbook_base: str, engine: str = PROMETHEUS) -> str:
    """Pack `name` as the text of a rule file (Prometheus' format, which Loki's ruler reads too)."""
    title = load_pack(name, engine).title
    header = f"# Rule pack {name!r} ({title}), rendered by stack from stack.yaml `rules.{name}`.\n"
    return header + dumps({"groups": render_groups(name, thresholds, runbook_base, engine)})


def memory_limit_group(limits: Mapping[str, int]) -> dict[str, Any]:
    """Recording rules holding each component's memory limit (bytes), for StackComponentMemoryHigh."""
    rules = [
        {"record": "stack:memory_limit:bytes", "expr": f"vector({limit})", "labels": {"job": job}}
        for job, limit in limits.items()
    ]
    return {"name": "stack-memory-limits", "interval": "1m", "rules": rules}
