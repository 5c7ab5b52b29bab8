"""Provisioning against Grafana 13's behaviour, as the fake Grafana (tests/support/fake_grafana.py) follows it:
dashboards stored as schema v2 come back from the legacy API as a lossy v1 copy, and titles of
folders and dashboards are no longer unique (11.3), so only uids identify them."""

from __future__ import annotations

from pathlib import Path

from stack.grafana.client import Auth, GrafanaClient, UrlTransport
from stack.grafana.compare import contains
from stack.grafana.dashboards import load_dashboards
from stack.grafana.provision import provision
from stack.grafana.push_dashboards import fingerprint
from tests.support.fake_grafana import fake_grafana


def test_dashboards_stored_as_v2_are_not_rewritten_on_every_run() -> None:
    dashboards = load_dashboards()
    with fake_grafana(stores_v2=True) as grafana:
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        first = provision(client, datasources=[], dashboards=dashboards)
        assert first.dashboards.created == len(dashboards)
        # What the legacy API returns is not what was sent: a plain comparison would never match.
        stored = client.dashboard("stack-explore")
        assert stored is not None
        explore = next(d for d in dashboards if d.uid == "stack-explore")
        assert not contains(stored["dashboard"], {k: v for k, v in explore.model.items() if k not in ("id", "version")})
        # Each save says what it saved.
        assert grafana.versions["stack-explore"][-1]["message"] == f"stack provision {fingerprint(explore.model)}"

        again = provision(client, datasources=[], dashboards=dashboards)
        assert again.writes == 0
        assert again.dashboards.unchanged == len(dashboards)

        # An edit in Grafana makes a newer version: the pack is put back once, then left alone.
        grafana.edit_dashboard("stack-explore", title="Explore (edited)")
        third = provision(client, datasources=[], dashboards=dashboards)
        assert third.dashboards.updated == 1 and third.writes == 1
        assert grafana.dashboards["stack-explore"]["dashboard"]["title"] == explore.title
        assert provision(client, datasources=[], dashboards=dashboards).writes == 0


def test_a_changed_pack_is_pushed_even_when_the_copy_is_lossy() -> None:
    dashboards = load_dashboards()
    with fake_grafana(stores_v2=True) as grafana:
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        provision(client, datasources=[], dashboards=dashboards)
        changed = [d for d in dashboards]
        first = changed[0]
        changed[0] = type(first)(
            first.uid,
            first.title,
            first.folder,
            {**first.model, "tags": [*first.model.get("tags", []), "changed"]},
            first.source,
        )
        result = provision(client, datasources=[], dashboards=changed)
        assert result.dashboards.updated == 1 and result.writes == 1


def test_folders_and_dashboards_are_matched_by_uid_never_by_title(tmp_path: Path) -> None:
    from tests.grafana.test_grafana_provision import write_dashboards

    dashboards = write_dashboards(tmp_path / "team", count=1)
    with fake_grafana() as grafana:  # 13.x: titles are not unique
        # Someone's own folder named like ours, and a dashboard of theirs titled like ours in our folder.
        grafana.folders["theirs"] = {"id": 5, "uid": "theirs", "title": "team", "version": 1}
        client = GrafanaClient(UrlTransport(grafana.url), Auth(token=grafana.add_token()))
        provision(client, datasources=[], dashboards=dashboards)
        grafana.dashboards["hand-made"] = {
            "dashboard": {"id": 100, "uid": "hand-made", "title": "Service 0", "version": 3},
            "folderUid": "stack-user-team",
        }
        again = provision(client, datasources=[], dashboards=dashboards)
        assert again.writes == 0
        # Ours by its uid, theirs untouched beside it.
        assert grafana.folders["stack-user-team"]["title"] == "team"
        assert grafana.folders["theirs"]["title"] == "team"
        assert grafana.dashboards["svc-0"]["folderUid"] == "stack-user-team"
        assert grafana.dashboards["hand-made"]["dashboard"]["version"] == 3
