"""`stack provision --grafana-url` against a Grafana that already has datasources (the fake Grafana
of tests/support/fake_grafana.py, following Grafana's HTTP API): the packs are bound to that Grafana's own
datasources of each type, which are named; packs needing a type found nowhere are skipped, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stack.grafana.dashboards import load_dashboards
from tests.conftest import invoke
from tests.support.fake_grafana import FakeGrafana, fake_grafana


def _datasource(grafana: FakeGrafana, uid: str, kind: str, name: str, *, default: bool = False) -> None:
    grafana.datasources[uid] = {
        "id": len(grafana.datasources) + 100,
        "uid": uid,
        "orgId": 1,
        "name": name,
        "type": kind,
        "access": "proxy",
        "url": f"http://{uid}.internal",
        "isDefault": default,
        "readOnly": False,
        "jsonData": {},
    }


def _provision(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, Any]:
    monkeypatch.setenv("STACK_GRAFANA_TOKEN", grafana.add_token())
    result = invoke("provision", "--grafana-url", grafana.url, "--json", *extra)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _variables(model: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v for v in model.get("templating", {}).get("list", []) if v.get("type") == "datasource"}


def test_the_packs_use_the_existing_prometheus(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_grafana() as grafana:
        _datasource(grafana, "thanos-a", "prometheus", "Thanos")
        _datasource(grafana, "mimir-1", "prometheus", "Mimir", default=True)
        shown = _provision(grafana, monkeypatch)
        # Nothing of ours is created beside theirs; every pack has Prometheus panels and goes.
        assert shown["datasources"] == {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
        assert shown["dashboards"]["created"] == len(load_dashboards())
        assert set(grafana.datasources) == {"thanos-a", "mimir-1"}
        # The default one wins over the first by name, and the user is told which.
        assert "using this Grafana's prometheus datasource 'Mimir' (uid mimir-1) for the packs" in shown["notes"]
        for stored in grafana.dashboards.values():
            model = stored["dashboard"]
            variable = _variables(model).get("datasource")
            if variable is not None:
                assert variable["current"] == {"text": "Mimir", "value": "mimir-1"}, model["uid"]
            assert '"uid": "prometheus"' not in json.dumps(model), model["uid"]
        # No Loki or Tempo there: the packs' log and trace panels are left out, the packs go.
        explore = next(s["dashboard"] for s in grafana.dashboards.values() if s["dashboard"]["uid"] == "stack-explore")
        assert "logs" not in _variables(explore) and "traces" not in _variables(explore)
        # Unchanged on a second run: the comparison sees the bound dashboards as they were pushed.
        assert _provision(grafana, monkeypatch)["writes"] == 0


def test_a_url_given_is_pushed_and_the_other_types_are_bound(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_grafana() as grafana:
        _datasource(grafana, "team-loki", "loki", "Team logs")
        shown = _provision(grafana, monkeypatch, "--prometheus-url", "http://prom:9090")
        assert shown["datasources"]["created"] == 1
        assert grafana.datasources["prometheus"]["url"] == "http://prom:9090"
        explore = next(s["dashboard"] for s in grafana.dashboards.values() if s["dashboard"]["uid"] == "stack-explore")
        variables = _variables(explore)
        assert variables["datasource"]["current"]["value"] == "prometheus"
        assert variables["logs"]["current"] == {"text": "Team logs", "value": "team-loki"}
        assert "using this Grafana's loki datasource 'Team logs' (uid team-loki) for the packs" in shown["notes"]


def test_nothing_to_bind_says_which_packs_were_skipped_and_why(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_grafana() as grafana:
        _datasource(grafana, "es", "elasticsearch", "Logs (ES)")
        shown = _provision(grafana, monkeypatch)
        assert shown["dashboards"]["created"] == 0 and grafana.dashboards == {}
        skipped = [note for note in shown["notes"] if note.startswith("skipped ")]
        assert skipped, shown["notes"]
        assert any(
            "Stack health" in note and "no prometheus datasource in this Grafana, and no --prometheus-url given" in note
            for note in skipped
        ), skipped
        # The plain output says it too, one line each.
        monkeypatch.setenv("STACK_GRAFANA_TOKEN", grafana.add_token())
        plain = invoke("provision", "--grafana-url", grafana.url)
        assert plain.exit_code == 0
        assert "note: skipped " in plain.stdout
