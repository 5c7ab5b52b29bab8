"""Binding the dashboard packs to the datasources a Grafana already has (`stack provision
--grafana-url` with no `--prometheus-url`...): a team's own Grafana with a Prometheus datasource gets
the packs pointed at it, instead of nothing."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from stack.components.grafana import DATASOURCE_COMPONENTS
from stack.grafana.client import GrafanaClient
from stack.grafana.dashboards import Dashboard, for_datasources, is_bundled


@dataclass(frozen=True)
class Bound:
    """An existing datasource the packs use for one plugin type."""

    type: str
    uid: str
    name: str


def existing_datasources(client: GrafanaClient, types: set[str]) -> dict[str, Bound]:
    """Per plugin type in `types`: the Grafana's default datasource of that type if it is one, else
    the first by name."""
    _status, listed = client.request("GET", "/api/datasources", what="list its datasources")
    found: dict[str, Bound] = {}
    candidates = sorted(
        (item for item in listed or [] if isinstance(item, dict) and item.get("type") in types and item.get("uid")),
        key=lambda item: (not item.get("isDefault"), str(item.get("name", "")).lower()),
    )
    for item in candidates:
        found.setdefault(item["type"], Bound(item["type"], str(item["uid"]), str(item.get("name", item["uid"]))))
    return found


def _rebind(value: Any, uids: dict[str, str]) -> Any:
    """Every `{"type": t, "uid": <the stack's uid for t>}` reference pointed at the bound uid."""
    if isinstance(value, dict):
        kind = value.get("type")
        # The stack's datasource of a type has that type as its uid (DATASOURCE_COMPONENTS).
        if kind in uids and value.get("uid") == kind and set(value) <= {"type", "uid"}:
            return {**value, "uid": uids[kind]}
        return {key: _rebind(item, uids) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebind(item, uids) for item in value]
    return value


def bind(dashboard: Dashboard, bound: dict[str, Bound]) -> Dashboard:
    """`dashboard` with its datasource variables defaulting to the bound datasources, and direct
    references to the stack's uids pointed at them."""
    if not bound:
        return dashboard
    model = _rebind(copy.deepcopy(dashboard.model), {kind: item.uid for kind, item in bound.items()})
    for variable in model.get("templating", {}).get("list", []):
        chosen = bound.get(variable.get("query")) if variable.get("type") == "datasource" else None
        if chosen is not None:
            variable["current"] = {"text": chosen.name, "value": chosen.uid}
    return Dashboard(dashboard.uid, dashboard.title, dashboard.folder, model, dashboard.source)


@dataclass(frozen=True)
class Plan:
    dashboards: list[Dashboard]
    bound: dict[str, Bound]
    notes: list[str]


def plan_external(client: GrafanaClient, dashboards: list[Dashboard], given: set[str]) -> Plan:
    """The dashboards to push to a Grafana elsewhere: datasources `given` a URL are pushed with the
    stack's uids; for every other type the Grafana's own datasource is used; a pack that needs a type
    found nowhere is skipped, and the notes say which and why."""
    wanted = set(DATASOURCE_COMPONENTS) - given
    bound = existing_datasources(client, wanted) if wanted else {}
    available = given | set(bound)
    kept = for_datasources(dashboards, available)
    kept_uids = {dashboard.uid for dashboard in kept}
    notes = [
        f"using this Grafana's {kind} datasource {item.name!r} (uid {item.uid}) for the packs"
        for kind, item in sorted(bound.items())
        if kind != "alertmanager"
    ]
    # Per missing type, the packs left out for want of it.
    missing = set(DATASOURCE_COMPONENTS) - available
    needs: dict[str, list[str]] = {}
    for dashboard in dashboards:
        if not is_bundled(dashboard) or dashboard.uid in kept_uids:
            continue
        variables = dashboard.model.get("templating", {}).get("list", [])
        types = {v.get("query") for v in variables if v.get("type") == "datasource"} & missing or missing
        for kind in sorted(types):
            needs.setdefault(kind, []).append(dashboard.title)
    for kind, titles in sorted(needs.items()):
        notes.append(f"skipped {', '.join(titles)}: no {kind} datasource in this Grafana, and no --{kind}-url given")
    return Plan([bind(dashboard, bound) for dashboard in kept], bound, notes)
