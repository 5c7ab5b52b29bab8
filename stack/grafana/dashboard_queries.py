"""The queries inside a Grafana dashboard model: which datasource each one needs, and its text with
Grafana's variables replaced, so that tests and benchmarks can run them against the real backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Grafana's built-in macros, with values fitting a short dashboard time range.
DEFAULT_MACROS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__auto": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "30000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class Query:
    """One query of a panel (or of a template variable)."""

    dashboard: str
    panel: str
    ref_id: str
    datasource_type: str
    datasource_uid: str
    text: str
    kind: str  # promql | logql | traceql | servicemap | variable
    instant: bool = False
    exemplar: bool = False
    legend: str = ""

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def iter_panels(model: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows included; rows themselves are not yielded."""
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def datasource_variables(model: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Datasource template variables: name -> (plugin type, uid it points at by default)."""
    found = {}
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            current = variable.get("current") or {}
            found[variable["name"]] = (variable.get("query", ""), str(current.get("value", "")))
    return found


def resolve_datasource(model: Mapping[str, Any], ref: Any) -> tuple[str, str]:
    """(type, uid) of a datasource reference, following `${variable}` to the variable's default.

    An unresolvable reference gives its raw text as uid, which no provisioned datasource has.
    """
    if not isinstance(ref, Mapping):
        return ("", str(ref) if ref is not None else "")
    kind, uid = str(ref.get("type", "")), str(ref.get("uid", ""))
    match = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", uid)
    if match:
        name = match.group(1) or match.group(2)
        variables = datasource_variables(model)
        if name in variables:
            var_type, var_uid = variables[name]
            return (kind or var_type, var_uid)
    return (kind, uid)


def _kind(datasource_type: str, target: Mapping[str, Any]) -> str:
    if datasource_type == "prometheus":
        return "promql"
    if datasource_type == "loki":
        return "logql"
    if datasource_type == "tempo":
        return "servicemap" if target.get("queryType") == "serviceMap" else "traceql"
    return datasource_type


def queries(model: Mapping[str, Any]) -> list[Query]:
    """Every panel target, annotation query and query variable of the dashboard."""
    dashboard = str(model.get("uid", ""))
    found: list[Query] = []
    for panel in iter_panels(model):
        for target in panel.get("targets", []):
            ds_type, ds_uid = resolve_datasource(model, target.get("datasource") or panel.get("datasource"))
            kind = _kind(ds_type, target)
            text = str(target.get("expr") if kind in ("promql", "logql") else target.get("query", "") or "")
            found.append(
                Query(
                    dashboard,
                    str(panel.get("title", "")),
                    str(target.get("refId", "")),
                    ds_type,
                    ds_uid,
                    text,
                    kind,
                    instant=bool(target.get("instant")) and not target.get("range"),
                    exemplar=bool(target.get("exemplar")),
                    legend=str(target.get("legendFormat", "") or ""),
                )
            )
    for annotation in model.get("annotations", {}).get("list", []):
        if annotation.get("builtIn") or not annotation.get("expr"):
            continue
        ds_type, ds_uid = resolve_datasource(model, annotation.get("datasource"))
        name = f"annotation {annotation.get('name', '')!r}"
        found.append(Query(dashboard, name, "annotation", ds_type, ds_uid, str(annotation["expr"]), _kind(ds_type, {})))
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        ds_type, ds_uid = resolve_datasource(model, variable.get("datasource"))
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, Mapping) else str(query or "")
        found.append(Query(dashboard, f"${variable['name']}", "variable", ds_type, ds_uid, text, "variable"))
    return found


def variable_names(text: str) -> set[str]:
    """The names of the Grafana variables `text` uses (`$x`, `${x}`, `${x:fmt}`, `[[x]]`)."""
    return {next(g for g in match.groups() if g) for match in _VARIABLE.finditer(text)}


def interpolate(text: str, values: Mapping[str, str], macros: Mapping[str, str] = DEFAULT_MACROS) -> str:
    """`text` with Grafana's variables replaced by `values` (and the built-in macros by `macros`).

    A variable with no value is left as it is, so that the backend reports it.
    """
    merged = {**macros, **values}

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return merged.get(name, match.group(0))

    return _VARIABLE.sub(replace, text)


def or_variants(expr: str) -> list[str]:
    """`expr` once for each operand of each PromQL `or`, with that operand alone in its place and,
    in every `or` around it, only the side that contains it.

    Each side of `a or b` must work on its own: a fallback that always returns data would hide a
    wrong metric name on the other side. An expression without `or` gives an empty list.
    """
    ors: dict[int, list[int]] = {}
    ends: dict[int, int] = {}
    stack = [0]
    quote = ""
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(i + 1)
        elif char in ")]}":
            ends[stack.pop()] = i
        elif expr.startswith(" or ", i):
            ors.setdefault(stack[-1], []).append(i)
            i += 4
            continue
        i += 1
    ends[0] = len(expr)
    # Every `or` group as (start, end, operand spans).
    groups = []
    for start, positions in sorted(ors.items()):
        end = ends[start]
        spans = list(zip([start, *(p + 4 for p in positions)], [*positions, end], strict=True))
        groups.append((start, end, spans))
    variants = []
    for _, _, spans in groups:
        for begin, stop in spans:
            cuts = []
            for outer_start, outer_end, outer_spans in groups:
                for outer_begin, outer_stop in outer_spans:
                    if outer_begin <= begin and stop <= outer_stop:
                        cuts += [(outer_start, outer_begin), (outer_stop, outer_end)]
            kept = [char for index, char in enumerate(expr) if not any(a <= index < b for a, b in cuts)]
            variants.append("".join(kept).strip())
    return variants
