"""Dashboards upserted by uid into their folder, each save marked with a fingerprint of what was
saved, so that a dashboard Grafana stores in another shape still reads as unchanged."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from stack.grafana.client import GrafanaClient, GrafanaError
from stack.grafana.compare import contains
from stack.grafana.dashboards import Dashboard
from stack.grafana.result import Counts

# Fields Grafana adds or bumps on every save: never a reason to write.
_VOLATILE_DASHBOARD_KEYS = ("id", "version")


def _strip(model: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in model.items() if key not in _VOLATILE_DASHBOARD_KEYS}


def fingerprint(model: dict[str, Any]) -> str:
    """A short digest of a dashboard model as pushed (keys sorted, volatile fields out)."""
    canonical = json.dumps(_strip(model), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def save_message(model: dict[str, Any]) -> str:
    """The version message of a save: it carries the fingerprint of what was saved."""
    return f"stack provision {fingerprint(model)}"


def _pushed_and_untouched(client: GrafanaClient, uid: str, stored: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the stored dashboard is what provisioning last saved, unchanged since, when its JSON
    cannot say so: Grafana 13 may store a dashboard as schema v2, and the legacy API then returns a
    lossy v1 copy that never equals what was sent. The latest version's message carries the
    fingerprint of what was saved; a save by anyone else since makes a newer version."""
    data = client.get_or_none(f"/api/dashboards/uid/{quote(uid)}/versions?limit=1", what=f"read versions of {uid!r}")
    # Grafana 11+: {"versions": [...], "continueToken": ...}; earlier: a list.
    versions = data.get("versions") if isinstance(data, dict) else data
    if not isinstance(versions, list) or not versions or not isinstance(versions[0], dict):
        return False
    latest = versions[0]
    return latest.get("version") == stored.get("version") and latest.get("message") == save_message(desired)


def push_dashboards(client: GrafanaClient, dashboards: list[Dashboard], counts: Counts, found: dict[str, Any]) -> None:
    """Write the dashboards that differ from what Grafana holds (`found`: uid -> dashboard or None)."""
    for dashboard in dashboards:
        desired = _strip(dashboard.model)
        existing = found.get(dashboard.uid)
        if existing is not None:
            stored = existing.get("dashboard", {})
            folder_uid = (existing.get("meta") or {}).get("folderUid") or ""
            if folder_uid == dashboard.folder.uid and (
                contains(_strip(stored), desired) or _pushed_and_untouched(client, dashboard.uid, stored, desired)
            ):
                counts.unchanged += 1
                continue
        _save_dashboard(client, dashboard, desired, existing)
        if existing is None:
            counts.created += 1
        else:
            counts.updated += 1


def _save_dashboard(
    client: GrafanaClient, dashboard: Dashboard, desired: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    for _attempt in range(2):
        stored = (existing or {}).get("dashboard", {})
        body = {
            "dashboard": {**desired, "id": stored.get("id"), "version": stored.get("version", 0)},
            "folderUid": dashboard.folder.uid,
            "overwrite": False,
            "message": save_message(desired),
        }
        status, data = client.request(
            "POST", "/api/dashboards/db", body, ok=(200, 412), what=f"save dashboard {dashboard.title!r}"
        )
        if status == 200:
            return
        reason = data.get("status") if isinstance(data, dict) else None
        if reason == "version-mismatch":
            # Saved by someone else since we read it: read it again, retry once.
            existing = client.dashboard(dashboard.uid)
            continue
        if reason == "name-exists":
            raise GrafanaError(
                f"{dashboard.source}: Grafana at {client.where} already has another dashboard titled "
                f"{dashboard.title!r} in folder {dashboard.folder.title!r}",
                hint="rename one of them (titles must be unique within a folder)",
            )
        message = data.get("message", "") if isinstance(data, dict) else ""
        raise GrafanaError(
            f"{dashboard.source}: Grafana at {client.where} refused dashboard {dashboard.uid!r} "
            f"(412 {reason}: {message})"
        )
    raise GrafanaError(f"dashboard {dashboard.uid!r} keeps changing in Grafana at {client.where}", hint="try again")
