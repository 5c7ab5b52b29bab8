"""The service-account token `stack` provisions with: created once with the admin credentials,
kept 0600 beside the other secrets, replaced only when Grafana no longer accepts it."""

from __future__ import annotations

import time

from stack.grafana.client import Auth, GrafanaClient, GrafanaError, Transport
from stack.secrets import SecretStore

TOKEN_SECRET = "grafana-provisioning-token"
SERVICE_ACCOUNT = "stack-provisioning"


def _token_works(client: GrafanaClient) -> bool:
    status, _ = client.request("GET", "/api/org", ok=(200, 401), what="check the stored token")
    return status == 200


def ensure_token(transport: Transport, store: SecretStore, admin: Auth, client: GrafanaClient | None = None) -> str:
    """A working service-account token: the stored one, or a new one made with the admin credentials."""
    counter = client.counter if client else None
    stored = store.get(TOKEN_SECRET)
    if stored:
        probe = GrafanaClient(
            transport, Auth(token=stored, source=f"the token in {store.path(TOKEN_SECRET)}"), counter=counter
        )
        if _token_works(probe):
            return stored
    admin_client = GrafanaClient(transport, admin, counter=counter)
    found = admin_client.request(
        "GET", f"/api/serviceaccounts/search?query={SERVICE_ACCOUNT}", what="list service accounts"
    )[1]
    account = next(
        (sa for sa in (found or {}).get("serviceAccounts", []) if sa.get("name") == SERVICE_ACCOUNT),
        None,
    )
    if account is None:
        _status, account = admin_client.request(
            "POST",
            "/api/serviceaccounts",
            {"name": SERVICE_ACCOUNT, "role": "Admin", "isDisabled": False},
            ok=(200, 201),
            what="create the provisioning service account",
        )
    if not isinstance(account, dict) or "id" not in account:
        raise GrafanaError(f"Grafana at {transport.where} answered no id for the service account")
    _status, created = admin_client.request(
        "POST",
        f"/api/serviceaccounts/{account['id']}/tokens",
        {"name": f"stack-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{time.time_ns() % 100000}"},
        ok=(200, 201),
        what="create a service-account token",
    )
    key = created.get("key") if isinstance(created, dict) else None
    if not key:
        raise GrafanaError(f"Grafana at {transport.where} answered no token key")
    store.put(TOKEN_SECRET, key)
    return str(key)
