"""The bundled dashboard packs' structure, and the loader's contract and errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stack.components import REGISTRY
from stack.components.grafana import DATASOURCE_COMPONENTS
from stack.errors import SettingsError
from stack.grafana.dashboard_queries import (
    datasource_variables,
    iter_panels,
    queries,
    resolve_datasource,
    variable_names,
)
from stack.grafana.dashboards import Dashboard, Folder, bundled_packs, folders, load_dashboards, selected_dashboards
from stack.project import SETTINGS_CHECKS
from stack.resources import bundled
from stack.settings import Settings, load_settings, parse_settings
from stack.yamlio import load_file
from tests.conftest import REPO, invoke

DASHBOARDS = load_dashboards()
PANEL_KINDS_WITH_UNITS = {"timeseries", "stat", "gauge", "bargauge"}
MACROS = {"__rate_interval", "__interval", "__range", "__auto", "__all_variables", "__url_time_range", "1"}


def provisioned_datasources() -> dict[str, str]:
    """uid -> type of every datasource the stack provisions."""
    document = load_file(bundled("provisioning") / "datasources" / "datasources.yaml").data
    return {source["uid"]: source["type"] for source in document["datasources"]}


def test_generated_json_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_pack_is_a_folder_with_dashboards() -> None:
    packs = bundled_packs()
    assert {"stack-health", "service-overview", "slos"} <= set(packs)
    for pack in packs:
        loaded = load_dashboards([pack])
        assert loaded, pack
        assert {d.folder for d in loaded} == {loaded[0].folder}
        assert loaded[0].folder.uid == f"stack-folder-{pack}"


def test_uids_are_unique_and_fixed() -> None:
    uids = [d.uid for d in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert all(uid.startswith("stack-") and len(uid) <= 40 for uid in uids)
    folder_uids = [f.uid for f in folders(DASHBOARDS)]
    assert len(folder_uids) == len(set(folder_uids))
    assert not set(folder_uids) & set(uids)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_dashboard_conventions(dashboard: Dashboard) -> None:
    model = dashboard.model
    assert model["schemaVersion"] >= 41
    assert model.get("description")
    assert model["time"]["from"].startswith("now-") and model["time"]["to"] == "now"
    assert re.fullmatch(r"\d+[smh]", model["refresh"])
    assert "stack" in model["tags"]
    assert any(link.get("type") == "dashboards" and "stack" in link.get("tags", []) for link in model["links"])
    assert "id" not in model


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_every_panel_has_title_description_and_unit(dashboard: Dashboard) -> None:
    panels = list(iter_panels(dashboard.model))
    assert panels
    ids = [panel["id"] for panel in dashboard.model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        where = f"{dashboard.uid} / {panel.get('title')!r}"
        assert panel.get("title"), where
        assert len(panel.get("description", "")) >= 20, f"{where}: no description"
        assert panel.get("targets"), f"{where}: no query"
        if panel["type"] in PANEL_KINDS_WITH_UNITS:
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_datasources_are_variables_that_resolve_to_provisioned_uids(dashboard: Dashboard) -> None:
    provisioned = provisioned_datasources()
    for name, (kind, uid) in datasource_variables(dashboard.model).items():
        assert provisioned.get(uid) == kind, f"{dashboard.uid}: ${name} -> {uid!r} ({kind}) is not provisioned"
    for panel in iter_panels(dashboard.model):
        refs = [panel.get("datasource"), *(target.get("datasource") for target in panel["targets"])]
        for ref in refs:
            # By variable, so that a user can point a dashboard at another datasource in one place.
            assert isinstance(ref, dict) and ref["uid"].startswith("${"), f"{dashboard.uid} / {panel['title']}: {ref}"
            kind, uid = resolve_datasource(dashboard.model, ref)
            assert provisioned.get(uid) == kind, f"{dashboard.uid} / {panel['title']}: {ref} -> {uid!r}"
    for variable in dashboard.model["templating"]["list"]:
        if variable["type"] == "query":
            kind, uid = resolve_datasource(dashboard.model, variable["datasource"])
            assert provisioned.get(uid) == kind, f"{dashboard.uid}: ${variable['name']}"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_every_variable_a_query_uses_is_defined(dashboard: Dashboard) -> None:
    defined = {variable["name"] for variable in dashboard.model["templating"]["list"]} | MACROS
    for query in queries(dashboard.model):
        assert variable_names(query.text) <= defined, f"{query.where}: {query.text}"
    for panel in iter_panels(dashboard.model):
        for link in panel["fieldConfig"]["defaults"].get("links", []):
            assert variable_names(link["url"]) <= defined | {"__field", "__value"}, link


def test_links_point_at_existing_dashboards() -> None:
    uids = {d.uid for d in DASHBOARDS}
    linked = 0
    for dashboard in DASHBOARDS:
        for panel in iter_panels(dashboard.model):
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                match = re.match(r"/d/([\w-]+)", link["url"])
                assert match and match.group(1) in uids, f"{dashboard.uid} / {panel['title']}: {link['url']}"
                linked += 1
    assert linked


# --- the loader ----------------------------------------------------------------------------------


def _write(path: Path, model: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2) if not isinstance(model, str) else model, encoding="utf-8")
    return path


def test_user_directory_is_a_folder_of_its_own(tmp_path: Path) -> None:
    team = tmp_path / "team boards"
    _write(team / "a.json", {"uid": "team-a", "title": "A", "panels": [], "id": 17})
    loaded = load_dashboards(["slos"], [team])
    assert [d.uid for d in loaded] == ["stack-slos", "team-a"]
    assert loaded[1].folder == Folder("stack-user-team-boards", "team boards")
    assert "id" not in loaded[1].model
    assert folders(loaded) == [loaded[0].folder, loaded[1].folder]


def test_user_directory_folder_json_names_the_folder(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "folder.json", {"uid": "payments", "title": "Payments team"})
    _write(tmp_path / "d" / "x.json", {"uid": "pay-x", "title": "X"})
    [dashboard] = load_dashboards([], [tmp_path / "d"])
    assert dashboard.folder == Folder("payments", "Payments team")


def test_exported_for_sharing_inputs_point_at_the_stack_datasources(tmp_path: Path) -> None:
    model = {
        "__inputs": [{"name": "DS_PROM", "type": "datasource", "pluginId": "prometheus"}],
        "uid": "shared",
        "title": "Shared",
        "panels": [{"type": "timeseries", "datasource": {"type": "prometheus", "uid": "${DS_PROM}"}}],
    }
    [dashboard] = load_dashboards([], [_write(tmp_path / "d" / "s.json", model).parent])
    assert dashboard.model["panels"][0]["datasource"]["uid"] == "prometheus"
    assert "__inputs" not in dashboard.model


def test_api_envelope_is_unwrapped(tmp_path: Path) -> None:
    envelope = {"dashboard": {"uid": "wrapped", "title": "W"}, "meta": {"folderUid": "x"}}
    [dashboard] = load_dashboards([], [_write(tmp_path / "d" / "w.json", envelope).parent])
    assert dashboard.uid == "wrapped"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"uid": "a",\n  "title": }', r"/bad\.json:2: invalid JSON: Expecting value \(column 12\)"),
        ("[1, 2]", r"/bad\.json: a dashboard must be a JSON object"),
        ('{"title": "no uid"}', r"/bad\.json: a dashboard needs a 'uid' and a 'title'"),
        ('{"uid": "has space", "title": "T"}', r"/bad\.json: dashboard uid 'has space' is not valid"),
        (
            '{"__inputs": [{"name": "DS_X", "type": "datasource", "pluginId": "influxdb"}], "uid": "u", "title": "T"}',
            r"/bad\.json: input 'DS_X' needs a 'influxdb' datasource",
        ),
    ],
)
def test_bad_user_dashboard_is_a_one_line_error_naming_the_file(tmp_path: Path, content: str, expected: str) -> None:
    _write(tmp_path / "mine" / "bad.json", content)
    with pytest.raises(SettingsError) as caught:
        load_dashboards([], [tmp_path / "mine"])
    line = caught.value.one_line()
    assert re.search(expected, line), line
    assert str(tmp_path / "mine" / "bad.json") in line
    assert "\n" not in line


def test_duplicate_uid_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path / "mine" / "copy.json", {"uid": "stack-slos", "title": "My SLOs"})
    with pytest.raises(SettingsError) as caught:
        load_dashboards(None, [tmp_path / "mine"])
    line = caught.value.one_line()
    assert line.startswith(f"{tmp_path / 'mine' / 'copy.json'}: dashboard uid 'stack-slos' is already used by ")
    assert line.endswith("slos/stack-slos.json (hint: give each dashboard a uid of its own)")


def test_duplicate_uid_across_user_directories(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "one.json", {"uid": "same", "title": "One"})
    _write(tmp_path / "b" / "two.json", {"uid": "same", "title": "Two"})
    with pytest.raises(SettingsError, match=r"b/two\.json: dashboard uid 'same' is already used by .*a/one\.json"):
        load_dashboards([], [tmp_path / "a", tmp_path / "b"])


def test_dashboard_uid_equal_to_a_folder_uid(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "folder.json", {"uid": "ops", "title": "Ops"})
    _write(tmp_path / "d" / "x.json", {"uid": "ops", "title": "X"})
    with pytest.raises(SettingsError, match=r"x\.json: dashboard uid 'ops' is also the uid of the folder 'Ops'"):
        load_dashboards([], [tmp_path / "d"])


def test_missing_directory_and_unknown_pack(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="dashboard directory does not exist"):
        load_dashboards([], [tmp_path / "nope"])
    with pytest.raises(SettingsError) as caught:
        load_dashboards(["slo"])
    assert caught.value.one_line() == "'slo' is not a dashboard pack (hint: did you mean 'slos'?)"


# --- the `dashboards:` settings key ----------------------------------------------------------------


def test_default_settings_select_every_pack(tmp_path: Path) -> None:
    # None: every bundled pack, resolved by the code that knows them.
    assert Settings().dashboards.packs is None
    assert Settings().dashboards.dirs == []
    every = {dashboard.uid for dashboard in load_dashboards(bundled_packs())}
    assert {dashboard.uid for dashboard in selected_dashboards(Settings(), tmp_path)} == every


def test_an_empty_packs_key_is_refused_not_taken_for_every_pack() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"dashboards": {"packs": None}})
    assert caught.value.one_line() == "stack.yaml (defaults): dashboards.packs: expected a list, got None"


def test_settings_select_packs_and_directories(tmp_path: Path) -> None:
    _write(tmp_path / "boards" / "mine.json", {"uid": "mine", "title": "Mine"})
    settings = parse_settings({"dashboards": {"packs": ["slos"], "dirs": ["boards"]}})
    assert [d.uid for d in selected_dashboards(settings, tmp_path)] == ["stack-slos", "mine"]
    none = parse_settings({"dashboards": {"packs": []}})
    assert selected_dashboards(none, tmp_path) == []


def test_unknown_pack_in_stack_yaml_is_a_one_line_error(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("dashboards:\n  packs:\n    - stack-health\n    - slo\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(project_dir / "stack.yaml", checks=SETTINGS_CHECKS)
    assert caught.value.one_line() == (
        f"{project_dir / 'stack.yaml'}:4: dashboards.packs[1]: 'slo' is not a dashboard pack "
        "(hint: did you mean 'slos'?)"
    )
    result = invoke("validate")
    assert result.exit_code == 2
    assert "dashboards.packs[1]: 'slo' is not a dashboard pack" in result.output


def test_unknown_key_under_dashboards_gets_a_did_you_mean(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("dashboards:\n  dir: [x]\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(project_dir / "stack.yaml")
    assert caught.value.one_line().endswith("stack.yaml:2: dashboards.dir: unknown key (hint: did you mean 'dirs'?)")


# --- disabled components take their panels with them ----------------------------------------------


def _types(dashboard: Dashboard) -> set[str]:
    found = set()
    for panel in iter_panels(dashboard.model):
        for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            found.add(resolve_datasource(dashboard.model, ref)[0])
    return found


def test_panels_of_disabled_datasources_are_left_out(tmp_path: Path) -> None:
    settings = parse_settings({"components": {"loki": {"enabled": False}, "tempo": {"enabled": False}}})
    dashboards = selected_dashboards(settings, tmp_path)
    assert [d.uid for d in dashboards] == [d.uid for d in DASHBOARDS]
    for dashboard in dashboards:
        assert _types(dashboard) == {"prometheus"}, dashboard.uid
        names = {v["name"] for v in dashboard.model["templating"]["list"]}
        assert not names & {"logs", "traces"}, dashboard.uid
        defined = names | MACROS
        assert all(variable_names(q.text) <= defined for q in queries(dashboard.model)), dashboard.uid
        panels = dashboard.model["panels"]
        # No row is left with nothing under it.
        for index, panel in enumerate(panels):
            if panel["type"] == "row":
                assert index + 1 < len(panels) and panels[index + 1]["type"] != "row", dashboard.uid
    explore = next(d for d in dashboards if d.uid == "stack-explore")
    assert "Calls between services" in {p["title"] for p in iter_panels(explore.model)}
    # The bundled files are not touched.
    assert _types(next(d for d in load_dashboards(["explore"]))) == {"prometheus", "loki", "tempo"}


def test_without_prometheus_only_log_and_trace_panels_stay(tmp_path: Path) -> None:
    _write(tmp_path / "mine" / "m.json", {"uid": "mine", "title": "Mine", "panels": []})
    settings = parse_settings({"components": {"prometheus": {"enabled": False}}, "dashboards": {"dirs": ["mine"]}})
    dashboards = selected_dashboards(settings, tmp_path)
    # The user's own dashboards are theirs: kept as they are.
    assert [d.uid for d in dashboards] == ["stack-errors", "stack-explore", "stack-service-overview", "mine"]
    assert all(_types(dashboard) == {"loki", "tempo"} for dashboard in dashboards[:3])
    for dashboard in dashboards[:3]:
        variables = {v["name"]: v for v in dashboard.model["templating"]["list"]}
        assert all(variable_names(q.text) <= set(variables) | MACROS for q in queries(dashboard.model))
        # The service list came from Prometheus: a regex box, all services by default, stands in.
        assert variables["service"]["type"] == "textbox" and variables["service"]["current"]["value"] == ".+"
    # The firing-alerts annotation reads Prometheus: it goes too.
    assert [a.get("builtIn") for a in dashboards[2].model["annotations"]["list"]] == [1]


# --- stack validate -------------------------------------------------------------------------------


def test_validate_reports_the_dashboards(project_dir: Path) -> None:
    result = invoke("validate", "--json")
    [check] = [c for c in json.loads(result.stdout) if c["name"] == "dashboards"]
    boards = load_dashboards()
    assert check == {
        "name": "dashboards",
        "status": "passed",
        "detail": f"{len(boards)} dashboards in {len(folders(boards))} folders",
    }


def test_validate_fails_on_a_bad_user_dashboard(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("dashboards:\n  dirs: [boards]\n")
    _write(project_dir / "boards" / "bad.json", '{"uid": "x",\n "title": "X",,}')
    result = invoke("validate", "--json")
    assert result.exit_code == 1
    [check] = [c for c in json.loads(result.stdout) if c["name"] == "dashboards"]
    assert check["status"] == "failed"
    assert check["detail"] == (
        f"{Path('boards') / 'bad.json'}:2: invalid JSON: Expecting property name enclosed in double quotes "
        "(column 15) (hint: fix the file or remove it)"
    )


def test_validate_names_a_datasource_uid_from_another_grafana(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("dashboards:\n  dirs: [boards]\n")
    model = {
        "uid": "copied",
        "title": "Copied",
        "panels": [
            {"title": "Requests", "datasource": {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}, "targets": []},
            {"title": "Fine", "datasource": {"type": "prometheus", "uid": "prometheus"}, "targets": []},
            {"title": "By name", "datasource": "Loki", "targets": [{"datasource": {"uid": "${ds}"}}]},
        ],
    }
    _write(project_dir / "boards" / "copied.json", model)
    result = invoke("validate", "--json")
    [check] = [c for c in json.loads(result.stdout) if c["name"] == "dashboards"]
    assert check["status"] == "failed"
    assert check["detail"] == (
        f"{Path('boards') / 'copied.json'}: panel 'Requests' uses datasource uid 'P1809F7CD0C75ACF3' "
        "(hint: use one of the stack's uids (prometheus, loki, tempo, alertmanager) or a datasource variable)"
    )


def test_check_names_stale_changed_and_missing_files(tmp_path: Path) -> None:
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("build_dashboards", REPO / "scripts" / "build_dashboards.py")
    assert spec and spec.loader
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    output = tmp_path / "dashboards"
    shutil.copytree(bundled("provisioning") / "dashboards", output)
    assert builder.differences(output) == []
    (output / "slos" / "old.json").write_text("{}")
    (output / "llm" / "stack-llm.json").write_text("{}")
    (output / "queues" / "folder.json").unlink()
    assert sorted(builder.differences(output)) == sorted(
        [
            f"{output / 'slos' / 'old.json'}: not generated by any pack (stale)",
            f"{output / 'llm' / 'stack-llm.json'}: differs from what scripts/dashboard_packs generates",
            f"{output / 'queues' / 'folder.json'}: missing",
        ]
    )
    builder.write(output)
    assert builder.differences(output) == []


def test_the_provisioned_datasources_are_the_grafana_components_table() -> None:
    # Dashboards name the stack's datasource of a type by uid == type; each is its component's.
    assert provisioned_datasources() == {uid: uid for uid in DATASOURCE_COMPONENTS}
    assert set(DATASOURCE_COMPONENTS.values()) <= set(REGISTRY)
