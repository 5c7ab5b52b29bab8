"""A small builder for Grafana dashboard JSON (classic model), so that every bundled panel gets the
same datasource variables, units, descriptions, links and layout rules.

Only `scripts/build_dashboards.py` imports this; what ships is the generated JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Grafana 12/13 classic dashboard model. Grafana migrates older versions on load, never newer ones.
SCHEMA_VERSION = 42
TAG = "stack"


@dataclass(frozen=True)
class Source:
    """A datasource as a panel names it: its plugin type and the dashboard variable holding its uid."""

    type: str
    variable: str
    default_uid: str
    label: str

    def ref(self) -> dict[str, str]:
        return {"type": self.type, "uid": f"${{{self.variable}}}"}

    def template(self) -> dict[str, Any]:
        return {
            "type": "datasource",
            "name": self.variable,
            "label": self.label,
            "query": self.type,
            "current": {"text": self.label, "value": self.default_uid},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        }


PROMETHEUS = Source("prometheus", "datasource", "prometheus", "Prometheus")
LOKI = Source("loki", "logs", "loki", "Loki")
TEMPO = Source("tempo", "traces", "tempo", "Tempo")


def prom(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    exemplar: bool = False,
    table: bool = False,
) -> dict[str, Any]:
    """A PromQL target."""
    target: dict[str, Any] = {
        "datasource": PROMETHEUS.ref(),
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
    }
    if exemplar:
        target["exemplar"] = True
    if table:
        target["format"] = "table"
    return target


def logql(expr: str, legend: str = "__auto", *, instant: bool = False) -> dict[str, Any]:
    """A LogQL target (a log query for logs panels, a metric query for graphs)."""
    return {
        "datasource": LOKI.ref(),
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "queryType": "instant" if instant else "range",
    }


def traceql(query: str, *, limit: int = 20) -> dict[str, Any]:
    """A TraceQL search target (a table of matching traces)."""
    return {
        "datasource": TEMPO.ref(),
        "queryType": "traceql",
        "query": query,
        "limit": limit,
        "spss": 3,
        "tableType": "traces",
    }


def service_map() -> dict[str, Any]:
    """Tempo's service graph (computed from the traces_service_graph_* metrics in Prometheus)."""
    return {"datasource": TEMPO.ref(), "queryType": "serviceMap"}


def dashboard_link(uid: str, title: str) -> dict[str, Any]:
    """A panel link to another bundled dashboard, keeping the time range and the variables."""
    return {"title": title, "url": f"/d/{uid}?${{__url_time_range}}&${{__all_variables}}"}


def series_link(uid: str, title: str, variable: str, label: str) -> dict[str, Any]:
    """A data link from the clicked series to another dashboard, with `variable` set to the
    series' `label` (e.g. the service of the line clicked)."""
    return {
        "title": title,
        "url": f"/d/{uid}?var-{variable}=${{__field.labels.{label}}}&${{__url_time_range}}",
    }


def alerts_annotation(selector: str) -> dict[str, Any]:
    """Firing Prometheus alerts as annotations on every graph (`selector` picks the services)."""
    return {
        "name": "Firing alerts",
        "datasource": PROMETHEUS.ref(),
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "expr": f'ALERTS{{alertstate="firing", {selector}}}',
        "step": "60s",
        "titleFormat": "{{alertname}}",
        "textFormat": "{{severity}}: {{service}}",
        "tagKeys": "severity,service",
        "useValueForTime": False,
    }


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


GREEN_ONLY = thresholds((None, "green"))


@dataclass
class Panel:
    kind: str
    title: str
    description: str
    targets: list[dict[str, Any]]
    unit: str | None = None
    width: int = 12
    height: int = 8
    decimals: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    steps: dict[str, Any] | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
        defaults: dict[str, Any] = {"thresholds": self.steps or GREEN_ONLY, "custom": dict(self.custom)}
        if self.kind in ("timeseries",):
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": False,
                **self.custom,
            }
        if self.unit:
            defaults["unit"] = self.unit
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.minimum is not None:
            defaults["min"] = self.minimum
        if self.maximum is not None:
            defaults["max"] = self.maximum
        if self.links:
            defaults["links"] = self.links
        if self.mappings:
            defaults["mappings"] = self.mappings
        datasource = self.targets[0]["datasource"] if self.targets else PROMETHEUS.ref()
        targets = [{**target, "refId": chr(ord("A") + index)} for index, target in enumerate(self.targets)]
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": datasource,
            "gridPos": grid,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self._options(),
            "targets": targets,
        }
        if self.transformations:
            panel["transformations"] = self.transformations
        return panel

    def _options(self) -> dict[str, Any]:
        base: dict[str, Any] = {}
        if self.kind == "timeseries":
            base = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif self.kind == "stat":
            base = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "textMode": "auto",
            }
        elif self.kind == "gauge":
            base = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "showThresholdLabels": False,
                "showThresholdMarkers": True,
            }
        elif self.kind == "bargauge":
            base = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "displayMode": "gradient",
                "orientation": "horizontal",
            }
        elif self.kind == "logs":
            base = {
                "showTime": True,
                "wrapLogMessage": True,
                "enableLogDetails": True,
                "sortOrder": "Descending",
                "dedupStrategy": "none",
            }
        elif self.kind == "table":
            base = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
        return {**base, **self.options}


def timeseries(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    return Panel("timeseries", title, description, list(targets), **kw)


def stat(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    kw.setdefault("width", 6)
    kw.setdefault("height", 4)
    return Panel("stat", title, description, list(targets), **kw)


def gauge(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    kw.setdefault("width", 6)
    kw.setdefault("height", 6)
    return Panel("gauge", title, description, list(targets), **kw)


def bargauge(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    return Panel("bargauge", title, description, list(targets), **kw)


def table(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    return Panel("table", title, description, list(targets), **kw)


def logs(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    kw.setdefault("width", 24)
    kw.setdefault("height", 10)
    return Panel("logs", title, description, list(targets), **kw)


def traces(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    kw.setdefault("width", 24)
    kw.setdefault("height", 8)
    return Panel("table", title, description, list(targets), **kw)


def node_graph(title: str, description: str, *targets: dict[str, Any], **kw: Any) -> Panel:
    kw.setdefault("width", 24)
    kw.setdefault("height", 12)
    return Panel("nodeGraph", title, description, list(targets), **kw)


@dataclass(frozen=True)
class Row:
    title: str


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    include_all: bool = True,
    multi: bool = True,
    description: str = "",
    regex: str = "",
) -> dict[str, Any]:
    """A Prometheus query variable: `label_values(<selector>, <label>)`, or `query_result(<expr>)` with
    `regex` extracting the value. "All" matches every value with `.+`. The query is in the classic
    string form, which every Grafana version reads."""
    variable: dict[str, Any] = {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": PROMETHEUS.ref(),
        "definition": query,
        "query": query,
        "refresh": 2,
        "sort": 1,
        "regex": regex,
        "hide": 0,
        "includeAll": include_all,
        "multi": multi,
        "options": [],
    }
    if include_all:
        variable["allValue"] = ".+"
        variable["current"] = {"text": ["All"], "value": ["$__all"]}
    return variable


@dataclass
class Board:
    uid: str
    title: str
    description: str
    tags: list[str]
    sources: list[Source] = field(default_factory=lambda: [PROMETHEUS])
    variables: list[dict[str, Any]] = field(default_factory=list)
    items: list[Panel | Row] = field(default_factory=list)
    time_from: str = "now-3h"
    refresh: str = "30s"
    links: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def add(self, *items: Panel | Row) -> Board:
        self.items.extend(items)
        return self

    def to_json(self) -> dict[str, Any]:
        panels: list[dict[str, Any]] = []
        x = y = line_height = 0
        for number, item in enumerate(self.items, start=1):
            if isinstance(item, Row):
                y += line_height
                x = line_height = 0
                panels.append(
                    {
                        "id": number,
                        "type": "row",
                        "title": item.title,
                        "collapsed": False,
                        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                        "panels": [],
                    }
                )
                y += 1
                continue
            if x + item.width > 24:
                y += line_height
                x = line_height = 0
            panels.append(item.to_json(number, {"h": item.height, "w": item.width, "x": x, "y": y}))
            x += item.width
            line_height = max(line_height, item.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": [TAG, *self.tags],
            "editable": True,
            "graphTooltip": 1,
            "timezone": "browser",
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "refresh": self.refresh,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "annotations": {"list": [_builtin_annotations(), *self.annotations]},
            "links": [
                {
                    "title": "Stack dashboards",
                    "type": "dashboards",
                    "tags": [TAG],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "icon": "external link",
                    "targetBlank": False,
                },
                *self.links,
            ],
            "templating": {"list": [source.template() for source in self.sources] + self.variables},
            "panels": panels,
        }


def _builtin_annotations() -> dict[str, Any]:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


@dataclass(frozen=True)
class Pack:
    """A folder of dashboards in Grafana."""

    name: str
    folder_title: str
    boards: list[Board]
