"""Datasources upserted by uid through the HTTP API; those Grafana provisioned from file are left to it."""

from __future__ import annotations

from typing import Any

from stack.grafana.client import GrafanaClient, GrafanaError
from stack.grafana.compare import contains
from stack.grafana.result import ProvisionResult

# Keys of the file-provisioning format that the HTTP API does not take.
_FILE_ONLY_DATASOURCE_KEYS = ("editable", "orgId", "version", "secureJsonData")


def unescape(value: Any) -> Any:
    """File provisioning's `$$` (a literal `$`) as the API wants it: `$`."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {key: unescape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unescape(item) for item in value]
    return value


def api_datasource(source: dict[str, Any]) -> dict[str, Any]:
    """A datasource of the provisioning file as the HTTP API takes it."""
    return {key: unescape(value) for key, value in source.items() if key not in _FILE_ONLY_DATASOURCE_KEYS}


def push_datasources(
    client: GrafanaClient, sources: list[dict[str, Any]], result: ProvisionResult, found: dict[str, Any]
) -> None:
    """Write the datasources that differ from what Grafana holds (`found`: uid -> datasource or None)."""
    counts = result.datasources
    for source in sources:
        desired = api_datasource(source)
        uid = desired["uid"]
        existing = found.get(uid)
        if existing is None:
            status, data = client.request(
                "POST", "/api/datasources", desired, ok=(200, 409), what=f"create datasource {uid!r}"
            )
            if status == 409:
                message = data.get("message", "") if isinstance(data, dict) else ""
                raise GrafanaError(
                    f"Grafana at {client.where} already has a datasource named {desired['name']!r} "
                    f"with another uid (409: {message})",
                    hint=f"delete or rename it in Grafana so that uid {uid!r} can be created",
                )
            counts.created += 1
        elif contains(existing, desired):
            counts.unchanged += 1
        elif existing.get("readOnly"):
            # Provisioned from file (the baseline): Grafana refuses API edits; the file wins at its next start.
            counts.skipped += 1
            result.notes.append(
                f"datasource {uid!r} is provisioned from file and differs: it changes when Grafana restarts"
            )
        else:
            body = {**existing, **desired}
            body.pop("readOnly", None)
            client.request("PUT", f"/api/datasources/uid/{uid}", body, what=f"update datasource {uid!r}")
            counts.updated += 1
