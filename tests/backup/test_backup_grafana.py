"""Grafana round trips on the fake Grafana: through its API (restored alone, without a stop) and
through its database file (restored with the rest of the stack)."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from stack.backup.create import create_backup
from stack.backup.grafana import export
from stack.backup.grafana_api import client_for, get
from stack.backup.restore import restore_backup
from stack.backup.verify import verify_backup
from stack.paths import Paths
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, parse_settings
from tests.support.fake_grafana_store import StoredGrafana, stored_grafana
from tests.support.local_runtime import LocalRuntime, LocalService

PASSWORD = "s3cret-for-tests"


def grafana_service(root: Path) -> LocalService:
    @contextlib.contextmanager
    def start(service: LocalService) -> Iterator[Any]:
        with stored_grafana(service.data_dir, password=PASSWORD) as running:
            yield running

    return LocalService("grafana", "/var/lib/grafana", root / "grafana-data", start, image="grafana/grafana:13.2.0")


def populate(url: str) -> None:
    """What a team builds in Grafana by hand: nested folders, dashboards, a datasource with a
    secret, and every kind of alerting object."""
    session = requests.Session()
    session.auth = ("admin", PASSWORD)

    def call(method: str, path: str, body: Any) -> None:
        reply = session.request(method, url + path, json=body, timeout=5)
        assert reply.status_code in (200, 201, 202), (path, reply.status_code, reply.text)

    call("POST", "/api/folders", {"uid": "team", "title": "Team"})
    call("POST", "/api/folders", {"uid": "team-api", "title": "API", "parentUid": "team"})
    for uid, title, folder in (
        ("latency", "Latency", "team-api"),
        ("queues", "Queues", "team"),
        ("home", "Home", None),
    ):
        panels = [{"id": 1, "type": "timeseries", "title": f"{title} p99", "targets": [{"expr": "up"}]}]
        body: dict[str, Any] = {"dashboard": {"id": None, "uid": uid, "title": title, "panels": panels}}
        if folder:
            body["folderUid"] = folder
        call("POST", "/api/dashboards/db", body)
    call(
        "POST",
        "/api/datasources",
        {
            "uid": "billing-db",
            "name": "Billing",
            "type": "postgres",
            "url": "db:5432",
            "access": "proxy",
            "secureJsonData": {"password": "hunter2"},
        },
    )
    alerting = "/api/v1/provisioning"
    call("POST", f"{alerting}/mute-timings", {"name": "weekends", "time_intervals": [{"weekdays": ["saturday"]}]})
    call("PUT", f"{alerting}/templates/pager", {"template": '{{ define "pager" }}{{ .Status }}{{ end }}'})
    call(
        "POST",
        f"{alerting}/contact-points",
        {"uid": "oncall", "name": "On call", "type": "webhook", "settings": {"url": "http://pager.example/hook"}},
    )
    call(
        "PUT",
        f"{alerting}/policies",
        {
            "receiver": "On call",
            "group_by": ["alertname"],
            "routes": [{"receiver": "On call", "mute_time_intervals": ["weekends"]}],
        },
    )
    call(
        "POST",
        f"{alerting}/alert-rules",
        {
            "uid": "api-errors",
            "title": "API errors",
            "folderUID": "team-api",
            "ruleGroup": "api",
            "condition": "A",
            "data": [{"refId": "A", "model": {"expr": "rate(http_errors_total[5m]) > 1"}}],
            "for": "5m",
        },
    )


def snapshot(fake: StoredGrafana) -> dict[str, Any]:
    """What must come back, without what Grafana assigns itself (ids, versions)."""
    dashboards = {}
    for uid, saved in fake.dashboards.items():
        body = {k: v for k, v in saved["dashboard"].items() if k not in ("id", "version")}
        dashboards[uid] = {"dashboard": body, "folderUid": saved["folderUid"] or None}
    return {
        "folders": {uid: (f["title"], f.get("parentUid")) for uid, f in fake.folders.items()},
        "dashboards": dashboards,
        "datasources": {uid: (s["name"], s["type"], s["url"]) for uid, s in fake.datasources.items()},
        "rules": fake.rules,
        "contacts": fake.contacts,
        "policy": fake.policy,
        "mutes": fake.mutes,
        "templates": fake.templates,
    }


@pytest.fixture
def grafana(tmp_path: Path, paths: Paths) -> Iterator[tuple[LocalRuntime, LocalService]]:
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, PASSWORD)
    service = grafana_service(tmp_path)
    runtime = LocalRuntime(service)
    runtime.up()
    try:
        yield runtime, service
    finally:
        runtime.down()


def test_grafana_round_trip_through_the_api(grafana: tuple[LocalRuntime, LocalService], paths: Paths) -> None:
    runtime, service = grafana
    populate(service.server.url)
    before = snapshot(service.server)

    result = create_backup(runtime, Settings(), paths, only=["grafana"])

    report = verify_backup(result.path)
    names = {member.name for member in report.manifest.members}
    for document in (
        "folders",
        "dashboards",
        "datasources",
        "alert-rules",
        "contact-points",
        "policies",
        "mute-timings",
        "templates",
    ):
        assert f"grafana/api/{document}.json" in names
    assert "grafana/data/grafana.db" in names
    assert report.manifest.components["grafana"].sections == ["api", "data"]
    exported = json.dumps(export(client_for(runtime, "admin", PASSWORD)))
    assert "hunter2" not in exported

    service.server.wipe()
    assert snapshot(service.server)["dashboards"] == {}

    restored = restore_backup(runtime, Settings(), paths, result.path, only=["grafana"])

    assert restored.plan.online == ["grafana"] and restored.plan.offline == []
    assert runtime.stopped == []  # restored through its API, never stopped
    assert snapshot(service.server) == before
    assert any("re-enter them: Billing" in note for note in restored.notes)
    # Folders were created before the dashboards and rules that live in them (the fake answers 400 otherwise).
    writes = [path for method, path, status in service.server.writes() if status < 300]
    assert writes.index("/api/folders") < writes.index("/api/dashboards/db")

    # Someone edits a dashboard and renames a folder after the backup; restoring again overwrites
    # both (Grafana answers 412 version-mismatch, 409 exists) and says so.
    session = requests.Session()
    session.auth = ("admin", PASSWORD)
    edited = session.get(f"{service.server.url}/api/dashboards/uid/latency", timeout=5).json()["dashboard"]
    edited["panels"].append({"id": 2, "type": "stat", "title": "added later"})
    assert session.post(
        f"{service.server.url}/api/dashboards/db", json={"dashboard": edited, "folderUid": "team-api"}, timeout=5
    ).ok
    assert session.put(
        f"{service.server.url}/api/folders/team", json={"title": "Renamed", "overwrite": True}, timeout=5
    ).ok
    service.server.reset_journal()
    again = restore_backup(runtime, Settings(), paths, result.path, only=["grafana"])
    assert snapshot(service.server) == before
    summary = next(note for note in again.notes if note.startswith("grafana:") and "created" in note)
    assert "dashboard 'Latency' (version-mismatch)" in summary
    assert "folder 'Team'" in summary
    assert "dashboards 0 created/3 updated" in summary


def test_grafana_restored_from_its_database_with_the_stack(tmp_path: Path, paths: Paths) -> None:
    from tests.support.backup_helpers import prometheus_service, write_known_series

    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, PASSWORD)
    prom = prometheus_service(tmp_path)
    write_known_series(prom.data_dir, tmp_path)
    grafana = grafana_service(tmp_path)
    runtime = LocalRuntime(prom, grafana)
    settings = parse_settings(
        {"components": {name: {"enabled": False} for name in ("loki", "tempo", "alertmanager", "otel-collector")}}
    )
    runtime.up()
    try:
        populate(grafana.server.url)
        before = snapshot(grafana.server)
        result = create_backup(runtime, settings, paths)
        assert [report.component for report in result.components] == ["prometheus", "grafana"]

        grafana.server.wipe()
        restored = restore_backup(runtime, settings, paths, result.path)

        assert restored.plan.offline == ["prometheus", "grafana"]
        assert runtime.stopped == [["prometheus", "grafana"]]
        assert snapshot(grafana.server) == before
    finally:
        runtime.down()


# What `grafana cli admin reset-admin-password PW` does to the fake's database.
GRAFANA_CLI = """#!{python}
import json, sqlite3, sys
assert sys.argv[1:4] == ["cli", "admin", "reset-admin-password"], sys.argv
db = sqlite3.connect("{db}")
with db:
    db.execute("UPDATE state SET body = ? WHERE kind = 'admin'", (json.dumps(sys.argv[4]),))
"""


@pytest.mark.parametrize("cli_available", [True, False])
def test_database_restore_on_a_new_machine_resets_the_admin_password(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch, cli_available: bool
) -> None:
    import sys

    from tests.support.backup_helpers import prometheus_service, write_known_series

    store = SecretStore.for_paths(paths)
    store.put(GRAFANA_ADMIN_PASSWORD, PASSWORD)
    prom = prometheus_service(tmp_path)
    write_known_series(prom.data_dir, tmp_path)
    grafana = grafana_service(tmp_path)
    runtime = LocalRuntime(prom, grafana)
    settings = parse_settings(
        {"components": {name: {"enabled": False} for name in ("loki", "tempo", "alertmanager", "otel-collector")}}
    )
    runtime.up()
    try:
        populate(grafana.server.url)
        result = create_backup(runtime, settings, paths)
        # A new machine: new generated password, a fresh Grafana database created with it.
        runtime.down(volumes=True)
        store.put(GRAFANA_ADMIN_PASSWORD, "the-new-machines-password")
        grafana.starter = _starter_with_password("the-new-machines-password")
        runtime.up()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        if cli_available:
            script = bin_dir / "grafana"
            script.write_text(GRAFANA_CLI.format(python=sys.executable, db=grafana.data_dir / "grafana.db"))
            script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")

        restored = restore_backup(runtime, settings, paths, result.path)

        api = client_for(runtime, "admin", "the-new-machines-password")
        status, _ = api.request("GET", "/api/user", ok=(200, 401))
        if cli_available:
            assert status == 200
            assert any("reset to the stored one" in note for note in restored.notes)
            assert len(get(api, "/api/search?type=dash-db")) == 3
        else:
            assert status == 401
            assert any("keeps the admin password it had at the backup" in note for note in restored.notes)
        assert not any("the-new-machines-password" in note for note in restored.notes)
    finally:
        runtime.down()


def _starter_with_password(password: str):  # type: ignore[no-untyped-def]
    @contextlib.contextmanager
    def start(service: LocalService) -> Iterator[Any]:
        with stored_grafana(service.data_dir, password=password) as running:
            yield running

    return start


class _TornDatabaseCopies(LocalRuntime):
    """Every copy of grafana.db catches Grafana half-way through a write (a torn file)."""

    def copy_out(self, service: str, path: str):  # type: ignore[no-untyped-def]
        if not path.endswith("/grafana.db"):
            return super().copy_out(service, path)
        whole = (self.services[service].local(path)).read_bytes()
        torn = whole[:4096] + b"\x00" * 4096 + whole[8192:]
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("grafana.db")
            info.size = len(torn)
            tar.addfile(info, io.BytesIO(torn))
        raw.seek(0)
        return raw


def test_a_torn_database_copy_is_left_out_and_the_api_export_restores(tmp_path: Path, paths: Paths) -> None:
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, PASSWORD)
    service = grafana_service(tmp_path)
    runtime = _TornDatabaseCopies(service)
    runtime.up()
    try:
        populate(service.server.url)
        before = snapshot(service.server)
        result = create_backup(runtime, Settings(), paths, only=["grafana"])
        assert any("left out" in note for note in result.notes)
        assert result.components[0].sections == ["api"]
        service.server.wipe()
        restored = restore_backup(runtime, Settings(), paths, result.path)
        assert restored.plan.online == ["grafana"]
        assert snapshot(service.server) == before
    finally:
        runtime.down()


def test_restore_re_provisions_grafana_with_the_stack_provisioner(
    grafana: tuple[LocalRuntime, LocalService], paths: Paths
) -> None:
    from stack.grafana.provision import provision_stack

    runtime, service = grafana
    populate(service.server.url)
    result = create_backup(runtime, Settings(), paths, only=["grafana"])
    service.server.wipe()

    restored = restore_backup(runtime, Settings(), paths, result.path, only=["grafana"], provisioner=provision_stack)

    assert any(note.startswith("grafana re-provisioned: ") for note in restored.notes)
    # The user's objects are back, and the stack's own datasources are provisioned next to them.
    assert {"latency", "queues", "home"} <= set(service.server.dashboards)
    assert {"billing-db", "prometheus", "loki", "tempo"} <= set(service.server.datasources)
