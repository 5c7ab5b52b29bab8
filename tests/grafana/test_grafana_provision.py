"""Provisioning against a fake Grafana that follows the documented HTTP API (tests/support/fake_grafana.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from stack.errors import StackError
from stack.grafana.client import Auth, GrafanaClient, GrafanaError, UrlTransport
from stack.grafana.dashboards import Dashboard, load_dashboards
from stack.grafana.provision import (
    external_datasources,
    provision,
    provision_external,
    provision_stack,
    stack_datasources,
)
from stack.paths import Paths
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, parse_settings
from tests.conftest import invoke
from tests.support.fake_grafana import FakeGrafana, fake_grafana
from tests.support.urlruntime import UrlRuntime


def write_dashboards(directory: Path, count: int = 3) -> list[Dashboard]:
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        model = {
            "uid": f"svc-{n}",
            "title": f"Service {n}",
            "schemaVersion": 39,
            "panels": [
                {
                    "id": 1,
                    "type": "timeseries",
                    "title": "Requests",
                    "datasource": {"type": "prometheus", "uid": "prometheus"},
                    "targets": [{"refId": "A", "expr": f'sum(rate(http_requests_total{{job="svc-{n}"}}[5m]))'}],
                }
            ],
        }
        (directory / f"svc-{n}.json").write_text(json.dumps(model))
    return load_dashboards(packs=[], user_dirs=[directory])


def stack_setup(paths: Paths, grafana: FakeGrafana) -> UrlRuntime:
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, grafana.admin_password)
    return UrlRuntime({"grafana": grafana.url})


def test_first_run_creates_everything_and_a_second_run_writes_nothing(
    paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dashboards = write_dashboards(tmp_path / "team")
    monkeypatch.setattr("stack.grafana.provision.stack_dashboards", lambda *args, **kwargs: dashboards)
    with fake_grafana() as grafana:
        runtime = stack_setup(paths, grafana)
        first = provision_stack(paths, Settings(), runtime)
        grafana.reset_journal()
        second = provision_stack(paths, Settings(), runtime)
        assert second.writes == 0
        assert grafana.writes() == []
    assert first.folders.created == 1
    assert first.datasources.created == 4
    assert first.dashboards.created == 3
    # service account + token, folder, datasources, where Grafana sends its alerts, dashboards
    assert first.writes == 2 + 1 + 4 + 1 + 3
    assert (second.folders.unchanged, second.datasources.unchanged, second.dashboards.unchanged) == (1, 4, 3)
    assert second.summary() == (
        "0 created, 0 updated, 9 unchanged "
        "(1 folders, 4 datasources, 3 dashboards, alert delivery; 11 requests, 0 writes)"
    )
    token_file = paths.secrets_dir / "grafana-provisioning-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # The token was made once, from the admin credentials, and is reused.
    assert len(grafana.tokens) == 1
    assert token_file.read_text().strip() in grafana.tokens


def test_datasources_are_wired_and_unescaped_for_the_api(paths: Paths) -> None:
    with fake_grafana() as grafana:
        provision_stack(paths, Settings(), stack_setup(paths, grafana))
        loki = grafana.datasources["loki"]
    assert loki["url"] == "http://loki:3100"
    # `$$` is the provisioning file's escape; through the API the value is the literal `$`.
    assert loki["jsonData"]["derivedFields"][0]["url"] == "${__value.raw}"
    assert "editable" not in loki
    assert grafana.datasources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"


def test_file_provisioned_datasources_are_left_alone(paths: Paths) -> None:
    with fake_grafana() as grafana:
        from stack.grafana.push_datasources import api_datasource

        for source in stack_datasources(Settings()):
            grafana.provisioned_datasource(api_datasource(source))
        grafana.datasources["loki"]["url"] = "http://elsewhere:3100"
        result = provision_stack(paths, Settings(), stack_setup(paths, grafana))
    assert result.datasources.unchanged == 3
    assert result.datasources.skipped == 1
    assert result.notes == ["datasource 'loki' is provisioned from file and differs: it changes when Grafana restarts"]
    assert not [w for w in grafana.writes() if "datasources" in w[1]]


def test_changed_and_moved_dashboards_are_updated_the_rest_untouched(tmp_path: Path) -> None:
    dashboards = write_dashboards(tmp_path / "team")
    with fake_grafana() as grafana:
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        provision(client, datasources=[], dashboards=dashboards)
        # Someone edits one dashboard in the UI, and another is moved to the root.
        grafana.edit_dashboard("svc-0", title="Edited by hand")
        grafana.dashboards["svc-1"]["folderUid"] = ""
        grafana.reset_journal()
        result = provision(client, datasources=[], dashboards=dashboards)
        assert grafana.dashboards["svc-0"]["dashboard"]["title"] == "Service 0"
        assert grafana.dashboards["svc-1"]["folderUid"] == "stack-user-team"
    assert (result.dashboards.updated, result.dashboards.unchanged) == (2, 1)
    assert result.writes == 2


def test_a_dashboard_saved_by_someone_else_meanwhile_is_retried(tmp_path: Path) -> None:
    dashboards = write_dashboards(tmp_path / "team", count=1)
    with fake_grafana() as grafana:
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        provision(client, datasources=[], dashboards=dashboards)
        grafana.edit_dashboard("svc-0", title="Edited")
        grafana.race.add("svc-0")
        grafana.reset_journal()
        result = provision(client, datasources=[], dashboards=dashboards)
        statuses = [(m, p, s) for m, p, s in grafana.journal if p == "/api/dashboards/db"]
    assert [s for _, _, s in statuses] == [412, 200]
    assert result.dashboards.updated == 1


def test_same_title_in_the_folder_is_a_clear_error_before_grafana_11_3(tmp_path: Path) -> None:
    dashboards = write_dashboards(tmp_path / "team", count=1)
    with fake_grafana(version="11.2.0") as grafana:
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        grafana.folders["stack-user-team"] = {"id": 99, "uid": "stack-user-team", "title": "team", "version": 1}
        grafana.dashboards["hand-made"] = {
            "dashboard": {"id": 100, "uid": "hand-made", "title": "Service 0", "version": 3},
            "folderUid": "stack-user-team",
        }
        with pytest.raises(GrafanaError) as caught:
            provision(client, datasources=[], dashboards=dashboards)
    assert caught.value.one_line() == (
        f"{tmp_path / 'team' / 'svc-0.json'}: Grafana at {grafana.url} already has another dashboard titled "
        "'Service 0' in folder 'team' (hint: rename one of them (titles must be unique within a folder))"
    )


def test_a_folder_of_the_same_title_with_another_uid_is_a_clear_error_before_grafana_11_3(tmp_path: Path) -> None:
    dashboards = write_dashboards(tmp_path / "team", count=1)
    with fake_grafana(version="11.2.0") as grafana:
        grafana.folders["abc"] = {"id": 5, "uid": "abc", "title": "team", "version": 1}
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        with pytest.raises(GrafanaError, match=r"another folder named 'team' \(409: a folder or dashboard"):
            provision(client, datasources=[], dashboards=dashboards)


def test_the_fake_refuses_a_dashboard_before_its_folder(tmp_path: Path) -> None:
    """What provisioning must avoid, shown against the fake: Grafana refuses it."""
    with fake_grafana() as grafana:
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        with pytest.raises(GrafanaError, match="HTTP 400: folder not found"):
            client.request(
                "POST", "/api/dashboards/db", {"dashboard": {"uid": "x", "title": "X"}, "folderUid": "missing"}
            )
        dashboards = write_dashboards(tmp_path / "team", count=2)
        grafana.reset_journal()
        provision(client, datasources=[], dashboards=dashboards)
        order = [p for m, p, _ in grafana.writes() if p in ("/api/folders", "/api/dashboards/db")]
    assert order == ["/api/folders", "/api/dashboards/db", "/api/dashboards/db"]


def test_a_name_clash_on_a_datasource_is_a_clear_error() -> None:
    with fake_grafana() as grafana:
        grafana.datasources["old"] = {"id": 1, "uid": "old", "name": "Prometheus", "type": "prometheus", "version": 1}
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        with pytest.raises(GrafanaError) as caught:
            provision(client, datasources=external_datasources({"prometheus": "http://p:9090"}), dashboards=[])
    assert "already has a datasource named 'Prometheus' with another uid (409" in caught.value.one_line()


def test_wrong_admin_password_is_a_clear_401(paths: Paths) -> None:
    with fake_grafana() as grafana:
        SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, "not-the-password")
        with pytest.raises(GrafanaError) as caught:
            provision_stack(paths, Settings(), UrlRuntime({"grafana": grafana.url}))
    line = caught.value.one_line()
    assert line.startswith(f"Grafana at {grafana.url} rejected the admin credentials (admin, password in ")
    assert "(401 Unauthorized)" in line
    assert "not-the-password" not in line


def test_a_revoked_token_is_replaced(paths: Paths) -> None:
    with fake_grafana() as grafana:
        runtime = stack_setup(paths, grafana)
        provision_stack(paths, Settings(), runtime)
        grafana.tokens.clear()
        result = provision_stack(paths, Settings(), runtime)
        assert len(grafana.tokens) == 1
    assert result.writes == 1  # the new token only; the service account is found, not recreated


def test_too_old_and_unreachable() -> None:
    with fake_grafana(version="8.5.27") as old:
        with pytest.raises(GrafanaError) as caught:
            provision_external(old.url, Auth(token=old.add_token()), datasource_urls={}, dashboards=[])
        assert caught.value.one_line() == (
            f"Grafana 8.5.27 at {old.url} is too old (stack needs >= 9.1) (hint: upgrade Grafana)"
        )
    url = old.url  # the server is gone now
    with pytest.raises(GrafanaError) as caught:
        provision_external(url, Auth(token="x"), datasource_urls={}, dashboards=[])
    assert caught.value.one_line() == (
        f"cannot reach Grafana at {url}: connection refused "
        "(hint: check the URL, and that Grafana runs (`stack status`))"
    )


def test_viewer_token_is_a_clear_403() -> None:
    with fake_grafana() as grafana:
        viewer = grafana.add_token(role="Viewer")
        with pytest.raises(GrafanaError) as caught:
            provision_external(
                grafana.url,
                Auth(token=viewer, source="the token given"),
                datasource_urls={"prometheus": "http://prometheus.internal:9090"},
                dashboards=[],
            )
    assert caught.value.one_line().startswith(
        f"Grafana at {grafana.url} refused to create datasource 'prometheus': permission denied (403: You'll need"
    )


def test_external_datasources_keep_only_those_given() -> None:
    sources = external_datasources({"prometheus": "https://prom.example.com", "tempo": "https://tempo.example.com"})
    assert [s["uid"] for s in sources] == ["prometheus", "tempo"]
    tempo = sources[1]
    # References to Loki (not given) are gone; those to Prometheus stay.
    assert "tracesToLogsV2" not in tempo["jsonData"]
    assert tempo["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert sources[0]["url"] == "https://prom.example.com"


def test_provision_command_against_any_grafana(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dashboards(project_dir / "mine", count=2)
    with fake_grafana() as grafana:
        token = grafana.add_token()
        monkeypatch.setenv("STACK_GRAFANA_TOKEN", token)
        args = ["provision", "--grafana-url", grafana.url, "--prometheus-url", "http://prom:9090"]
        args += ["--dashboards", "mine", "--json"]
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout)
        # The bundled packs go too, beside the directory's two.
        assert shown["datasources"]["created"] == 1 and shown["dashboards"]["created"] == len(load_dashboards()) + 2
        assert token not in result.output
        again = json.loads(invoke(*args).stdout)
        assert again["writes"] == 0
        # User and password file instead of a token.
        monkeypatch.delenv("STACK_GRAFANA_TOKEN")
        (project_dir / "pw").write_text(grafana.admin_password + "\n")
        (project_dir / "pw").chmod(0o600)
        result = invoke("provision", "--grafana-url", grafana.url, "--user", "admin", "--password-file", "pw")
        assert result.exit_code == 0, result.output
        assert "0 writes" in result.stdout
        result = invoke("provision", "--grafana-url", grafana.url, "--token", "wrong")
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: Grafana at {grafana.url} rejected the token given (401 Unauthorized) "
            "(hint: check the token or the user and password)\n"
        )
        result = invoke("provision", "--grafana-url", grafana.url)
        assert result.exit_code == 2
        assert "--token-file or --token (or STACK_GRAFANA_TOKEN), or --user with --password-file" in result.stderr
        (project_dir / "token").write_text(token + "\n")
        (project_dir / "token").chmod(0o644)
        result = invoke("provision", "--grafana-url", grafana.url, "--token-file", "token")
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: token: secret file is readable by others (mode 644) (hint: run: chmod 600 token)\n"
        )
        (project_dir / "token").chmod(0o600)
        result = invoke("provision", "--grafana-url", grafana.url, "--token-file", "token")
        assert result.exit_code == 0, result.output
        assert token not in result.output


def test_errors_are_stack_errors() -> None:
    assert issubclass(GrafanaError, StackError)


@pytest.mark.parametrize(
    ("existing", "desired", "same"),
    [
        ({"a": 1, "added": True}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "gone": None}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [1, {"x": 1, "y": 2}]}, {"a": [1, {"x": 1}]}, True),
        ({"a": [1, 2]}, {"a": [1]}, False),
        ({"a": 1}, {"a": True}, False),
        ({"a": 0}, {"a": False}, False),
        ({}, {"a": {}}, False),
    ],
)
def test_what_counts_as_unchanged(existing: dict[str, object], desired: dict[str, object], same: bool) -> None:
    from stack.grafana.compare import contains

    assert contains(existing, desired) is same


# --- where Grafana-managed alerts go (alerting.grafana_alerts) --------------------------------------


def test_grafana_managed_alerts_go_to_the_stacks_alertmanager_by_default(paths: Paths) -> None:
    with fake_grafana() as grafana:
        runtime = stack_setup(paths, grafana)
        provision_stack(paths, Settings(), runtime)
        assert grafana.datasources["alertmanager"]["jsonData"]["handleGrafanaManagedAlerts"] is True
        # Only there: Grafana's built-in Alertmanager has no receiver set up and would drop them.
        assert grafana.admin_config == {"alertmanagersChoice": "external"}
        grafana.reset_journal()
        provision_stack(paths, Settings(), runtime)
        assert grafana.writes() == []


@pytest.mark.parametrize(
    ("setting", "choice", "handled"),
    [("grafana", "internal", False), ("both", "all", True), ("alertmanager", "external", True)],
)
def test_grafana_alerts_setting(paths: Paths, setting: str, choice: str, handled: bool) -> None:
    settings = parse_settings({"alerting": {"grafana_alerts": setting}})
    with fake_grafana() as grafana:
        result = provision_stack(paths, settings, stack_setup(paths, grafana))
        assert grafana.datasources["alertmanager"]["jsonData"]["handleGrafanaManagedAlerts"] is handled
        # Never set, Grafana sends to "all": nothing to write for `both`.
        assert (grafana.admin_config or {"alertmanagersChoice": "all"}) == {"alertmanagersChoice": choice}
    assert result.alerting.updated + result.alerting.unchanged == 1


def test_changing_the_setting_is_one_write_each(paths: Paths) -> None:
    with fake_grafana() as grafana:
        runtime = stack_setup(paths, grafana)
        provision_stack(paths, Settings(), runtime)
        grafana.reset_journal()
        result = provision_stack(paths, parse_settings({"alerting": {"grafana_alerts": "both"}}), runtime)
        assert grafana.writes() == [("POST", "/api/v1/ngalert/admin_config", 201)]
        assert grafana.admin_config == {"alertmanagersChoice": "all"}
    assert result.alerting.updated == 1 and result.datasources.unchanged == 4


def test_without_the_alertmanager_component_grafana_keeps_its_alerts(paths: Paths) -> None:
    settings = parse_settings({"components": {"alertmanager": {"enabled": False}}})
    with fake_grafana() as grafana:
        provision_stack(paths, settings, stack_setup(paths, grafana))
        assert "alertmanager" not in grafana.datasources
        assert grafana.admin_config == {"alertmanagersChoice": "internal"}


def test_a_grafana_refusing_external_delivery_is_a_clear_error(paths: Paths) -> None:
    """A file-provisioned Alertmanager datasource from an older render (handling off) that Grafana
    has not reloaded yet: Grafana answers 400, and the error says what to do."""
    with fake_grafana() as grafana:
        from stack.grafana.push_datasources import api_datasource

        for source in stack_datasources(Settings()):
            grafana.provisioned_datasource(api_datasource(source))
        grafana.datasources["alertmanager"]["jsonData"]["handleGrafanaManagedAlerts"] = False
        with pytest.raises(GrafanaError) as caught:
            provision_stack(paths, Settings(), stack_setup(paths, grafana))
        assert grafana.admin_config is None
    assert str(caught.value.message) == (
        f"Grafana at {grafana.url} refused to send its alerts to external Alertmanagers (400: At least one "
        "Alertmanager must be provided or configured as a datasource that handles alerts to choose this option)"
    )
    assert "alerting.grafana_alerts: grafana" in (caught.value.hint or "")


def test_someone_elses_grafana_keeps_its_alert_delivery() -> None:
    with fake_grafana() as grafana:
        auth = Auth(token=grafana.add_token(), source="the token given")
        provision_external(grafana.url, auth, datasource_urls={"alertmanager": "http://am:9093"}, dashboards=[])
        assert grafana.datasources["alertmanager"]["jsonData"]["handleGrafanaManagedAlerts"] is False
        assert grafana.admin_config is None
        assert not [w for w in grafana.writes() if "ngalert" in w[1]]


def test_a_non_admin_token_cannot_change_alert_delivery() -> None:
    with fake_grafana() as grafana:
        from stack.grafana.alert_delivery import ADMIN_CONFIG

        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token("Editor"), source="an Editor"))
        with pytest.raises(GrafanaError) as caught:
            client.request(
                "POST", ADMIN_CONFIG, {"alertmanagersChoice": "external"}, what="set where Grafana sends its alerts"
            )
    assert caught.value.status == 403
    assert "refused to set where Grafana sends its alerts: permission denied" in caught.value.message
