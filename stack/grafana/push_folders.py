"""Dashboard folders upserted by uid: created when missing, renamed when their title changed."""

from __future__ import annotations

from typing import Any

from stack.grafana.client import GrafanaClient, GrafanaError
from stack.grafana.dashboards import Folder
from stack.grafana.result import Counts


def push_folders(client: GrafanaClient, folders: list[Folder], counts: Counts, found: dict[str, Any]) -> None:
    """Write the folders that differ from what Grafana holds (`found`: uid -> folder or None)."""
    for folder in folders:
        existing = found.get(folder.uid)
        if existing is None:
            status, data = client.request(
                "POST",
                "/api/folders",
                {"uid": folder.uid, "title": folder.title},
                ok=(200, 409),
                what=f"create folder {folder.title!r}",
            )
            if status == 409:
                message = data.get("message", "") if isinstance(data, dict) else ""
                if "same name" not in message:
                    # Since Grafana 11.3 titles need not be unique: the uid itself is taken.
                    raise GrafanaError(
                        f"Grafana at {client.where} refused folder uid {folder.uid!r} (409: {message})",
                        hint="a folder or dashboard this token cannot read may hold that uid; check its permissions",
                    )
                raise GrafanaError(
                    f"Grafana at {client.where} has another folder named {folder.title!r} (409: {message})",
                    hint=f"rename or delete that folder, or give pack folder uid {folder.uid!r} another title",
                )
            counts.created += 1
        elif existing.get("title") != folder.title:
            _update_folder(client, folder, existing)
            counts.updated += 1
        else:
            counts.unchanged += 1


def _update_folder(client: GrafanaClient, folder: Folder, existing: dict[str, Any]) -> None:
    for _attempt in range(2):
        status, _data = client.request(
            "PUT",
            f"/api/folders/{folder.uid}",
            {"title": folder.title, "version": existing.get("version")},
            ok=(200, 412),
            what=f"rename folder {folder.uid!r}",
        )
        if status == 200:
            return
        # Changed by someone else meanwhile: read it again and retry once with its new version.
        existing = client.folder(folder.uid) or existing
    raise GrafanaError(f"folder {folder.uid!r} keeps changing in Grafana at {client.where}", hint="try again")
